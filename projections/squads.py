"""The squads read model: squads, and their assignments to engagements (active and ended)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from application.squads import AssignmentRow
from domain.squad import Squad
from projections.formats import day, from_json, ident, instant, to_json
from projections.paging import page_of

State = dict[str, Any]


def _details(event: Squad.Created | Squad.Updated) -> dict[str, Any]:
    return {
        "name": event.name,
        "capacityHoursPerWeek": str(event.capacity_hours_per_week),
        "memberIds": [str(m) for m in event.member_ids],
        "leadId": ident(event.lead_id),
    }


def evolve(state: State | None, event: Any) -> State:
    """The squad's client-facing representation after `event`."""
    if isinstance(event, Squad.Created):
        return {
            "squadId": str(event.originator_id),
            **_details(event),
            "activeAssignments": 0,
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    assert state is not None, "a squad's first event creates it"
    if isinstance(event, Squad.Updated):
        state.update(_details(event))
    elif isinstance(event, Squad.AssignmentAdded):
        state["activeAssignments"] += 1
    elif isinstance(event, Squad.AssignmentEnded):
        state["activeAssignments"] -= 1
    state["updatedAt"] = instant(event.timestamp)
    return state


def assignment_doc(event: Squad.AssignmentAdded) -> dict[str, Any]:
    return {
        "assignmentId": str(event.assignment_id),
        "squadId": str(event.originator_id),
        "engagementId": str(event.engagement_id),
        "hoursPerWeek": str(event.hours_per_week),
        "from": day(event.start),
        "to": day(event.end),
        "status": "active",
        "createdAt": instant(event.timestamp),
        "endedAt": None,
    }


class SquadsProjection:
    name = "squads"
    tables = ("rm_squads", "rm_assignments")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_squads ("
        " tenant_id TEXT NOT NULL, squad_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " capacity TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, squad_id))",
        "CREATE INDEX IF NOT EXISTS rm_squads_list ON rm_squads (tenant_id, seq)",
        "CREATE TABLE IF NOT EXISTS rm_assignments ("
        " tenant_id TEXT NOT NULL, assignment_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " squad_id TEXT NOT NULL, engagement_id TEXT NOT NULL, status TEXT NOT NULL,"
        " hours TEXT NOT NULL, start_date TEXT NOT NULL, end_date TEXT NOT NULL,"
        " doc TEXT NOT NULL, PRIMARY KEY (tenant_id, assignment_id))",
        "CREATE INDEX IF NOT EXISTS rm_assignments_squad"
        " ON rm_assignments (tenant_id, squad_id, status)",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, Squad.Event):
            return
        key = (str(event.tenant_id), str(event.originator_id))
        if isinstance(event, Squad.Created):
            doc = evolve(None, event)
            cur.execute(
                "INSERT INTO rm_squads (tenant_id, squad_id, seq, capacity, version, doc)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    recorded.position,
                    doc["capacityHoursPerWeek"],
                    event.originator_version,
                    to_json(doc),
                ),
            )
            return
        cur.execute("SELECT doc FROM rm_squads WHERE tenant_id = ? AND squad_id = ?", key)
        row = cur.fetchone()
        assert row is not None, f"squad {key[1]} has events but no row"
        doc = evolve(from_json(row[0]), event)
        cur.execute(
            "UPDATE rm_squads SET capacity = ?, version = ?, doc = ?"
            " WHERE tenant_id = ? AND squad_id = ?",
            (doc["capacityHoursPerWeek"], event.originator_version, to_json(doc), *key),
        )
        if isinstance(event, Squad.AssignmentAdded):
            assignment = assignment_doc(event)
            cur.execute(
                "INSERT INTO rm_assignments (tenant_id, assignment_id, seq, squad_id,"
                " engagement_id, status, hours, start_date, end_date, doc)"
                " VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                (
                    key[0],
                    assignment["assignmentId"],
                    recorded.position,
                    key[1],
                    assignment["engagementId"],
                    assignment["hoursPerWeek"],
                    assignment["from"],
                    assignment["to"],
                    to_json(assignment),
                ),
            )
        elif isinstance(event, Squad.AssignmentEnded):
            ids = (key[0], str(event.assignment_id))
            cur.execute(
                "SELECT doc FROM rm_assignments WHERE tenant_id = ? AND assignment_id = ?", ids
            )
            found = cur.fetchone()
            assert found is not None, f"assignment {ids[1]} ended but was never added"
            ended = {**from_json(found[0]), "status": "ended", "endedAt": instant(event.timestamp)}
            cur.execute(
                "UPDATE rm_assignments SET status = 'ended', doc = ?"
                " WHERE tenant_id = ? AND assignment_id = ?",
                (to_json(ended), *ids),
            )


class SquadsView:
    """Reads of squads and assignments (application.squads.SquadReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID, squad_id: UUID) -> Document | None:
        rows = self._db.query(
            "SELECT doc, version FROM rm_squads WHERE tenant_id = ? AND squad_id = ?",
            (str(tenant_id), str(squad_id)),
        )
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=rows[0][1]) if rows else None

    def list(self, tenant_id: UUID, *, limit: int, after: int) -> Page:
        return page_of(
            self._db, "rm_squads", ["tenant_id = ?"], [str(tenant_id)], limit=limit, after=after
        )

    def capacity(self, tenant_id: UUID, squad_id: UUID) -> Decimal | None:
        rows = self._db.query(
            "SELECT capacity FROM rm_squads WHERE tenant_id = ? AND squad_id = ?",
            (str(tenant_id), str(squad_id)),
        )
        return Decimal(rows[0][0]) if rows else None

    def active_assignments(self, tenant_id: UUID, squad_id: UUID) -> list[AssignmentRow]:
        rows = self._db.query(
            "SELECT hours, start_date, end_date FROM rm_assignments"
            " WHERE tenant_id = ? AND squad_id = ? AND status = 'active'",
            (str(tenant_id), str(squad_id)),
        )
        return [
            msgspec.convert({"hours_per_week": h, "start": s, "end": e}, AssignmentRow)
            for h, s, e in rows
        ]

    def assignment(self, tenant_id: UUID, assignment_id: UUID) -> Document | None:
        rows = self._db.query(
            "SELECT doc FROM rm_assignments WHERE tenant_id = ? AND assignment_id = ?",
            (str(tenant_id), str(assignment_id)),
        )
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=1) if rows else None

    def assignments(
        self,
        tenant_id: UUID,
        *,
        squad_id: UUID | None,
        engagement_id: UUID | None,
        limit: int,
        after: int,
    ) -> Page:
        conditions, params = ["tenant_id = ?"], [str(tenant_id)]
        if squad_id:
            conditions.append("squad_id = ?")
            params.append(str(squad_id))
        if engagement_id:
            conditions.append("engagement_id = ?")
            params.append(str(engagement_id))
        return page_of(self._db, "rm_assignments", conditions, params, limit=limit, after=after)
