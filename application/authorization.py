"""Roles, permissions and the caller. The role table lives here and in docs/authorization.md.

A permission is a `resource:action` string; a role is a set of permissions; API-key scopes use
the same strings. Platform roles act across tenants; tenant roles act inside their token's tenant.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

from application.errors import Forbidden

TENANT_PERMISSIONS = frozenset(
    {
        "tenant:read",
        "tenant:write",
        "person:read",
        "person:write",
        "customer:read",
        "customer:write",
        "engagement:read",
        "engagement:write",
        "squad:read",
        "squad:write",
        "work:read",
        "work:write",
        "invoice:read",
        "invoice:write",
        "invoice:issue",
        "payment:read",
        "payment:write",
        "webhook:manage",
        "apikey:manage",
        "audit:read",
        "recruitment:import",
    }
)
# Provisioning and the lifecycle of whole tenants belong to the platform side.
PLATFORM_ONLY_PERMISSIONS = frozenset({"tenant:create", "tenant:manage"})
ALL_PERMISSIONS = TENANT_PERMISSIONS | PLATFORM_ONLY_PERMISSIONS

_READS = frozenset(p for p in TENANT_PERMISSIONS if p.endswith(":read"))

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "platform-admin": ALL_PERMISSIONS,
    "partner-admin": frozenset({"tenant:create", "tenant:read", "tenant:write", "tenant:manage"}),
    "customer-admin": TENANT_PERMISSIONS,
    "project-manager": frozenset(
        {
            "tenant:read",
            "person:read",
            "customer:read",
            "engagement:read",
            "engagement:write",
            "squad:read",
            "squad:write",
            "work:read",
            "work:write",
            "invoice:read",
        }
    ),
    "squad-lead": frozenset(
        {
            "tenant:read",
            "person:read",
            "customer:read",
            "engagement:read",
            "squad:read",
            "work:read",
            "work:write",
        }
    ),
    "member": frozenset(
        {
            "tenant:read",
            "person:read",
            "engagement:read",
            "squad:read",
            "work:read",
            "work:write",
        }
    ),
    "finance": frozenset(
        {
            "tenant:read",
            "person:read",
            "customer:read",
            "engagement:read",
            "invoice:read",
            "invoice:write",
            "invoice:issue",
            "payment:read",
            "payment:write",
        }
    ),
    "auditor": _READS | {"audit:read"},
}
PLATFORM_ROLES = frozenset({"platform-admin", "partner-admin"})
TENANT_ROLES = frozenset(ROLE_PERMISSIONS) - PLATFORM_ROLES


def permissions_for(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The union of the permissions of the known roles; unknown roles grant nothing."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: established by the HTTP layer from a JWT or an API key."""

    subject: str
    tenant_id: UUID | None
    roles: tuple[str, ...]
    permissions: frozenset[str]
    auth_method: Literal["jwt", "apiKey", "system"] = "jwt"
    api_key_id: UUID | None = None
    # The key's own limit (API keys only); the tenant's limit applies to every caller in it.
    rate_limit_per_minute: int | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        if self.auth_method == "system":
            return f"system:{self.subject}"
        if self.api_key_id is not None:
            return f"apikey:{self.api_key_id}"
        return f"user:{self.subject}"

    @property
    def is_platform_admin(self) -> bool:
        return "platform-admin" in self.roles

    @property
    def is_partner_admin(self) -> bool:
        return "partner-admin" in self.roles

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(f"this action needs the {permission!r} permission")
