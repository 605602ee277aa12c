"""Idempotency keys in the application's database (application.ports.IdempotencyStore).

One row per (tenant, actor, key): the request's fingerprint, the owner token and lease time of
the request running it (NULL once finished), and the answer once there is one. Times are
milliseconds since the epoch, so SQLite and PostgreSQL compare them alike.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from application.idempotency import LEASE, RETENTION, Claim, IdempotencyScope, StoredResponse
from application.ports import SqlCursor, SqlDatabase

IDEMPOTENCY_DDL = (
    "CREATE TABLE IF NOT EXISTS idempotency_keys ("
    " tenant_id TEXT NOT NULL, actor TEXT NOT NULL, idempotency_key TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL, owner TEXT, created_at BIGINT NOT NULL,"
    " locked_at BIGINT NOT NULL, status INTEGER, headers TEXT, body BYTEA,"
    " PRIMARY KEY (tenant_id, actor, idempotency_key))",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at)",
)
_WHERE = "WHERE tenant_id = ? AND actor = ? AND idempotency_key = ?"
PURGE_EVERY = timedelta(minutes=1)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _ids(scope: IdempotencyScope, key: str) -> tuple[str, str, str]:
    return (str(scope.tenant_id) if scope.tenant_id else "", scope.actor, key)


class SqlIdempotencyStore:
    """Implements application.ports.IdempotencyStore.

    `begin` inserts the key if it is new (ON CONFLICT DO NOTHING) and reads the row locked, in
    one transaction: simultaneous begins with one key serialize on that row, in one process or
    many. It also purges expired keys, at most once per `purge_every` per store."""

    def __init__(
        self,
        db: SqlDatabase,
        *,
        retention: timedelta = RETENTION,
        lease: timedelta = LEASE,
        purge_every: timedelta = PURGE_EVERY,
    ) -> None:
        self._db = db
        self._retention_ms = int(retention.total_seconds() * 1000)
        self._lease_ms = int(lease.total_seconds() * 1000)
        self._purge_every_ms = int(purge_every.total_seconds() * 1000)
        self._next_purge = 0
        self._purge_lock = threading.Lock()

    def setup(self) -> None:
        with self._db.transaction() as cur:
            for ddl in IDEMPOTENCY_DDL:
                cur.execute(
                    ddl if self._db.dialect == "postgresql" else ddl.replace("BYTEA", "BLOB")
                )

    def begin(self, scope: IdempotencyScope, key: str, fingerprint: str, now: datetime) -> Claim:
        at = _ms(now)
        self._maybe_purge(now, at)
        ids = _ids(scope, key)
        token = uuid.uuid4().hex
        # A row can vanish between the insert and the read (its owner released it): go again.
        for _ in range(5):
            with self._db.transaction() as cur:
                claim = self._begin(cur, ids, fingerprint, token, at)
            if claim is not None:
                return claim
        raise RuntimeError(f"idempotency key {key!r} kept changing under this request")

    def _begin(
        self, cur: SqlCursor, ids: tuple[str, str, str], fingerprint: str, token: str, at: int
    ) -> Claim | None:
        cur.execute(
            "INSERT INTO idempotency_keys (tenant_id, actor, idempotency_key, fingerprint,"
            " owner, created_at, locked_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant_id, actor, idempotency_key) DO NOTHING",
            (*ids, fingerprint, token, at, at),
        )
        cur.execute(
            "SELECT fingerprint, owner, created_at, locked_at, status, headers, body"
            f" FROM idempotency_keys {_WHERE}{self._db.for_update}",
            ids,
        )
        row = cur.fetchone()
        if row is None:
            return None
        stored_fingerprint, owner, created_at, locked_at, status, headers, body = row
        if owner == token:
            return Claim("started", token)
        if created_at <= at - self._retention_ms:  # expired: as if it were not there
            cur.execute(
                "UPDATE idempotency_keys SET fingerprint = ?, owner = ?, created_at = ?,"
                f" locked_at = ?, status = NULL, headers = NULL, body = NULL {_WHERE}",
                (fingerprint, token, at, at, *ids),
            )
            return Claim("started", token)
        if stored_fingerprint != fingerprint:
            return Claim("mismatch")
        if status is None:
            if locked_at > at - self._lease_ms:
                return Claim("in_flight")
            # Its request died without answering: this one runs in its place.
            cur.execute(
                f"UPDATE idempotency_keys SET owner = ?, locked_at = ? {_WHERE}",
                (token, at, *ids),
            )
            return Claim("started", token)
        return Claim("replay", response=_response(status, headers, body))

    def finish(
        self, scope: IdempotencyScope, key: str, token: str, response: StoredResponse
    ) -> None:
        headers = msgspec.json.encode(response.headers).decode()
        with self._db.transaction() as cur:
            # Only while this request still owns the key: one taken over has a new owner.
            cur.execute(
                "UPDATE idempotency_keys SET owner = NULL, status = ?, headers = ?, body = ?"
                f" {_WHERE} AND owner = ?",
                (response.status, headers, response.body, *_ids(scope, key), token),
            )

    def release(self, scope: IdempotencyScope, key: str, token: str) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                f"DELETE FROM idempotency_keys {_WHERE} AND owner = ?", (*_ids(scope, key), token)
            )

    def purge(self, now: datetime) -> int:
        with self._db.transaction() as cur:
            cur.execute(
                "DELETE FROM idempotency_keys WHERE created_at <= ? RETURNING created_at",
                (_ms(now) - self._retention_ms,),
            )
            return len(cur.fetchall())

    def _maybe_purge(self, now: datetime, at: int) -> None:
        with self._purge_lock:
            if at < self._next_purge:
                return
            self._next_purge = at + self._purge_every_ms
        self.purge(now)


def _response(status: int, headers: str | None, body: Any) -> StoredResponse:
    pairs: Sequence[Sequence[str]] = msgspec.json.decode(headers) if headers else []
    return StoredResponse(
        status=int(status),
        headers=tuple((str(k), str(v)) for k, v in pairs),
        body=None if body is None else bytes(body),
    )
