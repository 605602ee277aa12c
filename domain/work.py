"""Work management inside an engagement: epics, their stories, the stories' tasks, and sprints.

An epic groups stories; a story groups tasks; every item belongs to one engagement (a story and
its tasks copy the engagement of their epic). A task moves Todo <-> InProgress -> Completed,
and Completed is final. A task may belong to one of its engagement's milestones: linking it and
completing it are also writes to the engagement, saved with the task, so the engagement (one
aggregate, serialised by optimistic concurrency) completes the milestone exactly once, when its
last task completes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import values
from domain.engagement import ACTIVE as ENGAGEMENT_ACTIVE
from domain.engagement import DRAFT as ENGAGEMENT_DRAFT
from domain.engagement import Engagement
from domain.errors import IllegalTransition, InvalidValue
from domain.events import TenantEvent

OPEN, CLOSED = "Open", "Closed"
TODO, IN_PROGRESS, COMPLETED = "Todo", "InProgress", "Completed"
TASK_STATUSES = (TODO, IN_PROGRESS, COMPLETED)
# The moves a task may make; Completed is final (and completing again changes nothing).
TASK_MOVES = {TODO: (IN_PROGRESS,), IN_PROGRESS: (TODO, COMPLETED), COMPLETED: ()}
MAX_POINTS = 100


class Epic(Aggregate):
    """A large piece of work in an engagement, split into stories."""

    TOPIC = "workledger:Epic"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:EpicCreated"
        engagement_id: UUID
        name: str
        description: str | None

    class Closed(Event):
        TOPIC = "workledger:EpicClosed"

        def apply(self, aggregate: Epic) -> None:
            aggregate.status = CLOSED

    def __init__(
        self, tenant_id: UUID, engagement_id: UUID, name: str, description: str | None
    ) -> None:
        self.tenant_id = tenant_id
        self.engagement_id = engagement_id
        self.name = name
        self.description = description
        self.status = OPEN

    @classmethod
    def open(
        cls,
        *,
        epic_id: UUID,
        tenant_id: UUID,
        engagement_id: UUID,
        name: str,
        description: str | None,
        at: datetime,
    ) -> Epic:
        """A new, open epic of the engagement."""
        return cls._create(
            cls.Created,
            id=epic_id,
            tenant_id=tenant_id,
            timestamp=at,
            engagement_id=engagement_id,
            name=values.required_text("name", name),
            description=values.optional_text("description", description, 5000),
        )

    def close(self, *, at: datetime) -> None:
        """No stories may be added to a closed epic."""
        if self.status != OPEN:
            raise IllegalTransition("epic", "close", self.status)
        self.trigger_event(self.Closed, tenant_id=self.tenant_id, timestamp=at)


class Story(Aggregate):
    """A piece of an epic that delivers something on its own, estimated in points."""

    TOPIC = "workledger:Story"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:StoryCreated"
        epic_id: UUID
        engagement_id: UUID
        title: str
        description: str | None
        points: int | None

    def __init__(
        self,
        tenant_id: UUID,
        epic_id: UUID,
        engagement_id: UUID,
        title: str,
        description: str | None,
        points: int | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.epic_id = epic_id
        self.engagement_id = engagement_id
        self.title = title
        self.description = description
        self.points = points

    @classmethod
    def write(
        cls,
        *,
        story_id: UUID,
        epic: Epic,
        title: str,
        description: str | None,
        points: int | None,
        at: datetime,
    ) -> Story:
        """A new story of an open epic, in the epic's engagement."""
        if epic.status != OPEN:
            raise IllegalTransition("epic", "add a story to", epic.status)
        return cls._create(
            cls.Created,
            id=story_id,
            tenant_id=epic.tenant_id,
            timestamp=at,
            epic_id=epic.id,
            engagement_id=epic.engagement_id,
            title=values.required_text("title", title),
            description=values.optional_text("description", description, 5000),
            points=story_points(points),
        )


def story_points(points: int | None) -> int | None:
    # bool is an int to Python, never to a client.
    if points is not None and (isinstance(points, bool) or not 0 <= points <= MAX_POINTS):
        raise InvalidValue("points", f"must be a whole number from 0 to {MAX_POINTS}")
    return points


class Task(Aggregate):
    """The smallest unit of work: someone does it, then it is done, for good."""

    TOPIC = "workledger:Task"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:TaskCreated"
        story_id: UUID
        engagement_id: UUID
        milestone_id: UUID | None
        title: str
        assignee_id: UUID | None

    class StatusChanged(Event):
        """Between Todo and InProgress (completion has its own event)."""

        TOPIC = "workledger:TaskStatusChanged"
        status: str

        def apply(self, aggregate: Task) -> None:
            aggregate.status = self.status

    class Completed(Event):
        """Carries the engagement and milestone so subscribers need not read the task back."""

        TOPIC = "workledger:TaskCompleted"
        webhook = "task.completed"
        engagement_id: UUID
        milestone_id: UUID | None
        completed_at: datetime

        def apply(self, aggregate: Task) -> None:
            aggregate.status = COMPLETED
            aggregate.completed_at = self.completed_at

    def __init__(
        self,
        tenant_id: UUID,
        story_id: UUID,
        engagement_id: UUID,
        milestone_id: UUID | None,
        title: str,
        assignee_id: UUID | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.story_id = story_id
        self.engagement_id = engagement_id
        self.milestone_id = milestone_id
        self.title = title
        self.assignee_id = assignee_id
        self.status = TODO
        self.completed_at: datetime | None = None

    @classmethod
    def plan(
        cls,
        *,
        task_id: UUID,
        story: Story,
        engagement: Engagement,
        title: str,
        milestone_id: UUID | None,
        assignee_id: UUID | None,
        at: datetime,
    ) -> Task:
        """A new Todo task of `story`, whose engagement must be Draft or Active.

        A task of a milestone is linked to it on `engagement` (UnknownMilestone when the
        milestone is not one of that engagement's): the caller saves both aggregates together.
        """
        if engagement.id != story.engagement_id:
            raise ValueError("the engagement must be the story's own")
        if engagement.status not in (ENGAGEMENT_DRAFT, ENGAGEMENT_ACTIVE):
            raise IllegalTransition("engagement", "add a task to", engagement.status)
        checked_title = values.required_text("title", title)
        if milestone_id is not None:
            engagement.link_task(milestone_id=milestone_id, task_id=task_id, at=at)
        return cls._create(
            cls.Created,
            id=task_id,
            tenant_id=story.tenant_id,
            timestamp=at,
            story_id=story.id,
            engagement_id=story.engagement_id,
            milestone_id=milestone_id,
            title=checked_title,
            assignee_id=assignee_id,
        )

    def change_status(
        self,
        *,
        status: str,
        completed_at: datetime | None,
        at: datetime,
        engagement: Engagement | None = None,
    ) -> bool:
        """Move the task to `status`; returns whether anything was recorded.

        Staying in the same status records nothing (completing a completed task included);
        leaving Completed, or skipping InProgress, is an IllegalTransition. `completed_at` (only
        with Completed; default `at`) must not be after `at`. Completing a task of a milestone
        tells `engagement` (the task's own, required then), which the caller saves with the task.
        """
        values.one_of("status", status, TASK_STATUSES)
        if status == COMPLETED:
            done_at = _completion_time(completed_at, at)
        elif completed_at is not None:
            raise InvalidValue("completedAt", "may only be given when completing the task")
        if status == self.status:
            return False
        if status not in TASK_MOVES[self.status]:
            raise IllegalTransition("task", f"move to {status}", self.status)
        if status != COMPLETED:
            self.trigger_event(
                self.StatusChanged, tenant_id=self.tenant_id, timestamp=at, status=status
            )
            return True
        if self.milestone_id is not None:
            if engagement is None or engagement.id != self.engagement_id:
                raise ValueError("completing a milestone's task needs the task's engagement")
            engagement.task_completed(milestone_id=self.milestone_id, task_id=self.id, at=at)
        self.trigger_event(
            self.Completed,
            tenant_id=self.tenant_id,
            timestamp=at,
            engagement_id=self.engagement_id,
            milestone_id=self.milestone_id,
            completed_at=done_at,
        )
        return True


def _completion_time(completed_at: datetime | None, at: datetime) -> datetime:
    if completed_at is None:
        return at
    if completed_at.tzinfo is None or completed_at.utcoffset() is None:
        raise InvalidValue("completedAt", "must be an instant with a time zone, such as ...Z")
    if completed_at > at:
        raise InvalidValue("completedAt", "must not be in the future")
    return completed_at.astimezone(UTC)


class Sprint(Aggregate):
    """A time box of an engagement's work, with an optional goal."""

    TOPIC = "workledger:Sprint"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:SprintCreated"
        engagement_id: UUID
        name: str
        start_date: date
        end_date: date
        goal: str | None

    def __init__(
        self,
        tenant_id: UUID,
        engagement_id: UUID,
        name: str,
        start_date: date,
        end_date: date,
        goal: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.engagement_id = engagement_id
        self.name = name
        self.start_date = start_date
        self.end_date = end_date
        self.goal = goal

    @classmethod
    def plan(
        cls,
        *,
        sprint_id: UUID,
        tenant_id: UUID,
        engagement_id: UUID,
        name: str,
        start_date: date,
        end_date: date,
        goal: str | None,
        at: datetime,
    ) -> Sprint:
        """A sprint from `start_date` to `end_date`, both included."""
        values.date_not_before("endDate", end_date, start_date)
        return cls._create(
            cls.Created,
            id=sprint_id,
            tenant_id=tenant_id,
            timestamp=at,
            engagement_id=engagement_id,
            name=values.required_text("name", name),
            start_date=start_date,
            end_date=end_date,
            goal=values.optional_text("goal", goal, 1000),
        )
