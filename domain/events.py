"""The base of every workledger event, and the rule for stable event names.

Stored events are found again by their topic, so topics must not move when Python modules do.
Every aggregate and event class declares an explicit `TOPIC` of the form `workledger:<Type>`
(for example `workledger:PersonCreated`); the eventsourcing library registers it when the class
is defined. Renaming a class is then free; renaming a topic needs an alias (see `aliases.py`),
and the golden event log in tests/fixtures proves old logs still load.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

TOPIC_PREFIX = "workledger:"


def event_type(topic: str) -> str:
    """The public type name of a stored topic: `workledger:PersonCreated` -> `PersonCreated`."""
    return topic.removeprefix(TOPIC_PREFIX)


class TenantEvent(Aggregate.Event):
    """Every business event names the tenant it belongs to, so the log can be partitioned,
    projected and audited per tenant without reloading the aggregate."""

    tenant_id: UUID

    # Set to False on bookkeeping events (uniqueness claims) that are not part of the audit trail.
    audited: ClassVar[bool] = True
    # The public webhook event type (`<resource>.<verb>`, API.md), or None for internal events.
    webhook: ClassVar[str | None] = None
