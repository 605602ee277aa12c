"""The engagements read model: each engagement with its terms and milestones.

`evolve` is the one definition of what an engagement looks like to clients; the projection
stores its result and the audit trail's point-in-time state uses it too.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.engagements import EngagementFilter
from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.engagement import Engagement
from projections.documents import DocumentTable
from projections.formats import day, ident, instant

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


ENGAGEMENTS = DocumentTable(
    "rm_engagements",
    "engagement_id",
    Engagement.Event,
    Engagement.Created,
    evolve,
    (("status", "status"), ("customer_id", "customerId")),
)


class EngagementsProjection:
    name = "engagements"
    tables = (ENGAGEMENTS.name,)
    ddl = ENGAGEMENTS.ddl("customer_id, seq")

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        if isinstance(recorded.event, Engagement.Event):
            ENGAGEMENTS.apply(cur, recorded.position, recorded.event)


class EngagementsView:
    """Reads of the engagements read model (application.engagements.EngagementReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID, engagement_id: UUID) -> Document | None:
        return ENGAGEMENTS.get(self._db, tenant_id, engagement_id)

    def list(self, tenant_id: UUID, where: EngagementFilter, *, limit: int, after: int) -> Page:
        filters = {"status": where.status, "customer_id": ident(where.customer_id)}
        return ENGAGEMENTS.page(self._db, tenant_id, filters, limit=limit, after=after)
