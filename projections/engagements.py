"""The engagements read model: each engagement with its terms and milestones.

`evolve` is the one definition of what an engagement looks like to clients; the projection
stores its result and the audit trail's point-in-time state uses it too.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from application.engagements import EngagementFilter
from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.engagement import Engagement
from projections.formats import day, from_json, ident, instant, to_json
from projections.paging import page_of

State = dict[str, Any]


def _terms(event: Engagement.Created | Engagement.TermsChanged) -> dict[str, Any]:
    return {
        "customerId": str(event.customer_id),
        "projectId": event.project_id,
        "contractTerms": {
            "scope": event.scope,
            "pricing": {
                "model": event.pricing_model,
                "amount": str(event.amount),
                "currency": event.currency,
            },
            "timeline": {"startDate": day(event.start_date), "endDate": day(event.end_date)},
        },
    }


def _milestone(state: State, milestone_id: UUID) -> dict[str, Any]:
    wanted = str(milestone_id)
    return next(m for m in state["milestones"] if m["milestoneId"] == wanted)


def evolve(state: State | None, event: Any) -> State:
    """The engagement's client-facing representation after `event`."""
    if isinstance(event, Engagement.Created):
        return {
            "engagementId": str(event.originator_id),
            **_terms(event),
            "squadId": ident(event.squad_id),
            "status": "Draft",
            "milestones": [],
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    assert state is not None, "an engagement's first event creates it"
    if isinstance(event, Engagement.TermsChanged):
        state.update(_terms(event))
    elif isinstance(event, Engagement.SquadAssigned):
        state["squadId"] = str(event.squad_id)
    elif isinstance(event, Engagement.Activated):
        state["status"] = "Active"
    elif isinstance(event, Engagement.Completed):
        state["status"] = "Completed"
    elif isinstance(event, Engagement.Cancelled):
        state["status"] = "Cancelled"
    elif isinstance(event, Engagement.MilestoneAdded):
        state["milestones"].append(
            {
                "milestoneId": str(event.milestone_id),
                "name": event.name,
                "dueDate": day(event.due_date),
                "amount": None if event.amount is None else str(event.amount),
                "currency": event.currency,
                "status": "Open",
                "taskCount": 0,
                "completedTaskCount": 0,
                "completedAt": None,
            }
        )
    elif isinstance(event, Engagement.MilestoneTaskLinked):
        _milestone(state, event.milestone_id)["taskCount"] += 1
    elif isinstance(event, Engagement.MilestoneTaskCompleted):
        _milestone(state, event.milestone_id)["completedTaskCount"] += 1
    elif isinstance(event, Engagement.MilestoneCompleted):
        milestone = _milestone(state, event.milestone_id)
        milestone["status"] = "Completed"
        milestone["completedAt"] = instant(event.timestamp)
    state["updatedAt"] = instant(event.timestamp)
    return state


class EngagementsProjection:
    name = "engagements"
    tables = ("rm_engagements",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_engagements ("
        " tenant_id TEXT NOT NULL, engagement_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " status TEXT NOT NULL, customer_id TEXT NOT NULL, version INTEGER NOT NULL,"
        " doc TEXT NOT NULL, PRIMARY KEY (tenant_id, engagement_id))",
        "CREATE INDEX IF NOT EXISTS rm_engagements_list ON rm_engagements (tenant_id, seq)",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, Engagement.Event):
            return
        key = (str(event.tenant_id), str(event.originator_id))
        if isinstance(event, Engagement.Created):
            doc = evolve(None, event)
            cur.execute(
                "INSERT INTO rm_engagements (tenant_id, engagement_id, seq, status, customer_id,"
                " version, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    recorded.position,
                    doc["status"],
                    doc["customerId"],
                    event.originator_version,
                    to_json(doc),
                ),
            )
            return
        cur.execute("SELECT doc FROM rm_engagements WHERE tenant_id = ? AND engagement_id = ?", key)
        row = cur.fetchone()
        assert row is not None, f"engagement {key[1]} has events but no row"
        doc = evolve(from_json(row[0]), event)
        cur.execute(
            "UPDATE rm_engagements SET status = ?, customer_id = ?, version = ?, doc = ?"
            " WHERE tenant_id = ? AND engagement_id = ?",
            (doc["status"], doc["customerId"], event.originator_version, to_json(doc), *key),
        )


class EngagementsView:
    """Reads of the engagements read model (application.engagements.EngagementReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID, engagement_id: UUID) -> Document | None:
        rows = self._db.query(
            "SELECT doc, version FROM rm_engagements WHERE tenant_id = ? AND engagement_id = ?",
            (str(tenant_id), str(engagement_id)),
        )
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=rows[0][1]) if rows else None

    def list(self, tenant_id: UUID, where: EngagementFilter, *, limit: int, after: int) -> Page:
        conditions, params = ["tenant_id = ?"], [str(tenant_id)]
        if where.status:
            conditions.append("status = ?")
            params.append(where.status)
        if where.customer_id:
            conditions.append("customer_id = ?")
            params.append(str(where.customer_id))
        return page_of(self._db, "rm_engagements", conditions, params, limit=limit, after=after)
