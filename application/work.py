"""Work management use cases: epics, stories, tasks and sprints of an engagement, and the
queries over their read model."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Protocol
from uuid import UUID

import msgspec

from application.claims import retry_once
from application.commands import Command
from application.context import Context
from application.errors import InvalidRequest, NotFound
from application.event_log import EventLog
from application.ports import Clock, IdGenerator
from application.queries import Document, Page, check_limit, decode_cursor
from application.results import Written
from application.tenancy import active_tenant
from domain.engagement import Engagement
from domain.person import Person
from domain.work import COMPLETED, TASK_STATUSES, Epic, Sprint, Story, Task

# An instant must say which time zone it is in; a naive one is refused at decoding (400).
Instant = Annotated[datetime, msgspec.Meta(tz=True)]


class CreateEpic(Command):
    engagement_id: UUID
    name: str
    description: str | None = None


class CreateStory(Command):
    title: str
    description: str | None = None
    points: int | None = None


class CreateTask(Command):
    title: str
    milestone_id: UUID | None = None
    assignee_id: UUID | None = None


class UpdateTask(Command):
    """PUT of a task's status: `completedAt` only with Completed (default: now)."""

    status: str
    completed_at: Instant | None = None


class CreateSprint(Command):
    engagement_id: UUID
    name: str
    start_date: date
    end_date: date
    goal: str | None = None


class WorkCommands:
    def __init__(self, log: EventLog, clock: Clock, ids: IdGenerator) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids

    def create_epic(self, ctx: Context, cmd: CreateEpic) -> Written:
        ctx.require("work:write")
        tenant = active_tenant(self._log, ctx)
        engagement = self._engagement(tenant.id, cmd.engagement_id)
        epic = Epic.open(
            epic_id=self._ids.new_id(),
            tenant_id=tenant.id,
            engagement_id=engagement.id,
            name=cmd.name,
            description=cmd.description,
            at=self._clock.now(),
        )
        return self._created(ctx, epic)

    def create_story(self, ctx: Context, epic_id: UUID, cmd: CreateStory) -> Written:
        ctx.require("work:write")
        tenant = active_tenant(self._log, ctx)
        epic = self._log.load(Epic, epic_id)
        if epic is None or epic.tenant_id != tenant.id:
            raise NotFound("epic", epic_id)
        story = Story.write(
            story_id=self._ids.new_id(),
            epic=epic,
            title=cmd.title,
            description=cmd.description,
            points=cmd.points,
            at=self._clock.now(),
        )
        return self._created(ctx, story)

    def create_task(self, ctx: Context, story_id: UUID, cmd: CreateTask) -> Written:
        """A task of a milestone is linked on the engagement in the same write; a concurrent
        write to the engagement makes it re-read and decide again, once."""
        ctx.require("work:write")
        task_id = self._ids.new_id()

        def run() -> Written:
            tenant = active_tenant(self._log, ctx)
            story = self._log.load(Story, story_id)
            if story is None or story.tenant_id != tenant.id:
                raise NotFound("story", story_id)
            engagement = self._log.load(Engagement, story.engagement_id)
            if engagement is None:
                raise NotFound("engagement", story.engagement_id)
            self._check_assignee(tenant.id, cmd.assignee_id)
            task = Task.plan(
                task_id=task_id,
                story=story,
                engagement=engagement,
                title=cmd.title,
                milestone_id=cmd.milestone_id,
                assignee_id=cmd.assignee_id,
                at=self._clock.now(),
            )
            return self._created(ctx, task, engagement)

        return retry_once(run)

    def update_task(
        self, ctx: Context, task_id: UUID, cmd: UpdateTask, if_match: int | None
    ) -> Written:
        """Completing a milestone's task also writes the engagement, which completes the
        milestone when it was the last: two last tasks completing at once both write the
        engagement, so one of them re-reads it (retry_once) and only one completes it."""
        ctx.require("work:write")

        def run() -> Written:
            tenant = active_tenant(self._log, ctx)
            task = self._log.load(Task, task_id)
            if task is None or task.tenant_id != tenant.id:
                raise NotFound("task", task_id)
            self._log.check_version(task, if_match)
            engagement = None
            if task.milestone_id is not None and cmd.status == COMPLETED:
                engagement = self._log.load(Engagement, task.engagement_id)
            task.change_status(
                status=cmd.status,
                completed_at=cmd.completed_at,
                at=self._clock.now(),
                engagement=engagement,
            )
            others = [] if engagement is None else [engagement]
            position = self._log.record(task, *others, meta=ctx.meta)
            return Written(id=task.id, version=task.version, position=position)

        return retry_once(run)

    def create_sprint(self, ctx: Context, cmd: CreateSprint) -> Written:
        ctx.require("work:write")
        tenant = active_tenant(self._log, ctx)
        engagement = self._engagement(tenant.id, cmd.engagement_id)
        sprint = Sprint.plan(
            sprint_id=self._ids.new_id(),
            tenant_id=tenant.id,
            engagement_id=engagement.id,
            name=cmd.name,
            start_date=cmd.start_date,
            end_date=cmd.end_date,
            goal=cmd.goal,
            at=self._clock.now(),
        )
        return self._created(ctx, sprint)

    # -- helpers --------------------------------------------------------------------------

    def _engagement(self, tenant_id: UUID, engagement_id: UUID) -> Engagement:
        engagement = self._log.load(Engagement, engagement_id)
        if engagement is None or engagement.tenant_id != tenant_id:
            raise InvalidRequest("engagementId", "no engagement with this id in the tenant")
        return engagement

    def _check_assignee(self, tenant_id: UUID, assignee_id: UUID | None) -> None:
        if assignee_id is None:
            return
        person = self._log.load(Person, assignee_id)
        if person is None or person.tenant_id != tenant_id:
            raise InvalidRequest("assigneeId", "no person with this id in the tenant")

    def _created(
        self, ctx: Context, item: Epic | Story | Task | Sprint, *others: Engagement
    ) -> Written:
        position = self._log.record(item, *others, meta=ctx.meta)
        return Written(id=item.id, version=item.version, position=position, created=True)


# -- the read side ------------------------------------------------------------------------


class WorkReadModel(Protocol):
    """The work read model: each item's representation, listed in creation order."""

    def epic(self, tenant_id: UUID, epic_id: UUID) -> Document | None: ...

    def epics(
        self, tenant_id: UUID, *, engagement_id: UUID | None, limit: int, after: int
    ) -> Page: ...

    def story(self, tenant_id: UUID, story_id: UUID) -> Document | None: ...

    def stories(self, tenant_id: UUID, *, epic_id: UUID, limit: int, after: int) -> Page: ...

    def task(self, tenant_id: UUID, task_id: UUID) -> Document | None: ...

    def tasks(
        self, tenant_id: UUID, *, story_id: UUID, status: str | None, limit: int, after: int
    ) -> Page: ...

    def sprint(self, tenant_id: UUID, sprint_id: UUID) -> Document | None: ...

    def sprints(
        self, tenant_id: UUID, *, engagement_id: UUID | None, limit: int, after: int
    ) -> Page: ...


class WorkQueries:
    def __init__(self, work: WorkReadModel) -> None:
        self._work = work

    def epic(self, ctx: Context, epic_id: UUID) -> Document:
        ctx.require("work:read")
        return _found(self._work.epic(ctx.require_tenant(), epic_id), "epic", epic_id)

    def epics(
        self, ctx: Context, *, engagement_id: UUID | None, limit: int, cursor: str | None
    ) -> Page:
        ctx.require("work:read")
        return self._work.epics(
            ctx.require_tenant(),
            engagement_id=engagement_id,
            limit=check_limit(limit),
            after=decode_cursor(cursor),
        )

    def story(self, ctx: Context, story_id: UUID) -> Document:
        ctx.require("work:read")
        return _found(self._work.story(ctx.require_tenant(), story_id), "story", story_id)

    def stories(self, ctx: Context, epic_id: UUID, *, limit: int, cursor: str | None) -> Page:
        self.epic(ctx, epic_id)  # another tenant's epic, or none, is a 404, not an empty list
        return self._work.stories(
            ctx.require_tenant(),
            epic_id=epic_id,
            limit=check_limit(limit),
            after=decode_cursor(cursor),
        )

    def task(self, ctx: Context, task_id: UUID) -> Document:
        ctx.require("work:read")
        return _found(self._work.task(ctx.require_tenant(), task_id), "task", task_id)

    def tasks(
        self,
        ctx: Context,
        story_id: UUID,
        *,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        self.story(ctx, story_id)
        if status is not None and status not in TASK_STATUSES:
            raise InvalidRequest("status", f"must be one of {', '.join(TASK_STATUSES)}")
        return self._work.tasks(
            ctx.require_tenant(),
            story_id=story_id,
            status=status,
            limit=check_limit(limit),
            after=decode_cursor(cursor),
        )

    def sprint(self, ctx: Context, sprint_id: UUID) -> Document:
        ctx.require("work:read")
        return _found(self._work.sprint(ctx.require_tenant(), sprint_id), "sprint", sprint_id)

    def sprints(
        self, ctx: Context, *, engagement_id: UUID | None, limit: int, cursor: str | None
    ) -> Page:
        ctx.require("work:read")
        return self._work.sprints(
            ctx.require_tenant(),
            engagement_id=engagement_id,
            limit=check_limit(limit),
            after=decode_cursor(cursor),
        )


def _found(document: Document | None, resource: str, resource_id: UUID) -> Document:
    if document is None:
        raise NotFound(resource, resource_id)
    return document
