"""The work read model: epics, stories, tasks and sprints, each as its representation, listed
in creation order with the filters the API offers.

The `evolve_*` functions are the one definition of what each item looks like to clients; the
projection stores their results, and the audit trail's point-in-time state can use them too
(`EVOLVERS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.work import CLOSED, COMPLETED, OPEN, TODO, Epic, Sprint, Story, Task
from projections.formats import day, from_json, ident, instant, to_json

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


@dataclass(frozen=True)
class _Table:
    """How one kind of item is stored: its table, id column, and the columns lists filter on
    (each taken from the representation, so they always agree with it)."""

    name: str
    id_column: str
    event_family: type[Any]
    created: type[Any]
    evolve: Callable[[State | None, Any], State]
    columns: tuple[tuple[str, str], ...]  # (column, representation key)


_EPICS = _Table(
    "rm_epics",
    "epic_id",
    Epic.Event,
    Epic.Created,
    evolve_epic,
    (("engagement_id", "engagementId"),),
)
_STORIES = _Table(
    "rm_stories", "story_id", Story.Event, Story.Created, evolve_story, (("epic_id", "epicId"),)
)
_TASKS = _Table(
    "rm_tasks",
    "task_id",
    Task.Event,
    Task.Created,
    evolve_task,
    (("story_id", "storyId"), ("status", "status")),
)
_SPRINTS = _Table(
    "rm_sprints",
    "sprint_id",
    Sprint.Event,
    Sprint.Created,
    evolve_sprint,
    (("engagement_id", "engagementId"),),
)
_TABLES = (_EPICS, _STORIES, _TASKS, _SPRINTS)


def _ddl(table: _Table, list_index: str) -> tuple[str, ...]:
    extra = "".join(f" {column} TEXT NOT NULL," for column, _ in table.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} ("
        f" tenant_id TEXT NOT NULL, {table.id_column} TEXT NOT NULL, seq BIGINT NOT NULL,"
        f"{extra} version INTEGER NOT NULL, doc TEXT NOT NULL,"
        f" PRIMARY KEY (tenant_id, {table.id_column}))",
        f"CREATE INDEX IF NOT EXISTS {table.name}_list ON {table.name} (tenant_id, seq)",
        f"CREATE INDEX IF NOT EXISTS {table.name}_by ON {table.name} (tenant_id, {list_index})",
    )


class WorkProjection:
    name = "work"
    tables = tuple(t.name for t in _TABLES)
    ddl = (
        *_ddl(_EPICS, "engagement_id, seq"),
        *_ddl(_STORIES, "epic_id, seq"),
        *_ddl(_TASKS, "story_id, seq"),
        *_ddl(_SPRINTS, "engagement_id, seq"),
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        for table in _TABLES:
            if isinstance(event, table.event_family):
                _apply(table, cur, recorded.position, event)
                return


def _apply(table: _Table, cur: SqlCursor, position: int, event: Any) -> None:
    tenant_id, item_id = str(event.tenant_id), str(event.originator_id)
    if isinstance(event, table.created):
        doc = table.evolve(None, event)
        names = ", ".join(column for column, _ in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        cur.execute(
            f"INSERT INTO {table.name} (tenant_id, {table.id_column}, seq, {names}, version, doc)"
            f" VALUES (?, ?, ?, {marks}, ?, ?)",
            (
                tenant_id,
                item_id,
                position,
                *(doc[key] for _, key in table.columns),
                event.originator_version,
                to_json(doc),
            ),
        )
        return
    cur.execute(
        f"SELECT doc FROM {table.name} WHERE tenant_id = ? AND {table.id_column} = ?",
        (tenant_id, item_id),
    )
    row = cur.fetchone()
    assert row is not None, f"{table.name} {item_id} has events but no row"
    doc = table.evolve(from_json(row[0]), event)
    sets = "".join(f"{column} = ?, " for column, _ in table.columns)
    cur.execute(
        f"UPDATE {table.name} SET {sets}version = ?, doc = ?"
        f" WHERE tenant_id = ? AND {table.id_column} = ?",
        (
            *(doc[key] for _, key in table.columns),
            event.originator_version,
            to_json(doc),
            tenant_id,
            item_id,
        ),
    )


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

    def _get(self, table: _Table, tenant_id: UUID, item_id: UUID) -> Document | None:
        rows = self._db.query(
            f"SELECT doc, version FROM {table.name} WHERE tenant_id = ? AND {table.id_column} = ?",
            (str(tenant_id), str(item_id)),
        )
        if not rows:
            return None
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=rows[0][1])

    def _list(
        self,
        table: _Table,
        tenant_id: UUID,
        where: dict[str, str | None],
        *,
        limit: int,
        after: int,
    ) -> Page:
        # Column names come from this module only; values are always parameters.
        given = [(column, value) for column, value in where.items() if value is not None]
        condition = " AND ".join(["tenant_id = ?", *(f"{column} = ?" for column, _ in given)])
        params: Sequence[str] = [str(tenant_id), *(value for _, value in given)]
        total = self._db.query(f"SELECT COUNT(*) FROM {table.name} WHERE {condition}", params)[0][0]
        rows = self._db.query(
            f"SELECT seq, doc FROM {table.name} WHERE {condition} AND seq > ? ORDER BY seq LIMIT ?",
            (*params, after, limit + 1),
        )
        items = [msgspec.Raw(doc.encode()) for _, doc in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, total=total, next_after=rows[limit - 1][0] if more else None)
