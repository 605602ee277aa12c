"""Idempotency keys (API.md "Conventions", docs/idempotency.md): the rules a keyed POST follows,
apart from HTTP plumbing and storage.

A key is scoped to its caller (tenant and actor); the first request with it runs, and for 24 h
the same request again gets the first answer replayed, another request with it a 422, and a
retry while the first is still running a 409. Stripe's idempotency keys are the model.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Literal
from uuid import UUID

import msgspec

from application.errors import ConcurrentWrite, ReadModelsBehind

RETENTION = timedelta(hours=24)
# An unfinished request older than this is taken to be abandoned (its process died) and the
# next request with its key may run in its place.
LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 255
# Answers bigger than this are not kept: the key stays used, but cannot be replayed.
MAX_STORED_BODY = 1024 * 1024
# What a replay repeats besides status and body; everything else (X-Request-Id, rate-limit
# headers, ...) belongs to the request that gets the replay. Cache-Control goes with the body:
# an answer that holds a secret (a new API key) says no-store, and so must its replay.
REPLAYED_HEADERS = frozenset(
    {"content-type", "location", "etag", "x-log-position", "cache-control"}
)
# Answers that say "nothing happened, try again" are forgotten rather than kept, so the same
# key may be used to try again: rate limited, a lost write race, a server failure.
_RETRYABLE_CODES = frozenset({ConcurrentWrite.code})


class IdempotencyScope(msgspec.Struct, frozen=True):
    """Whose keys: the caller's tenant (None for platform callers) and its audit actor."""

    tenant_id: UUID | None
    actor: str


class StoredResponse(msgspec.Struct, frozen=True):
    """The first answer to a key, as a replay repeats it. `body` is None when the answer was
    too large to keep (the request did run; it cannot be replayed)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


class Claim(msgspec.Struct, frozen=True):
    """What a store says when a keyed request arrives.

    started: this request runs and owns the key until it finishes (`token` proves it);
    replay: the key's first answer, in `response`; mismatch: the key was used for another
    request; in_flight: the first request with this key has not answered yet."""

    outcome: Literal["started", "replay", "mismatch", "in_flight"]
    token: str = ""
    response: StoredResponse | None = None


def key_problem(key: str) -> str | None:
    """Why `key` is not a usable Idempotency-Key, or None if it is (1..255 printable ASCII)."""
    if not key:
        return "must not be empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"must be at most {MAX_KEY_LENGTH} characters"
    if not all(" " <= c <= "~" for c in key):
        return "must be printable ASCII characters"
    return None


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """The request a key was first used for: method, path, query string and the body's exact
    bytes. Each part is length-prefixed, so no two different requests share a fingerprint by
    moving bytes from one part to the next."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def keeps(status: int, code: str | None) -> bool:
    """Whether an answer (its status and problem `code`) is kept for replay.

    Kept: every success and every client error, like Stripe. Forgotten (the key may be tried
    again): 429, a write race lost (409 concurrent-write) and server errors, except 503
    read-models-behind, which says the write was recorded: running it again would write twice."""
    if status == 429 or code in _RETRYABLE_CODES:
        return False
    if status >= 500:
        return code == ReadModelsBehind.code
    return True
