"""The webhook outbox: turns each event into one delivery per endpoint that should receive it.

It follows the log like a read model, with its own runner (own tracking name and lock), and is
not one of the read models: `workledger replay` never sees it, so a replay never makes or sends
a delivery again. Each event's deliveries are inserted in the transaction that moves the
outbox's tracking position past it, and a delivery's id is derived from (endpoint, event): so
each is made exactly once, however often or concurrently the outbox runs.

Who receives an event is decided by the endpoints as they were at that event's position in the
log: the outbox keeps its own copy of them (`webhook_subscriptions`), updated from the
WebhookEndpoint events in the same transactions, never read from another read model that could
be ahead or behind. An event goes to every enabled endpoint of the same tenant whose filter
matches its webhook type. A ping (WebhookEndpoint.Pinged) goes to its endpoint alone, enabled
or not. Disabling or deleting an endpoint cancels its pending deliveries.

The message body is built once, here, and stored: every attempt and redelivery sends the same
bytes. `data` holds the event as the audit trail shows it (`changes`, camelCase, exactly the
`data` of GET /audit/events) and the resource after the event (`object`, as GET
/audit/streams/{id}/state?version= shows it).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from application.event_log import EventLog, RecordedEvent, event_fields
from application.ports import SqlCursor
from application.webhook_delivery import PENDING
from domain.events import TenantEvent
from domain.webhook import (
    DELETED,
    DISABLED,
    ENABLED,
    TEST_EVENT,
    WebhookEndpoint,
    delivery_id,
    matches,
)
from projections import webhook_deliveries
from projections.audit import aggregate_type_of, render_state
from projections.formats import camel, camel_fields, from_json, instant, to_json
from projections.webhook_deliveries import cancel_pending, epoch

NAME = "outbox:webhooks"
# Its own advisory lock: the outbox and the read models never wait for each other's batches.
OUTBOX_LOCK_KEY = 7_318_004_212


def audit_changes(event: Any) -> dict[str, Any]:
    """The event's own fields as GET /audit/events shows them in `data`."""
    fields = dict(event_fields(event))
    fields.pop("tenant_id", None)
    if "changed_fields" in fields:
        fields["changed_fields"] = [camel(name) for name in fields["changed_fields"]]
    return camel_fields(fields)


class OutboxProjection:
    name = NAME
    ddl = webhook_deliveries.DDL
    # Deliveries are history, not a view of the log: nothing ever empties them.
    tables: tuple[str, ...] = ()

    def __init__(self, log: EventLog) -> None:
        self._log = log

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, WebhookEndpoint.Event):
            self._endpoint_changed(cur, recorded)
            return
        if not isinstance(event, TenantEvent) or event.webhook is None:
            return
        cur.execute(
            "SELECT endpoint_id, events FROM webhook_subscriptions"
            " WHERE tenant_id = ? AND status = ?",
            (str(event.tenant_id), ENABLED),
        )
        targets = [
            UUID(endpoint_id)
            for endpoint_id, events in cur.fetchall()
            if matches(from_json(events), event.webhook)
        ]
        if targets:
            self._insert(cur, recorded, targets, event.webhook, self._message(recorded))

    def _message(self, recorded: RecordedEvent) -> dict[str, Any]:
        event = recorded.event
        aggregate_type = aggregate_type_of(event)
        history = self._log.history(event.originator_id, up_to_version=event.originator_version)
        return {
            "type": event.webhook,
            "timestamp": instant(event.timestamp),
            "tenantId": str(event.tenant_id),
            "data": {
                "eventId": str(uuid5(event.originator_id, str(event.originator_version))),
                "aggregateType": aggregate_type,
                "aggregateId": str(event.originator_id),
                "version": event.originator_version,
                "occurredAt": instant(event.timestamp),
                "actor": recorded.meta.actor,
                "changes": audit_changes(event),
                "object": render_state(aggregate_type, history),
            },
        }

    def _insert(
        self,
        cur: SqlCursor,
        recorded: RecordedEvent,
        endpoints: list[UUID],
        event_type: str,
        message: dict[str, Any],
    ) -> None:
        event = recorded.event
        body = to_json(message)
        created = epoch(event.timestamp)
        event_id = str(uuid5(event.originator_id, str(event.originator_version)))
        cur.executemany(
            "INSERT INTO webhook_deliveries (delivery_id, tenant_id, endpoint_id, position,"
            " event_type, event_id, body, status, attempts, retry_base, next_attempt_at,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)"
            " ON CONFLICT (delivery_id) DO NOTHING",
            [
                (
                    str(delivery_id(endpoint_id, event.originator_id, event.originator_version)),
                    str(event.tenant_id),
                    str(endpoint_id),
                    recorded.position,
                    event_type,
                    event_id,
                    body,
                    PENDING,
                    created,
                    created,
                )
                for endpoint_id in endpoints
            ],
        )

    def _endpoint_changed(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        endpoint_id = str(event.originator_id)
        if isinstance(event, WebhookEndpoint.Created):
            cur.execute(
                "INSERT INTO webhook_subscriptions (endpoint_id, tenant_id, url, events, status,"
                " secret_id, enabled_since) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (endpoint_id) DO NOTHING",
                (
                    endpoint_id,
                    str(event.tenant_id),
                    event.url,
                    to_json(event.events),
                    ENABLED,
                    str(event.secret_id),
                    epoch(event.timestamp),
                ),
            )
        elif isinstance(event, WebhookEndpoint.Updated):
            cur.execute(
                "UPDATE webhook_subscriptions SET url = ?, events = ? WHERE endpoint_id = ?",
                (event.url, to_json(event.events), endpoint_id),
            )
        elif isinstance(event, WebhookEndpoint.SecretRotated):
            cur.execute(
                "UPDATE webhook_subscriptions SET secret_id = ?, previous_secret_id = ?,"
                " previous_valid_until = ? WHERE endpoint_id = ?",
                (
                    str(event.secret_id),
                    str(event.previous_secret_id),
                    epoch(event.previous_valid_until),
                    endpoint_id,
                ),
            )
        elif isinstance(event, WebhookEndpoint.Disabled):
            cur.execute(
                "UPDATE webhook_subscriptions SET status = ? WHERE endpoint_id = ?",
                (DISABLED, endpoint_id),
            )
            cancel_pending(cur, event.originator_id, f"the endpoint was disabled: {event.reason}")
        elif isinstance(event, WebhookEndpoint.Enabled):
            cur.execute(
                "UPDATE webhook_subscriptions SET status = ?, enabled_since = ?"
                " WHERE endpoint_id = ?",
                (ENABLED, epoch(event.timestamp), endpoint_id),
            )
        elif isinstance(event, WebhookEndpoint.Deleted):
            cur.execute(
                "UPDATE webhook_subscriptions SET status = ? WHERE endpoint_id = ?",
                (DELETED, endpoint_id),
            )
            cancel_pending(cur, event.originator_id, "the endpoint was deleted")
        elif isinstance(event, WebhookEndpoint.Pinged):
            message = {
                "type": TEST_EVENT,
                "timestamp": instant(event.timestamp),
                "tenantId": str(event.tenant_id),
                "data": {
                    "webhookId": endpoint_id,
                    "pingId": str(event.ping_id),
                    "occurredAt": instant(event.timestamp),
                    "actor": recorded.meta.actor,
                },
            }
            self._insert(cur, recorded, [event.originator_id], TEST_EVENT, message)
