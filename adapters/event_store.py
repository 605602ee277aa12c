"""The event store's settings: eventsourcing's SQLite recorder (embedded default) or its
PostgreSQL recorder (production), chosen by WORKLEDGER_DATABASE_URL. Same code either way."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from adapters.settings import Settings, postgres_parts
from application.event_log import EventLog


def event_store_env(settings: Settings) -> dict[str, str]:
    if not settings.is_postgres:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": settings.sqlite_path,
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    parts = postgres_parts(settings.database_url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts["dbname"],
        "POSTGRES_HOST": parts["host"],
        "POSTGRES_PORT": parts["port"],
        "POSTGRES_USER": parts["user"],
        "POSTGRES_PASSWORD": parts["password"],
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
    }
    if parts["schema"]:
        env["POSTGRES_SCHEMA"] = parts["schema"]
    return env


def postgres_conninfo(settings: Settings) -> str:
    parts = postgres_parts(settings.database_url)
    return make_conninfo(
        host=parts["host"],
        port=parts["port"],
        user=parts["user"] or None,
        password=parts["password"] or None,
        dbname=parts["dbname"],
    )


def ensure_schema(settings: Settings) -> None:
    """Create the PostgreSQL schema named by ?schema= (a cell, or an isolated test run)."""
    schema = postgres_parts(settings.database_url)["schema"]
    if not settings.is_postgres or not schema:
        return
    with psycopg.connect(postgres_conninfo(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def open_event_log(settings: Settings) -> EventLog:
    if not settings.is_postgres and settings.sqlite_path != ":memory:":
        Path(settings.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    ensure_schema(settings)
    return EventLog(env=event_store_env(settings))
