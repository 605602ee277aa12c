"""The people read model: each person's representation, filterable by status, unit and text.

`evolve` is the one definition of what a person looks like to clients; the projection stores
its result and the audit trail's point-in-time state uses it too.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page, PeopleFilter
from domain.person import Person
from projections.formats import day, from_json, ident, instant, to_json

State = dict[str, Any]


def _profile(event: Person.Created | Person.Updated) -> dict[str, Any]:
    return {
        "firstName": event.first_name,
        "lastName": event.last_name,
        "email": event.email,
        "employeeReference": event.employee_reference,
        "jobTitle": event.job_title,
        "employmentStartDate": day(event.employment_start_date),
        "employmentEndDate": day(event.employment_end_date),
        "lineManagerId": ident(event.line_manager_id),
        "department": event.department,
        "costCentre": event.cost_centre,
    }


def evolve(state: State | None, event: Any) -> State:
    """The person's client-facing representation after `event`."""
    if isinstance(event, Person.Created):
        return {
            "personId": str(event.originator_id),
            **_profile(event),
            "organisationalUnits": list(event.organisational_units),
            "status": "active",
            "photo": {"status": "none", "approvedAt": None},
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    assert state is not None, "a person's first event creates them"
    if isinstance(event, Person.Updated):
        state.update(_profile(event))
    elif isinstance(event, Person.Deactivated):
        state["status"] = "inactive"
        state["employmentEndDate"] = day(event.employment_end_date)
    elif isinstance(event, Person.Reactivated):
        state["status"] = "active"
        state["employmentEndDate"] = None
    elif isinstance(event, Person.PhotoUploaded):
        state["photo"] = {**state["photo"], "status": "pending"}
    elif isinstance(event, Person.PhotoApproved):
        state["photo"] = {"status": "approved", "approvedAt": instant(event.timestamp)}
    elif isinstance(event, Person.UnitAssigned):
        state["organisationalUnits"] = [*state["organisationalUnits"], event.unit]
    elif isinstance(event, Person.UnitRemoved):
        state["organisationalUnits"] = [u for u in state["organisationalUnits"] if u != event.unit]
    state["updatedAt"] = instant(event.timestamp)
    return state


def _search_text(doc: State) -> str:
    return " ".join(
        doc[k] or "" for k in ("firstName", "lastName", "email", "employeeReference")
    ).casefold()


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class PeopleProjection:
    name = "people"
    tables = ("rm_people", "rm_person_units")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_people ("
        " tenant_id TEXT NOT NULL, person_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " status TEXT NOT NULL, search TEXT NOT NULL, version INTEGER NOT NULL,"
        " doc TEXT NOT NULL, PRIMARY KEY (tenant_id, person_id))",
        "CREATE INDEX IF NOT EXISTS rm_people_list ON rm_people (tenant_id, seq)",
        # Lists default to active people; their count and page then read this index only.
        "CREATE INDEX IF NOT EXISTS rm_people_active ON rm_people (tenant_id, status, seq)",
        "CREATE TABLE IF NOT EXISTS rm_person_units ("
        " tenant_id TEXT NOT NULL, unit TEXT NOT NULL, person_id TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, unit, person_id))",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, Person.Event):
            return
        tenant_id, person_id = str(event.tenant_id), str(event.originator_id)
        if isinstance(event, Person.Created):
            doc = evolve(None, event)
            cur.execute(
                "INSERT INTO rm_people (tenant_id, person_id, seq, status, search, version, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    person_id,
                    recorded.position,
                    doc["status"],
                    _search_text(doc),
                    event.originator_version,
                    to_json(doc),
                ),
            )
            cur.executemany(
                "INSERT INTO rm_person_units (tenant_id, unit, person_id) VALUES (?, ?, ?)",
                [(tenant_id, unit, person_id) for unit in event.organisational_units],
            )
            return
        cur.execute(
            "SELECT doc FROM rm_people WHERE tenant_id = ? AND person_id = ?",
            (tenant_id, person_id),
        )
        row = cur.fetchone()
        assert row is not None, f"person {person_id} has events but no row"
        doc = evolve(from_json(row[0]), event)
        cur.execute(
            "UPDATE rm_people SET status = ?, search = ?, version = ?, doc = ?"
            " WHERE tenant_id = ? AND person_id = ?",
            (
                doc["status"],
                _search_text(doc),
                event.originator_version,
                to_json(doc),
                tenant_id,
                person_id,
            ),
        )
        if isinstance(event, Person.UnitAssigned):
            cur.execute(
                "INSERT INTO rm_person_units (tenant_id, unit, person_id) VALUES (?, ?, ?)",
                (tenant_id, event.unit, person_id),
            )
        elif isinstance(event, Person.UnitRemoved):
            cur.execute(
                "DELETE FROM rm_person_units WHERE tenant_id = ? AND unit = ? AND person_id = ?",
                (tenant_id, event.unit, person_id),
            )


class PeopleView:
    """Reads of the people read model (implements application.queries.PeopleReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID, person_id: UUID) -> Document | None:
        rows = self._db.query(
            "SELECT doc, version FROM rm_people WHERE tenant_id = ? AND person_id = ?",
            (str(tenant_id), str(person_id)),
        )
        if not rows:
            return None
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=rows[0][1])

    def list(self, tenant_id: UUID, where: PeopleFilter, *, limit: int, after: int) -> Page:
        conditions, params = ["p.tenant_id = ?"], [str(tenant_id)]
        if not where.include_inactive:
            conditions.append("p.status = 'active'")
        if where.unit:
            conditions.append(
                "EXISTS (SELECT 1 FROM rm_person_units u WHERE u.tenant_id = p.tenant_id"
                " AND u.unit = ? AND u.person_id = p.person_id)"
            )
            params.append(where.unit)
        if where.q:
            conditions.append("p.search LIKE ? ESCAPE '\\'")
            params.append(_like(where.q))
        condition = " AND ".join(conditions)
        total = self._db.query(f"SELECT COUNT(*) FROM rm_people p WHERE {condition}", params)[0][0]
        rows = self._db.query(
            f"SELECT p.seq, p.doc FROM rm_people p WHERE {condition} AND p.seq > ?"
            " ORDER BY p.seq LIMIT ?",
            (*params, after, limit + 1),
        )
        items = [msgspec.Raw(doc.encode()) for _, doc in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, total=total, next_after=rows[limit - 1][0] if more else None)
