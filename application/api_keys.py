"""API keys: machine clients' credentials inside a tenant. Issuing, rotating and revoking them
(event-sourced, audited), reading them and their usage, and authenticating a request by key.

Only an HMAC-SHA256 of each key is stored (under a server secret, in the key-hash store beside
the log); the key itself is shown once, in the answer that issues it. Authentication reads the
ApiKey aggregate straight from the log (the key embeds its id), so revocation, rotation and
expiry hold on the very next request in every process, with no read-model lag.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Protocol
from uuid import UUID

import msgspec

from application.authorization import TENANT_PERMISSIONS, Principal
from application.commands import Command
from application.context import Context
from application.errors import Forbidden, InvalidRequest, NotAuthenticated, NotFound
from application.event_log import EventLog
from application.ports import Clock, Entropy, IdGenerator
from application.queries import Document, Page, check_limit, decode_cursor
from application.results import Written
from application.tenancy import active_tenant
from domain.api_key import (
    EXPIRED,
    REVOKED,
    SECRET_BYTES,
    ApiKey,
    blocks_within,
    cidr_blocks,
    display_prefix,
    expiry,
    format_key,
    key_id_of,
)

MANAGE = "apikey:manage"
MAX_USAGE_DAYS = 90
DEFAULT_USAGE_DAYS = 30


class CreateApiKey(Command):
    name: str
    scopes: list[str]
    # With a time zone (`Z` or an offset): a local time would mean something else on every
    # server.
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    allowed_ips: list[str] | None = None
    rate_limit_per_minute: int | None = None


class RotateApiKey(Command):
    """How long the secret being replaced keeps working (0, the default: not at all)."""

    grace_period_seconds: int = 0


class IssuedKey(msgspec.Struct, frozen=True):
    """A key was issued (created or rotated): the write, and the key, which is never
    retrievable again."""

    written: Written
    key: str


# -- ports --------------------------------------------------------------------------------


class ApiKeyHashes(Protocol):
    """The HMACs of API keys, beside the event log and never in it: events name a key's HMAC
    by its hash id. A hash id's HMAC never changes."""

    def put(self, tenant_id: UUID, hash_id: UUID, key_hash: str) -> None:
        """Store a new HMAC (before the event that names it is recorded)."""
        ...

    def get(self, tenant_id: UUID, hash_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The HMACs with these ids that exist (a missing id is simply absent)."""
        ...


class ApiKeyUsage(Protocol):
    """When keys were last used and how many requests they made per UTC day. Not
    event-sourced (it would flood the log): counted in memory and written in the background,
    so a request never waits for a write."""

    def record(self, tenant_id: UUID, key_id: UUID, at: datetime) -> None:
        """Count one request made with the key at `at` (cheap: no I/O)."""
        ...

    def flush(self) -> None:
        """Write what this process has counted and not written yet."""
        ...

    def last_used(self, tenant_id: UUID, key_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The last use of each key that was ever used, as an RFC 3339 instant."""
        ...

    def daily(self, tenant_id: UUID, key_id: UUID, since: date) -> dict[date, int]:
        """Requests per UTC day from `since` on (days without requests are absent)."""
        ...


class ApiKeyReadModel(Protocol):
    def get(self, tenant_id: UUID, key_id: UUID) -> Document | None: ...

    def list(self, tenant_id: UUID, *, limit: int, after: int) -> Page: ...


class KeyHasher:
    """HMAC-SHA256 of keys under the server's API-key secret (hex). Without the secret a
    stolen copy of the hashes verifies nothing."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the API-key secret must not be empty")
        self._secret = secret.encode()

    def hash(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def matches(self, key: str, stored: str) -> bool:
        return hmac.compare_digest(self.hash(key), stored)


# -- commands -----------------------------------------------------------------------------


class ApiKeyCommands:
    def __init__(
        self,
        log: EventLog,
        clock: Clock,
        ids: IdGenerator,
        entropy: Entropy,
        hashes: ApiKeyHashes,
        hasher: KeyHasher,
    ) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids
        self._entropy = entropy
        self._hashes = hashes
        self._hasher = hasher

    def create(self, ctx: Context, cmd: CreateApiKey) -> IssuedKey:
        """Issue a key. Nobody mints more power than they have (403 otherwise): its scopes
        must be permissions its creator holds, and a key made by a key lives no longer and
        reaches no more addresses than that key (it inherits the expiry and the allowlist
        when it names none)."""
        ctx.require(MANAGE)
        now = self._clock.now()
        expires_at, allowed_ips = cmd.expires_at, cmd.allowed_ips
        acting = self._acting_key(ctx)
        if acting is not None:
            expires_at = expires_at or acting.expires_at
            allowed_ips = allowed_ips or acting.allowed_ips
        # Checked here as well as in the domain, so that bad input is a 400 before any 403.
        expires_at = expiry("expiresAt", expires_at, now)
        allowed_ips = cidr_blocks("allowedIps", allowed_ips)
        self._refuse_more_power(ctx, acting, cmd.scopes, expires_at, allowed_ips)
        tenant = active_tenant(self._log, ctx)
        key_id, hash_id = self._ids.new_id(), self._ids.new_id()
        key = format_key(key_id, self._entropy.token_bytes(SECRET_BYTES))
        api_key = ApiKey.issue(
            key_id=key_id,
            tenant_id=tenant.id,
            name=cmd.name,
            scopes=cmd.scopes,
            grantable=TENANT_PERMISSIONS,
            expires_at=expires_at,
            allowed_ips=allowed_ips,
            rate_limit_per_minute=cmd.rate_limit_per_minute,
            prefix=display_prefix(key),
            hash_id=hash_id,
            at=now,
        )
        # The HMAC goes first: an HMAC no event names (the save failed) is harmless, an event
        # naming a missing HMAC would be a key that can never work.
        self._hashes.put(tenant.id, hash_id, self._hasher.hash(key))
        position = self._log.record(api_key, meta=ctx.meta)
        written = Written(id=key_id, version=api_key.version, position=position, created=True)
        return IssuedKey(written=written, key=key)

    def rotate(
        self,
        ctx: Context,
        key_id: UUID,
        cmd: RotateApiKey,
        expected_version: int | None = None,
    ) -> IssuedKey:
        """A new secret for the key (same id, scopes and limits); the old one keeps working
        for the grace period asked for. The caller gets the key's power, so it must hold it
        (as to create the key). A concurrent rotation of the same key is a 409."""
        ctx.require(MANAGE)
        tenant = active_tenant(self._log, ctx)
        api_key = self._key(tenant.id, key_id)
        EventLog.check_version(api_key, expected_version)
        self._refuse_more_power(
            ctx, self._acting_key(ctx), api_key.scopes, api_key.expires_at, api_key.allowed_ips
        )
        hash_id = self._ids.new_id()
        key = format_key(key_id, self._entropy.token_bytes(SECRET_BYTES))
        api_key.rotate(
            prefix=display_prefix(key),
            hash_id=hash_id,
            grace=_grace(cmd.grace_period_seconds),
            at=self._clock.now(),
        )
        self._hashes.put(tenant.id, hash_id, self._hasher.hash(key))
        position = self._log.record(api_key, meta=ctx.meta)
        return IssuedKey(Written(id=key_id, version=api_key.version, position=position), key)

    def revoke(self, ctx: Context, key_id: UUID, expected_version: int | None = None) -> Written:
        """Stop the key for good. Allowed in a suspended tenant too: it is how a tenant stops
        a leaked key."""
        ctx.require(MANAGE)
        api_key = self._key(ctx.require_tenant(), key_id)
        EventLog.check_version(api_key, expected_version)
        api_key.revoke(at=self._clock.now())
        position = self._log.record(api_key, meta=ctx.meta)
        return Written(id=key_id, version=api_key.version, position=position)

    def _key(self, tenant_id: UUID, key_id: UUID) -> ApiKey:
        api_key = self._log.load(ApiKey, key_id)
        if api_key is None or api_key.tenant_id != tenant_id:
            raise NotFound("API key", key_id)
        return api_key

    def _acting_key(self, ctx: Context) -> ApiKey | None:
        """The key the caller authenticated with, as the log has it now (None for a token)."""
        key_id = ctx.principal.api_key_id
        return None if key_id is None else self._log.load(ApiKey, key_id)

    @staticmethod
    def _refuse_more_power(
        ctx: Context,
        acting: ApiKey | None,
        scopes: list[str],
        expires_at: datetime | None,
        allowed_ips: list[str],
    ) -> None:
        """Forbidden unless the caller holds every power a key with these scopes, expiry and
        allowlist has: the permissions, and, for a caller that is itself a key, no later
        expiry and no address outside its allowlist."""
        beyond = [
            s for s in scopes if s in TENANT_PERMISSIONS and s not in ctx.principal.permissions
        ]
        if beyond:
            raise Forbidden(
                f"an API key may only hold permissions you hold; you lack {', '.join(beyond)}"
            )
        if acting is None:
            return
        if acting.expires_at is not None and (expires_at is None or expires_at > acting.expires_at):
            raise Forbidden(
                "a key made or rotated by an API key may not outlive it: expiresAt must be"
                f" {acting.expires_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} or earlier"
            )
        if not blocks_within(allowed_ips, acting.allowed_ips):
            raise Forbidden(
                "a key made or rotated by an API key may only be used from addresses that key"
                f" may be used from: allowedIps within {', '.join(acting.allowed_ips)}"
            )


def _grace(seconds: int) -> timedelta:
    # Bounded here only so that timedelta cannot overflow; the domain states the real range.
    return timedelta(seconds=max(-1, min(seconds, 10**9)))


# -- authentication -----------------------------------------------------------------------


class ApiKeyAuthenticator:
    """Turns an `X-API-Key` into the Principal it stands for, or refuses it."""

    def __init__(
        self, log: EventLog, hashes: ApiKeyHashes, hasher: KeyHasher, usage: ApiKeyUsage
    ) -> None:
        self._log = log
        self._hashes = hashes
        self._hasher = hasher
        self._usage = usage

    def authenticate_key(self, key: str, client_ip: str | None, now: datetime) -> Principal:
        """The key's Principal: its tenant, its scopes as permissions, its rate limit.

        NotAuthenticated (401) for a malformed, unknown, expired, revoked or rotated-out key;
        Forbidden (403) when `client_ip` is outside the key's allowlist. A malformed key or a
        bad checksum is refused before anything is read. Why a key is refused (expired,
        revoked) is told only to a caller that presented one of its secrets."""
        key_id = key_id_of(key)
        if key_id is None:
            raise NotAuthenticated("the API key is malformed (wrong length, prefix or checksum)")
        api_key = self._log.load(ApiKey, key_id)
        matched = None if api_key is None else self._secret_of(api_key, key)
        if api_key is None or matched is None:
            raise NotAuthenticated("the API key is not valid")
        if matched not in api_key.accepted_hash_ids(now):
            raise NotAuthenticated(_refusal(api_key, now))
        if not api_key.admits(client_ip):
            raise Forbidden(
                f"this API key may not be used from {client_ip or 'an unknown address'}"
            )
        self._usage.record(api_key.tenant_id, key_id, now)
        return Principal(
            subject=f"apikey:{key_id}",
            tenant_id=api_key.tenant_id,
            roles=(),
            permissions=frozenset(api_key.scopes),
            auth_method="apiKey",
            api_key_id=key_id,
            rate_limit_per_minute=api_key.rate_limit_per_minute,
        )

    def _secret_of(self, api_key: ApiKey, key: str) -> UUID | None:
        """The hash id of the secret `key` is (the key's current or previous one, accepted
        now or not), or None."""
        ids = [i for i in (api_key.hash_id, api_key.previous_hash_id) if i is not None]
        stored = self._hashes.get(api_key.tenant_id, ids)
        return next((i for i in ids if i in stored and self._hasher.matches(key, stored[i])), None)


def _refusal(api_key: ApiKey, now: datetime) -> str:
    status = api_key.status(now)
    if status == REVOKED:
        return "the API key has been revoked"
    if status == EXPIRED:
        return "the API key has expired"
    return "the API key has been rotated; use the key the rotation returned"


# -- the read side ------------------------------------------------------------------------


class ApiKeyQueries:
    """Reads of keys, completed with what the read model cannot know: when each was last used
    (the usage store) and whether it has expired by now."""

    def __init__(self, keys: ApiKeyReadModel, usage: ApiKeyUsage, clock: Clock) -> None:
        self._keys = keys
        self._usage = usage
        self._clock = clock

    def get(self, ctx: Context, key_id: UUID) -> Document:
        ctx.require(MANAGE)
        tenant_id = ctx.require_tenant()
        document = self._keys.get(tenant_id, key_id)
        if document is None:
            raise NotFound("API key", key_id)
        self._usage.flush()
        last_used = self._usage.last_used(tenant_id, [key_id])
        doc = _completed(msgspec.json.decode(document.doc), last_used, self._clock.now())
        return Document(doc=msgspec.Raw(msgspec.json.encode(doc)), version=document.version)

    def list(self, ctx: Context, *, limit: int, cursor: str | None) -> Page:
        ctx.require(MANAGE)
        tenant_id = ctx.require_tenant()
        page = self._keys.list(tenant_id, limit=check_limit(limit), after=decode_cursor(cursor))
        docs = [msgspec.json.decode(item) for item in page.items]
        self._usage.flush()
        last_used = self._usage.last_used(tenant_id, [UUID(d["apiKeyId"]) for d in docs])
        now = self._clock.now()
        items = [msgspec.Raw(msgspec.json.encode(_completed(d, last_used, now))) for d in docs]
        return Page(items=items, total=page.total, next_after=page.next_after)

    def usage(self, ctx: Context, key_id: UUID, days: int) -> dict[str, Any]:
        """`{"apiKeyId", "lastUsedAt", "days": [{"date", "requests"}]}`: the last `days` UTC
        days, oldest first, today included, days without requests as 0."""
        if not 1 <= days <= MAX_USAGE_DAYS:
            raise InvalidRequest("days", f"must be between 1 and {MAX_USAGE_DAYS}")
        self.get(ctx, key_id)  # the key must be visible; flushes this process's counts
        tenant_id = ctx.require_tenant()
        today = self._clock.now().date()
        since = today - timedelta(days=days - 1)
        counts = self._usage.daily(tenant_id, key_id, since)
        return {
            "apiKeyId": str(key_id),
            "lastUsedAt": self._usage.last_used(tenant_id, [key_id]).get(key_id),
            "days": [
                {"date": day.isoformat(), "requests": counts.get(day, 0)}
                for day in (since + timedelta(days=n) for n in range(days))
            ],
        }


def _completed(doc: dict[str, Any], last_used: dict[UUID, str], now: datetime) -> dict[str, Any]:
    doc["lastUsedAt"] = last_used.get(UUID(doc["apiKeyId"]))
    expires_at = doc.get("expiresAt")
    if doc["status"] == "active" and expires_at and _instant(expires_at) <= now:
        doc["status"] = EXPIRED
    return doc


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
