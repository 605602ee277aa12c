"""The read-model database (application.ports.SqlDatabase) on SQLite and on PostgreSQL.

Read models live in the same database as the event log, so a deployment has one thing to back
up and replay always reads the log it rebuilds from. SQL is written once with `?` placeholders.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg_pool import ConnectionPool


class SqliteDatabase:
    dialect: Literal["sqlite", "postgresql"] = "sqlite"
    for_update = ""  # a write transaction already holds SQLite's single write lock
    exclusive_lock = ""

    def __init__(self, path: str, lock_timeout_seconds: float = 10.0) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._timeout = lock_timeout_seconds
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        conn = self._connection()
        cur = conn.cursor()
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY instead of waiting its turn.
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


_PLACEHOLDER = re.compile(r"\?")


class _PgCursor:
    """A psycopg cursor that speaks `?` placeholders."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(_translate(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cur.executemany(_translate(sql), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cur.fetchall()


def _translate(sql: str) -> str:
    return _PLACEHOLDER.sub("%s", sql)


class PostgresDatabase:
    dialect: Literal["sqlite", "postgresql"] = "postgresql"
    for_update = " FOR UPDATE"
    exclusive_lock = "SELECT pg_advisory_xact_lock(?)"

    def __init__(self, conninfo: str, *, schema: str | None = None, pool_size: int = 5) -> None:
        options = f"-c search_path={schema}" if schema else None
        kwargs: dict[str, Any] = {"options": options} if options else {}
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs=kwargs,
            open=True,
        )

    @contextmanager
    def transaction(self) -> Iterator[_PgCursor]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PgCursor(cur)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(_translate(sql), params)
            return cur.fetchall()

    def close(self) -> None:
        self._pool.close()
