"""The tenants read model: each tenant's representation, subscription and settings.

`evolve` is the one definition of what a tenant looks like to clients; the projection stores
its result and the audit trail's point-in-time state uses it too.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page, TenantRecord
from domain.tenant import Tenant
from projections.formats import day, from_json, instant, to_json

State = dict[str, Any]  # {"tenant": {...}, "subscription": {...}, "settings": {...}}


def evolve(state: State | None, event: Any) -> State:
    """The tenant's client-facing state after `event`."""
    if isinstance(event, Tenant.Created):
        return {
            "tenant": {
                "tenantId": str(event.originator_id),
                "name": event.name,
                "contactEmail": event.contact_email,
                "phoneNumber": event.phone_number,
                "industry": event.industry,
                "status": "active",
                "plan": event.plan,
                "createdAt": instant(event.timestamp),
                "updatedAt": instant(event.timestamp),
            },
            "subscription": {"plan": event.plan, "seats": 1, "status": "active", "renewsOn": None},
            "settings": {
                "currency": event.currency,
                "timezone": event.timezone,
                "paymentTermsDays": 30,
                "invoicePrefix": "INV",
                "featureFlags": {},
            },
            "provisionedBy": event.provisioned_by,
        }
    assert state is not None, "a tenant's first event creates it"
    tenant = state["tenant"]
    if isinstance(event, Tenant.Updated):
        tenant.update(
            name=event.name,
            contactEmail=event.contact_email,
            phoneNumber=event.phone_number,
            industry=event.industry,
        )
    elif isinstance(event, Tenant.Suspended):
        tenant["status"] = "suspended"
    elif isinstance(event, Tenant.Reactivated):
        tenant["status"] = "active"
    elif isinstance(event, Tenant.Closed):
        tenant["status"] = "closed"
    elif isinstance(event, Tenant.SubscriptionChanged):
        tenant["plan"] = event.plan
        state["subscription"] = {
            "plan": event.plan,
            "seats": event.seats,
            "status": event.status,
            "renewsOn": day(event.renews_on),
        }
    elif isinstance(event, Tenant.SettingsChanged):
        state["settings"] = {
            "currency": event.currency,
            "timezone": event.timezone,
            "paymentTermsDays": event.payment_terms_days,
            "invoicePrefix": event.invoice_prefix,
            "featureFlags": dict(event.feature_flags),
        }
    tenant["updatedAt"] = instant(event.timestamp)
    return state


class TenantsProjection:
    name = "tenants"
    tables = ("rm_tenants",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_tenants ("
        " tenant_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, provisioned_by TEXT NOT NULL,"
        " version INTEGER NOT NULL, state TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_tenants_seq ON rm_tenants (seq)",
        "CREATE INDEX IF NOT EXISTS rm_tenants_provisioned_by ON rm_tenants (provisioned_by, seq)",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, Tenant.Event):
            return
        tenant_id = str(event.originator_id)
        if isinstance(event, Tenant.Created):
            state = evolve(None, event)
            cur.execute(
                "INSERT INTO rm_tenants (tenant_id, seq, provisioned_by, version, state)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    recorded.position,
                    event.provisioned_by,
                    event.originator_version,
                    to_json(state),
                ),
            )
            return
        cur.execute("SELECT state FROM rm_tenants WHERE tenant_id = ?", (tenant_id,))
        row = cur.fetchone()
        assert row is not None, f"tenant {tenant_id} has events but no row"
        state = evolve(from_json(row[0]), event)
        cur.execute(
            "UPDATE rm_tenants SET version = ?, state = ? WHERE tenant_id = ?",
            (event.originator_version, to_json(state), tenant_id),
        )


class TenantsView:
    """Reads of the tenants read model (implements application.queries.TenantReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID) -> TenantRecord | None:
        rows = self._db.query(
            "SELECT state, version, provisioned_by FROM rm_tenants WHERE tenant_id = ?",
            (str(tenant_id),),
        )
        if not rows:
            return None
        state, version, provisioned_by = rows[0]
        parts = from_json(state)
        return TenantRecord(
            tenant=Document(doc=_raw(parts["tenant"]), version=version),
            subscription=_raw(parts["subscription"]),
            settings=_raw(parts["settings"]),
            provisioned_by=provisioned_by,
        )

    def list(
        self, *, only_tenant: UUID | None, provisioned_by: str | None, limit: int, after: int
    ) -> Page:
        where, params = ["1 = 1"], []
        if only_tenant is not None:
            where.append("tenant_id = ?")
            params.append(str(only_tenant))
        if provisioned_by is not None:
            where.append("provisioned_by = ?")
            params.append(provisioned_by)
        condition = " AND ".join(where)
        total = self._db.query(f"SELECT COUNT(*) FROM rm_tenants WHERE {condition}", params)[0][0]
        rows = self._db.query(
            f"SELECT seq, state FROM rm_tenants WHERE {condition} AND seq > ? ORDER BY seq LIMIT ?",
            (*params, after, limit + 1),
        )
        items = [_raw(from_json(state)["tenant"]) for _, state in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, total=total, next_after=rows[limit - 1][0] if more else None)


def _raw(value: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))
