"""The audit index: every business event of a tenant, in log order, with who did it and why.

The event log itself is the audit trail; this read model indexes it per tenant so auditors can
filter it. Event ids are derived from (aggregate, version), so a replay rebuilds identical rows.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

import msgspec

from application.event_log import RecordedEvent, event_fields
from application.ports import SqlCursor, SqlDatabase
from application.queries import AuditFilter, Page
from domain.events import TenantEvent, event_type
from projections import (
    api_keys,
    billing,
    customers,
    engagements,
    people,
    squads,
    tenants,
    webhooks,
    work,
)
from projections.formats import camel, camel_fields, from_json, instant, to_json

# The representation of each audited aggregate type, for point-in-time state.
EVOLVERS = {
    "Tenant": tenants.evolve,
    "Person": people.evolve,
    "Customer": customers.evolve,
    "Engagement": engagements.evolve,
    "Squad": squads.evolve,
    **work.EVOLVERS,
    "Invoice": billing.evolve,
    "ApiKey": api_keys.evolve,
    "WebhookEndpoint": webhooks.evolve,
}


def aggregate_type_of(event: Any) -> str:
    return type(event).__qualname__.split(".")[0]


def render_state(aggregate_type: str, events: list[Any]) -> dict[str, Any] | None:
    """The resource representation after `events` (None for a type with no representation)."""
    evolve = EVOLVERS.get(aggregate_type)
    if evolve is None:
        return None
    state: Any = None
    for event in events:
        state = evolve(state, event)
    # Tenants keep subscription and settings beside the resource; the resource is the state.
    return state["tenant"] if aggregate_type == "Tenant" else state


class AuditProjection:
    name = "audit"
    tables = ("rm_audit",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_audit ("
        " position BIGINT PRIMARY KEY, tenant_id TEXT NOT NULL, event_id TEXT NOT NULL,"
        " type TEXT NOT NULL, aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL,"
        " version INTEGER NOT NULL, occurred_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " request_id TEXT NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_audit_tenant ON rm_audit (tenant_id, position)",
        "CREATE INDEX IF NOT EXISTS rm_audit_stream"
        " ON rm_audit (tenant_id, aggregate_id, position)",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, TenantEvent) or not event.audited:
            return
        fields = dict(event_fields(event))
        fields.pop("tenant_id", None)
        if "changed_fields" in fields:  # name changed fields as clients know them
            fields["changed_fields"] = [camel(name) for name in fields["changed_fields"]]
        cur.execute(
            "INSERT INTO rm_audit (position, tenant_id, event_id, type, aggregate_type,"
            " aggregate_id, version, occurred_at, actor, request_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                recorded.position,
                str(event.tenant_id),
                str(uuid5(event.originator_id, str(event.originator_version))),
                event_type(recorded.topic),
                aggregate_type_of(event),
                str(event.originator_id),
                event.originator_version,
                instant(event.timestamp),
                recorded.meta.actor,
                recorded.meta.request_id,
                to_json(camel_fields(fields)),
            ),
        )


_COLUMNS = (
    "position, event_id, type, aggregate_type, aggregate_id, version, occurred_at, actor,"
    " request_id, data"
)


class AuditView:
    """Reads of the audit index (implements application.queries.AuditReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def list(self, tenant_id: UUID, where: AuditFilter, *, limit: int, after: int) -> Page:
        conditions, params = ["tenant_id = ?"], [str(tenant_id)]
        for column, value, op in (
            ("aggregate_id", where.aggregate_id and str(where.aggregate_id), "="),
            ("type", where.type, "="),
            ("actor", where.actor, "="),
            ("occurred_at", where.from_, ">="),
            ("occurred_at", where.to, "<"),
        ):
            if value:
                conditions.append(f"{column} {op} ?")
                params.append(value)
        condition = " AND ".join(conditions)
        total = self._db.query(f"SELECT COUNT(*) FROM rm_audit WHERE {condition}", params)[0][0]
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM rm_audit WHERE {condition} AND position > ?"
            " ORDER BY position LIMIT ?",
            (*params, after, limit + 1),
        )
        items = [msgspec.Raw(msgspec.json.encode(_entry(row))) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, total=total, next_after=rows[limit - 1][0] if more else None)

    def aggregate_type(self, tenant_id: UUID, aggregate_id: UUID) -> str | None:
        rows = self._db.query(
            "SELECT aggregate_type FROM rm_audit WHERE tenant_id = ? AND aggregate_id = ?"
            " ORDER BY position LIMIT 1",
            (str(tenant_id), str(aggregate_id)),
        )
        return rows[0][0] if rows else None


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    position, event_id, type_, aggregate_type, aggregate_id, version, at, actor, rid, data = row
    return {
        "position": position,
        "eventId": event_id,
        "type": type_,
        "aggregateType": aggregate_type,
        "aggregateId": aggregate_id,
        "version": version,
        "occurredAt": at,
        "actor": actor,
        "requestId": rid,
        "data": from_json(data),
    }
