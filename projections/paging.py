"""Paging over read-model tables: one page of documents in creation order, with the total."""

from __future__ import annotations

from typing import Any

import msgspec

from application.ports import SqlDatabase
from application.queries import Page


def page_of(
    db: SqlDatabase,
    table: str,
    conditions: list[str],
    params: list[Any],
    *,
    limit: int,
    after: int,
) -> Page:
    """One page of `doc`s in `seq` order, with the total, for tables shaped like the read
    models here (tenant_id, ..., seq, doc)."""
    condition = " AND ".join(conditions)
    total = db.query(f"SELECT COUNT(*) FROM {table} WHERE {condition}", params)[0][0]
    rows = db.query(
        f"SELECT seq, doc FROM {table} WHERE {condition} AND seq > ? ORDER BY seq LIMIT ?",
        (*params, after, limit + 1),
    )
    items = [msgspec.Raw(doc.encode()) for _, doc in rows[:limit]]
    more = len(rows) > limit
    return Page(items=items, total=total, next_after=rows[limit - 1][0] if more else None)
