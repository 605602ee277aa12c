"""How read models write values: the API's JSON conventions, applied once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import msgspec


def instant(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the millisecond: 2026-01-01T10:30:00.000Z."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def ident(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def to_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def from_json(text: str | bytes) -> Any:
    return msgspec.json.decode(text)


def camel_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """An event's own fields for clients: camelCase keys, JSON-ready values (msgspec builtins:
    Decimal as string, dates and instants as ISO text, UUIDs as text)."""
    return {camel(k): v for k, v in msgspec.to_builtins(fields).items()}
