"""The ports: what the application needs from the outside world, as Protocols.

Adapters implement them; the composition root (entrypoints/container.py) picks which.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from application.idempotency import Claim, IdempotencyScope, StoredResponse


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> UUID:
        """A fresh, unguessable id."""
        ...


class Entropy(Protocol):
    def token_bytes(self, n: int) -> bytes:
        """`n` cryptographically random bytes (secrets, API keys)."""
        ...


class TokenVerifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid bearer token; raises NotAuthenticated otherwise."""
        ...


class SqlCursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class SqlDatabase(Protocol):
    """The read-model database: the same database the events live in.

    SQL uses `?` placeholders and the common subset of SQLite and PostgreSQL; the adapter
    translates placeholders. `for_update` is the row-lock suffix (empty on SQLite, where a write
    transaction already holds the database's single write lock).
    """

    dialect: Literal["sqlite", "postgresql"]
    for_update: str
    # A statement taking a transaction-scoped exclusive lock on one integer key (PostgreSQL's
    # advisory lock); empty on SQLite, whose write transaction is already exclusive.
    exclusive_lock: str

    def transaction(self) -> AbstractContextManager[SqlCursor]:
        """A write transaction: committed when the block ends, rolled back on error."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only statement."""
        ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    """Content-addressed binary storage (photos): put returns nothing, get may return None."""

    def put(self, tenant_id: UUID, sha256: str, content_type: str, data: bytes) -> None: ...

    def get(self, tenant_id: UUID, sha256: str) -> tuple[str, bytes] | None: ...


class WebhookSecrets(Protocol):
    """Webhook signing secrets, kept beside the event log, never in it (the log is kept forever
    and shown to auditors): events name a secret by its id."""

    def put(self, tenant_id: UUID, secret_id: UUID, secret: str) -> None:
        """Store a new secret (before the event that names it is recorded)."""
        ...

    def get(self, tenant_id: UUID, secret_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The secrets with these ids that exist (a missing id is simply absent)."""
        ...


class WebhookTargets(Protocol):
    """Whether a webhook URL may be sent to: its host must not resolve to a private, loopback
    or link-local address unless the server allows such targets."""

    def check(self, field: str, url: str) -> None:
        """Raises InvalidValue naming `field` when the URL's target is refused."""
        ...


class IdempotencyStore(Protocol):
    """Idempotency keys and the first answer to each, in the application's database.

    Race-free: of simultaneous `begin`s with one key exactly one is `started`. A key older than
    the retention (24 h) is absent; an unfinished request older than the lease is abandoned
    and the next `begin` may take it over."""

    def begin(self, scope: IdempotencyScope, key: str, fingerprint: str, now: datetime) -> Claim:
        """Claim `key` for a request (its fingerprint) arriving at `now`, or say why not."""
        ...

    def finish(
        self, scope: IdempotencyScope, key: str, token: str, response: StoredResponse
    ) -> None:
        """Keep the answer of the request that was `started` with `token`."""
        ...

    def release(self, scope: IdempotencyScope, key: str, token: str) -> None:
        """Forget the key of the request `started` with `token`: it may be tried again."""
        ...

    def purge(self, now: datetime) -> int:
        """Delete keys past the retention; how many. `begin` also does it now and then."""
        ...
