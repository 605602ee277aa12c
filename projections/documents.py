"""Document tables: the common shape of a read model that keeps each resource's
representation (`doc`, built by an `evolve` function) with its version, its creation position
(`seq`, the list order) and a few columns that lists filter on, all derived from the doc so
they always agree with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from projections.formats import from_json, to_json
from projections.paging import page_of

State = dict[str, Any]


@dataclass(frozen=True)
class DocumentTable:
    name: str
    id_column: str
    event_family: type[Any]  # the aggregate's Event base class
    created: type[Any]  # the event that creates the resource
    evolve: Callable[[State | None, Any], State]
    columns: tuple[tuple[str, str], ...] = ()  # (column, representation key), TEXT NOT NULL

    def ddl(self, list_index: str | None = None) -> tuple[str, ...]:
        extra = "".join(f" {column} TEXT NOT NULL," for column, _ in self.columns)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.name} ("
            f" tenant_id TEXT NOT NULL, {self.id_column} TEXT NOT NULL, seq BIGINT NOT NULL,"
            f"{extra} version INTEGER NOT NULL, doc TEXT NOT NULL,"
            f" PRIMARY KEY (tenant_id, {self.id_column}))",
            f"CREATE INDEX IF NOT EXISTS {self.name}_list ON {self.name} (tenant_id, seq)",
        ]
        if list_index:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {self.name}_by"
                f" ON {self.name} (tenant_id, {list_index})"
            )
        return tuple(statements)

    def apply(self, cur: SqlCursor, position: int, event: Any) -> State:
        """Fold one of the resource's events into its row; returns the new representation."""
        tenant_id, item_id = str(event.tenant_id), str(event.originator_id)
        if isinstance(event, self.created):
            doc = self.evolve(None, event)
            names = "".join(f"{column}, " for column, _ in self.columns)
            marks = "".join("?, " for _ in self.columns)
            cur.execute(
                f"INSERT INTO {self.name} (tenant_id, {self.id_column}, seq, {names}version, doc)"
                f" VALUES (?, ?, ?, {marks}?, ?)",
                (
                    tenant_id,
                    item_id,
                    position,
                    *self._values(doc),
                    event.originator_version,
                    to_json(doc),
                ),
            )
            return doc
        cur.execute(
            f"SELECT doc FROM {self.name} WHERE tenant_id = ? AND {self.id_column} = ?",
            (tenant_id, item_id),
        )
        row = cur.fetchone()
        assert row is not None, f"{self.name} {item_id} has events but no row"
        doc = self.evolve(from_json(row[0]), event)
        sets = "".join(f"{column} = ?, " for column, _ in self.columns)
        cur.execute(
            f"UPDATE {self.name} SET {sets}version = ?, doc = ?"
            f" WHERE tenant_id = ? AND {self.id_column} = ?",
            (*self._values(doc), event.originator_version, to_json(doc), tenant_id, item_id),
        )
        return doc

    def get(self, db: SqlDatabase, tenant_id: UUID, item_id: UUID) -> Document | None:
        rows = db.query(
            f"SELECT doc, version FROM {self.name} WHERE tenant_id = ? AND {self.id_column} = ?",
            (str(tenant_id), str(item_id)),
        )
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=rows[0][1]) if rows else None

    def page(
        self,
        db: SqlDatabase,
        tenant_id: UUID,
        where: dict[str, str | None],
        *,
        limit: int,
        after: int,
    ) -> Page:
        """A page in creation order; `where` maps filter columns (of this table) to values,
        None meaning no filter."""
        given = [(column, value) for column, value in where.items() if value is not None]
        conditions = ["tenant_id = ?", *(f"{column} = ?" for column, _ in given)]
        params: list[Any] = [str(tenant_id), *(value for _, value in given)]
        return page_of(db, self.name, conditions, params, limit=limit, after=after)

    def _values(self, doc: State) -> list[Any]:
        return [doc[key] for _, key in self.columns]
