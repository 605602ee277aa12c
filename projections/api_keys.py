"""The API keys read model: each key's representation, never its secret or its HMAC (events
carry neither).

`evolve` is the one definition of what a key looks like to clients; the projection stores its
result and the audit trail's point-in-time state uses it too. Two fields are not the log's to
know and are completed when a key is read (application.api_keys.ApiKeyQueries): `lastUsedAt`
(from the usage store) and `status: "expired"` (a matter of the time of reading).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.api_key import ACTIVE, REVOKED, ApiKey
from projections.documents import DocumentTable
from projections.formats import instant

State = dict[str, Any]


def evolve(state: State | None, event: Any) -> State:
    """The key's client-facing representation after `event`."""
    if isinstance(event, ApiKey.Created):
        return {
            "apiKeyId": str(event.originator_id),
            "name": event.name,
            "prefix": event.prefix,
            "scopes": list(event.scopes),
            "expiresAt": None if event.expires_at is None else instant(event.expires_at),
            "allowedIps": list(event.allowed_ips),
            "rateLimitPerMinute": event.rate_limit_per_minute,
            "status": ACTIVE,
            "createdAt": instant(event.timestamp),
            "rotatedAt": None,
            "revokedAt": None,
            "lastUsedAt": None,
        }
    assert state is not None, "an API key's first event creates it"
    if isinstance(event, ApiKey.Rotated):
        state["prefix"] = event.prefix
        state["rotatedAt"] = instant(event.timestamp)
    elif isinstance(event, ApiKey.Revoked):
        state["status"] = REVOKED
        state["revokedAt"] = instant(event.timestamp)
    return state


API_KEYS = DocumentTable("rm_api_keys", "api_key_id", ApiKey.Event, ApiKey.Created, evolve)


class ApiKeysProjection:
    name = "api_keys"
    tables = (API_KEYS.name,)
    ddl = API_KEYS.ddl()

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        if isinstance(recorded.event, ApiKey.Event):
            API_KEYS.apply(cur, recorded.position, recorded.event)


class ApiKeysView:
    """Reads of the API keys read model (implements application.api_keys.ApiKeyReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID, key_id: UUID) -> Document | None:
        return API_KEYS.get(self._db, tenant_id, key_id)

    def list(self, tenant_id: UUID, *, limit: int, after: int) -> Page:
        return API_KEYS.page(self._db, tenant_id, {}, limit=limit, after=after)
