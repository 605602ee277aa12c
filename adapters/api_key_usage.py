"""API-key usage (application.api_keys.ApiKeyUsage): requests per key and UTC day, and when
each key was last used.

Not event-sourced: one event per request would flood the log. Requests are counted in memory
and a background thread adds the counts to `api_key_usage` at most every `flush_seconds`
(by default 1 s), so no request pays for a write transaction. The usage endpoint flushes this
process's counts before it answers; other processes' counts arrive within their next flush (about
a second). On shutdown the counts are flushed; a process that is killed loses at most its last
second of counts. Counts from several processes add up (an upsert that increments).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

from application.ports import SqlDatabase
from projections.formats import instant

log = logging.getLogger(__name__)

USAGE_DDL = (
    "CREATE TABLE IF NOT EXISTS api_key_usage ("
    " tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, day TEXT NOT NULL,"
    " requests BIGINT NOT NULL, last_used_at TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, key_id, day))"
)


@dataclass
class _Tally:
    requests: int
    last_used_at: str  # RFC 3339

    def add(self, requests: int, last_used_at: str) -> None:
        self.requests += requests
        self.last_used_at = max(self.last_used_at, last_used_at)


Counts = dict[tuple[UUID, UUID, date], _Tally]


class BufferedApiKeyUsage:
    def __init__(self, db: SqlDatabase, *, flush_seconds: float = 1.0) -> None:
        self._db = db
        self._interval = flush_seconds
        self._pending: Counts = {}
        self._lock = threading.Lock()  # guards _pending and the thread's start
        self._flush_lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Instants are stored as RFC 3339 text with milliseconds in UTC, whose text order is
        # time order, so the later of two is their greater.
        greatest = "MAX" if db.dialect == "sqlite" else "GREATEST"
        self._upsert = (
            "INSERT INTO api_key_usage (tenant_id, key_id, day, requests, last_used_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, key_id, day) DO UPDATE SET"
            " requests = api_key_usage.requests + excluded.requests,"
            f" last_used_at = {greatest}(api_key_usage.last_used_at, excluded.last_used_at)"
        )

    def setup(self) -> None:
        with self._db.transaction() as cur:
            cur.execute(USAGE_DDL)

    def record(self, tenant_id: UUID, key_id: UUID, at: datetime) -> None:
        when = instant(at)
        with self._lock:
            slot = (tenant_id, key_id, at.astimezone(UTC).date())
            self._pending.setdefault(slot, _Tally(0, when)).add(1, when)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="api-key-usage", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return
            rows = [
                (str(tenant), str(key), day.isoformat(), tally.requests, tally.last_used_at)
                for (tenant, key, day), tally in pending.items()
            ]
            try:
                with self._db.transaction() as cur:
                    cur.executemany(self._upsert, rows)
            except Exception:
                with self._lock:  # keep the counts for the next flush
                    for slot, tally in pending.items():
                        kept = self._pending.setdefault(slot, _Tally(0, tally.last_used_at))
                        kept.add(tally.requests, tally.last_used_at)
                raise

    def last_used(self, tenant_id: UUID, key_ids: Sequence[UUID]) -> dict[UUID, str]:
        if not key_ids:
            return {}
        marks = ", ".join("?" for _ in key_ids)
        rows = self._db.query(
            "SELECT key_id, MAX(last_used_at) FROM api_key_usage"
            f" WHERE tenant_id = ? AND key_id IN ({marks}) GROUP BY key_id",
            (str(tenant_id), *(str(k) for k in key_ids)),
        )
        return {UUID(key_id): last for key_id, last in rows}

    def daily(self, tenant_id: UUID, key_id: UUID, since: date) -> dict[date, int]:
        rows = self._db.query(
            "SELECT day, requests FROM api_key_usage"
            " WHERE tenant_id = ? AND key_id = ? AND day >= ? ORDER BY day",
            (str(tenant_id), str(key_id), since.isoformat()),
        )
        return {date.fromisoformat(day): int(requests) for day, requests in rows}

    def close(self) -> None:
        """Stop the background flushes and write what is left."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)
        try:
            self.flush()
        except Exception:
            log.exception("could not write the last API-key usage counts")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # the counts stay pending; the next flush retries them
                log.exception("could not write API-key usage counts")
