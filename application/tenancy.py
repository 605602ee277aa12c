"""The tenant a command writes into: it must exist and accept writes (be active)."""

from __future__ import annotations

from application.context import Context
from application.errors import NotFound
from application.event_log import EventLog
from domain.tenant import Tenant


def active_tenant(log: EventLog, ctx: Context) -> Tenant:
    """The caller's tenant, which must accept writes (403 tenant-not-active otherwise)."""
    tenant_id = ctx.require_tenant()
    tenant = log.load(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant", tenant_id)
    tenant.ensure_accepts_writes()
    return tenant
