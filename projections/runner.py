"""Runs projections: reads the log after each projection's tracking position and applies new
events and the new position in one transaction, so each event is applied exactly once and a
crash never half-applies a batch.

Any number of threads and processes may call `catch_up`: the tracking rows are locked for the
length of a batch (SELECT ... FOR UPDATE on PostgreSQL; the single write lock on SQLite), and
positions are re-read under that lock, so concurrent runners never apply an event twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from application.event_log import EventLog, RecordedEvent
from application.ports import SqlCursor, SqlDatabase

log = logging.getLogger(__name__)


class Projection(Protocol):
    """One read model: its tables, how an event changes them, and how to empty them."""

    name: str
    ddl: tuple[str, ...]
    tables: tuple[str, ...]

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None: ...


# Fixed: every process running projections must agree on it. A runner of another set of
# projections (the webhook outbox) takes its own key, so the two never wait for each other.
RUNNER_LOCK_KEY = 7_318_004_211

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)


class ProjectionRunner:
    def __init__(
        self,
        log: EventLog,
        db: SqlDatabase,
        projections: list[Projection],
        batch_size: int = 500,
        *,
        lock_key: int = RUNNER_LOCK_KEY,
    ) -> None:
        self._log = log
        self._lock_key = lock_key
        self._db = db
        self._projections = projections
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._applied = 0  # highest position known to be applied by every projection
        names = ", ".join("?" for _ in projections)
        self._select_tracking = (
            f"SELECT name, position FROM projection_tracking WHERE name IN ({names}){db.for_update}"
        )

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._projections]

    def setup(self) -> None:
        """Create the read-model tables and tracking rows if they do not exist."""
        with self._db.transaction() as cur:
            cur.execute(TRACKING_DDL)
            for projection in self._projections:
                for statement in projection.ddl:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO projection_tracking (name, position) VALUES (?, 0)"
                    " ON CONFLICT (name) DO NOTHING",
                    (projection.name,),
                )

    def position(self) -> int:
        """The position every projection has reached."""
        rows = self._db.query(
            "SELECT MIN(position) FROM projection_tracking WHERE name IN "
            f"({', '.join('?' for _ in self._projections)})",
            self.names,
        )
        return int(rows[0][0] or 0)

    def catch_up(self, until: int | None = None) -> int:
        """Apply events until every projection has reached `until` (default: the log's head).

        Returns the position reached. Cheap when already there: no database round trip.
        """
        target = self._log.head() if until is None else until
        while self._applied < target:
            applied_any = self.run_batch()
            if not applied_any and self._applied < target:
                # Nothing new to read yet the target is ahead: it lies in a gap of the log
                # (a rolled-back write). Everything that exists has been applied.
                break
        return self._applied

    def _lock_out_other_runners(self, cur: SqlCursor) -> None:
        """One runner of a set of projections at a time, across processes (an advisory lock on
        PostgreSQL; SQLite's write transaction already is one). Row locks alone deadlocked
        under load once, so the whole batch is serialised first."""
        if self._db.exclusive_lock:
            cur.execute(self._db.exclusive_lock, (self._lock_key,))
        cur.execute(self._select_tracking, self.names)

    def run_batch(self) -> bool:
        """Apply up to one batch of new events to every projection. True if any were read."""
        with self._lock, self._db.transaction() as cur:
            self._lock_out_other_runners(cur)
            reached = self._apply_batch(cur, dict(cur.fetchall()))
        if reached is None:
            return False
        self._applied = max(self._applied, reached)
        return True

    def replay(self) -> int:
        """Rebuild every read model from the start of the log, in one transaction: readers see
        the old rows until the rebuilt ones commit. Returns the position reached."""
        with self._lock, self._db.transaction() as cur:
            self._lock_out_other_runners(cur)
            for projection in self._projections:
                for table in projection.tables:
                    cur.execute(f"DELETE FROM {table}")
            positions = dict.fromkeys(self.names, 0)
            while (reached := self._apply_batch(cur, positions)) is not None:
                positions = dict.fromkeys(self.names, reached)
            self._applied = positions[self.names[0]]
        return self._applied

    def _apply_batch(self, cur: SqlCursor, positions: dict[str, int]) -> int | None:
        """Apply the next batch after `positions`; returns the new position, None if no events."""
        start = min(positions.values())
        events = self._log.read(start, self._batch_size)
        if not events:
            self._applied = max(self._applied, start)
            return None
        for projection in self._projections:
            done = positions[projection.name]
            for recorded in events:
                if recorded.position > done:
                    projection.apply(cur, recorded)
        last = events[-1].position
        cur.execute(
            "UPDATE projection_tracking SET position = ? WHERE name IN "
            f"({', '.join('?' for _ in self._projections)})",
            (last, *self.names),
        )
        return last
