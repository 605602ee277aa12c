"""The context every command and query runs in: who, for which tenant, under which request."""

from __future__ import annotations

from uuid import UUID

import msgspec

from application.authorization import Principal
from application.errors import Forbidden


class EventMeta(msgspec.Struct, frozen=True, rename="camel"):
    """What the application records next to every event: the event log is the audit trail."""

    actor: str
    request_id: str


class Context(msgspec.Struct, frozen=True):
    principal: Principal
    request_id: str
    # The tenant this call acts in: the token's tenant, or (platform-admin only) ?tenantId=.
    tenant_id: UUID | None

    @property
    def meta(self) -> EventMeta:
        return EventMeta(actor=self.principal.actor, request_id=self.request_id)

    def require(self, permission: str) -> None:
        self.principal.require(permission)

    def require_tenant(self) -> UUID:
        """The tenant to act in; platform callers must name one with ?tenantId=."""
        if self.tenant_id is None:
            raise Forbidden("this call acts inside a tenant: pass ?tenantId=")
        return self.tenant_id


def system_context(process: str, request_id: str = "") -> Context:
    """For work the system does by itself (policies, imports): actor `system:<process>`."""
    principal = Principal(
        subject=process,
        tenant_id=None,
        roles=("system",),
        permissions=frozenset(),
        auth_method="system",
    )
    return Context(principal=principal, request_id=request_id or process, tenant_id=None)
