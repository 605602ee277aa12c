"""The work read model: epics, stories, tasks and sprints, each as its representation, listed
in creation order with the filters the API offers.

The `evolve_*` functions are the one definition of what each item looks like to clients; the
projection stores their results, and the audit trail's point-in-time state can use them too
(`EVOLVERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.work import CLOSED, COMPLETED, OPEN, TODO, Epic, Sprint, Story, Task
from projections.documents import DocumentTable
from projections.formats import day, ident, instant

State = dict[str, Any]


def _touched(state: State | None, event: Any) -> State:
    assert state is not None, "an item's first event creates it"
    state["updatedAt"] = instant(event.timestamp)
    return state


def evolve_epic(state: State | None, event: Any) -> State:
    """The epic's client-facing representation after `event`."""
    if isinstance(event, Epic.Created):
        return {
            "epicId": str(event.originator_id),
            "engagementId": str(event.engagement_id),
            "name": event.name,
            "description": event.description,
            "status": OPEN,
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    state = _touched(state, event)
    if isinstance(event, Epic.Closed):
        state["status"] = CLOSED
    return state


def evolve_story(state: State | None, event: Any) -> State:
    """The story's client-facing representation after `event`."""
    if isinstance(event, Story.Created):
        return {
            "storyId": str(event.originator_id),
            "epicId": str(event.epic_id),
            "engagementId": str(event.engagement_id),
            "title": event.title,
            "description": event.description,
            "points": event.points,
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    return _touched(state, event)


def evolve_task(state: State | None, event: Any) -> State:
    """The task's client-facing representation after `event`."""
    if isinstance(event, Task.Created):
        return {
            "taskId": str(event.originator_id),
            "storyId": str(event.story_id),
            "engagementId": str(event.engagement_id),
            "milestoneId": ident(event.milestone_id),
            "title": event.title,
            "assigneeId": ident(event.assignee_id),
            "status": TODO,
            "completedAt": None,
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    state = _touched(state, event)
    if isinstance(event, Task.StatusChanged):
        state["status"] = event.status
    elif isinstance(event, Task.Completed):
        state["status"] = COMPLETED
        state["completedAt"] = instant(event.completed_at)
    return state


def evolve_sprint(state: State | None, event: Any) -> State:
    """The sprint's client-facing representation after `event`."""
    if isinstance(event, Sprint.Created):
        return {
            "sprintId": str(event.originator_id),
            "engagementId": str(event.engagement_id),
            "name": event.name,
            "startDate": day(event.start_date),
            "endDate": day(event.end_date),
            "goal": event.goal,
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    return _touched(state, event)


# Aggregate type name -> its representation, for the audit trail's point-in-time state.
EVOLVERS: dict[str, Callable[[State | None, Any], State]] = {
    "Epic": evolve_epic,
    "Story": evolve_story,
    "Task": evolve_task,
    "Sprint": evolve_sprint,
}


_EPICS = DocumentTable(
    "rm_epics",
    "epic_id",
    Epic.Event,
    Epic.Created,
    evolve_epic,
    (("engagement_id", "engagementId"),),
)
_STORIES = DocumentTable(
    "rm_stories", "story_id", Story.Event, Story.Created, evolve_story, (("epic_id", "epicId"),)
)
_TASKS = DocumentTable(
    "rm_tasks",
    "task_id",
    Task.Event,
    Task.Created,
    evolve_task,
    (("story_id", "storyId"), ("status", "status")),
)
_SPRINTS = DocumentTable(
    "rm_sprints",
    "sprint_id",
    Sprint.Event,
    Sprint.Created,
    evolve_sprint,
    (("engagement_id", "engagementId"),),
)
_TABLES = (_EPICS, _STORIES, _TASKS, _SPRINTS)


class WorkProjection:
    name = "work"
    tables = tuple(t.name for t in _TABLES)
    ddl = (
        *_EPICS.ddl("engagement_id, seq"),
        *_STORIES.ddl("epic_id, seq"),
        *_TASKS.ddl("story_id, seq"),
        *_SPRINTS.ddl("engagement_id, seq"),
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        for table in _TABLES:
            if isinstance(event, table.event_family):
                table.apply(cur, recorded.position, event)
                return


class WorkView:
    """Reads of the work read model (implements application.work.WorkReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def epic(self, tenant_id: UUID, epic_id: UUID) -> Document | None:
        return self._get(_EPICS, tenant_id, epic_id)

    def epics(self, tenant_id: UUID, *, engagement_id: UUID | None, limit: int, after: int) -> Page:
        where = {"engagement_id": ident(engagement_id)}
        return self._list(_EPICS, tenant_id, where, limit=limit, after=after)

    def story(self, tenant_id: UUID, story_id: UUID) -> Document | None:
        return self._get(_STORIES, tenant_id, story_id)

    def stories(self, tenant_id: UUID, *, epic_id: UUID, limit: int, after: int) -> Page:
        return self._list(_STORIES, tenant_id, {"epic_id": str(epic_id)}, limit=limit, after=after)

    def task(self, tenant_id: UUID, task_id: UUID) -> Document | None:
        return self._get(_TASKS, tenant_id, task_id)

    def tasks(
        self, tenant_id: UUID, *, story_id: UUID, status: str | None, limit: int, after: int
    ) -> Page:
        where = {"story_id": str(story_id), "status": status}
        return self._list(_TASKS, tenant_id, where, limit=limit, after=after)

    def sprint(self, tenant_id: UUID, sprint_id: UUID) -> Document | None:
        return self._get(_SPRINTS, tenant_id, sprint_id)

    def sprints(
        self, tenant_id: UUID, *, engagement_id: UUID | None, limit: int, after: int
    ) -> Page:
        where = {"engagement_id": ident(engagement_id)}
        return self._list(_SPRINTS, tenant_id, where, limit=limit, after=after)

    def _get(self, table: DocumentTable, tenant_id: UUID, item_id: UUID) -> Document | None:
        return table.get(self._db, tenant_id, item_id)

    def _list(
        self,
        table: DocumentTable,
        tenant_id: UUID,
        where: dict[str, str | None],
        *,
        limit: int,
        after: int,
    ) -> Page:
        return table.page(self._db, tenant_id, where, limit=limit, after=after)
