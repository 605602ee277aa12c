"""The webhook endpoints read model: each live endpoint's representation.

`evolve` is the one definition of what an endpoint looks like to clients; the projection stores
its result and the audit trail's point-in-time state uses it too. The representation never
holds a secret (events name secrets by id only); a deleted endpoint's row is removed, so it
leaves lists and reads as not found, while its history stays in the audit trail, where its last
state shows `"status": "deleted"`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.webhook import DELETED, DISABLED, ENABLED, WebhookEndpoint
from projections.documents import DocumentTable
from projections.formats import instant

State = dict[str, Any]


def _configuration(event: WebhookEndpoint.Created | WebhookEndpoint.Updated) -> State:
    return {"url": event.url, "events": list(event.events), "description": event.description}


def evolve(state: State | None, event: Any) -> State:
    """The endpoint's client-facing representation after `event`."""
    if isinstance(event, WebhookEndpoint.Created):
        return {
            "webhookId": str(event.originator_id),
            **_configuration(event),
            "status": ENABLED,
            "disabledReason": None,
            "secretRotatedAt": None,
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    assert state is not None, "an endpoint's first event creates it"
    if isinstance(event, WebhookEndpoint.Pinged):
        return state  # a test message changes nothing about the endpoint
    if isinstance(event, WebhookEndpoint.Updated):
        state.update(_configuration(event))
    elif isinstance(event, WebhookEndpoint.SecretRotated):
        state["secretRotatedAt"] = instant(event.timestamp)
    elif isinstance(event, WebhookEndpoint.Disabled):
        state["status"] = DISABLED
        state["disabledReason"] = event.reason
    elif isinstance(event, WebhookEndpoint.Enabled):
        state["status"] = ENABLED
        state["disabledReason"] = None
    elif isinstance(event, WebhookEndpoint.Deleted):
        state["status"] = DELETED
    state["updatedAt"] = instant(event.timestamp)
    return state


WEBHOOKS = DocumentTable(
    "rm_webhooks", "webhook_id", WebhookEndpoint.Event, WebhookEndpoint.Created, evolve
)


class WebhooksProjection:
    name = "webhooks"
    tables = (WEBHOOKS.name,)
    ddl = WEBHOOKS.ddl()

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, WebhookEndpoint.Deleted):
            cur.execute(
                f"DELETE FROM {WEBHOOKS.name} WHERE tenant_id = ? AND webhook_id = ?",
                (str(event.tenant_id), str(event.originator_id)),
            )
        elif isinstance(event, WebhookEndpoint.Event):
            WEBHOOKS.apply(cur, recorded.position, event)


class WebhooksView:
    """Reads of the webhook endpoints (implements application.webhooks.WebhookReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID, endpoint_id: UUID) -> Document | None:
        return WEBHOOKS.get(self._db, tenant_id, endpoint_id)

    def list(self, tenant_id: UUID, *, limit: int, after: int) -> Page:
        return WEBHOOKS.page(self._db, tenant_id, {}, limit=limit, after=after)
