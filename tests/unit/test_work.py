"""Work items in the domain: epics, stories and sprints refuse bad values; a task's status is a
state machine (Todo <-> InProgress -> Completed, Completed final), and a milestone whose tasks
all complete completes exactly once, whatever the order and however often completion is sent.

The state machine saves every step through a real (in-memory) event log and checks that the
aggregates read back from it are the ones in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain import work
from domain.engagement import Engagement, Terms, UnknownMilestone
from domain.errors import IllegalTransition, InvalidValue
from domain.events import TenantEvent
from domain.work import COMPLETED, IN_PROGRESS, TODO, Epic, Sprint, Story, Task
from tests.unit.support import META, memory_log

TENANT = UUID("00000000-0000-4000-8000-000000000001")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# The moves the API promises (API.md and the task rules): anything else from a state is illegal.
LEGAL = {(TODO, IN_PROGRESS), (IN_PROGRESS, TODO), (IN_PROGRESS, COMPLETED)}


def an_engagement(*, milestones: int = 1, at: datetime = START) -> Engagement:
    engagement = Engagement.draft(
        engagement_id=uuid4(),
        tenant_id=TENANT,
        terms=Terms(
            customer_id=uuid4(),
            project_id=None,
            scope="Build the thing",
            pricing_model="fixed-price",
            amount=Decimal("50000.00"),
            currency="USD",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        ),
        squad_id=uuid4(),
        at=at,
    )
    for n in range(milestones):
        engagement.add_milestone(
            milestone_id=uuid4(),
            name=f"Milestone {n}",
            due_date=date(2026, 6, 30),
            amount=Decimal("1000.00"),
            at=at,
        )
    return engagement


def an_epic(engagement: Engagement) -> Epic:
    return Epic.open(
        epic_id=uuid4(),
        tenant_id=TENANT,
        engagement_id=engagement.id,
        name="Onboarding",
        description=None,
        at=START,
    )


def a_story(epic: Epic, points: int | None = 3) -> Story:
    return Story.write(
        story_id=uuid4(), epic=epic, title="Sign-up form", description=None, points=points, at=START
    )


def milestones_completed(engagement: Engagement) -> list[Any]:
    return [e for e in engagement.pending_events if isinstance(e, Engagement.MilestoneCompleted)]


# -- epics, stories, sprints ---------------------------------------------------------------


def test_an_epic_is_open_until_closed_and_then_takes_no_stories() -> None:
    epic = an_epic(an_engagement())
    assert epic.status == "Open"
    a_story(epic)

    epic.close(at=START)

    assert epic.status == "Closed"
    with pytest.raises(IllegalTransition):
        epic.close(at=START)
    with pytest.raises(IllegalTransition):
        a_story(epic)


@pytest.mark.parametrize(
    ("name", "description", "field_name"),
    [("  ", None, "name"), ("n" * 201, None, "name"), ("Epic", "d" * 5001, "description")],
)
def test_an_epic_refuses_bad_text(name: str, description: str | None, field_name: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        Epic.open(
            epic_id=uuid4(),
            tenant_id=TENANT,
            engagement_id=uuid4(),
            name=name,
            description=description,
            at=START,
        )
    assert caught.value.field == field_name


def test_an_epic_trims_its_text() -> None:
    epic = Epic.open(
        epic_id=uuid4(),
        tenant_id=TENANT,
        engagement_id=uuid4(),
        name=" Payments ",
        description="   ",
        at=START,
    )
    assert (epic.name, epic.description) == ("Payments", None)


@pytest.mark.parametrize("points", [None, 0, 1, 13, 100])
def test_a_story_takes_0_to_100_points_and_its_epics_engagement(points: int | None) -> None:
    engagement = an_engagement()
    epic = an_epic(engagement)
    story = a_story(epic, points)
    assert story.points == points
    assert story.epic_id == epic.id
    assert story.engagement_id == engagement.id
    assert story.tenant_id == TENANT


@pytest.mark.parametrize("points", [-1, 101, 10**9, True])
def test_a_story_refuses_points_out_of_range(points: int) -> None:
    with pytest.raises(InvalidValue) as caught:
        a_story(an_epic(an_engagement()), points)
    assert caught.value.field == "points"


def test_a_story_needs_a_title() -> None:
    with pytest.raises(InvalidValue) as caught:
        Story.write(
            story_id=uuid4(),
            epic=an_epic(an_engagement()),
            title=" ",
            description=None,
            points=None,
            at=START,
        )
    assert caught.value.field == "title"


def test_a_sprint_ends_on_or_after_its_start() -> None:
    def plan(end: date) -> Sprint:
        return Sprint.plan(
            sprint_id=uuid4(),
            tenant_id=TENANT,
            engagement_id=uuid4(),
            name=" Sprint 1 ",
            start_date=date(2026, 3, 2),
            end_date=end,
            goal=None,
            at=START,
        )

    assert plan(date(2026, 3, 2)).name == "Sprint 1"
    with pytest.raises(InvalidValue) as caught:
        plan(date(2026, 3, 1))
    assert caught.value.field == "endDate"


# -- tasks and milestones ------------------------------------------------------------------


def plan_task(
    story: Story, engagement: Engagement, milestone_id: UUID | None = None, title: str = "Do it"
) -> Task:
    return Task.plan(
        task_id=uuid4(),
        story=story,
        engagement=engagement,
        title=title,
        milestone_id=milestone_id,
        assignee_id=None,
        at=START,
    )


def test_a_task_starts_todo_in_its_storys_engagement_and_links_its_milestone() -> None:
    engagement = an_engagement()
    (milestone_id,) = engagement.milestones
    story = a_story(an_epic(engagement))
    before = len(engagement.pending_events)

    task = plan_task(story, engagement, milestone_id)

    assert (task.status, task.completed_at) == (TODO, None)
    assert (task.story_id, task.engagement_id, task.milestone_id) == (
        story.id,
        engagement.id,
        milestone_id,
    )
    (linked,) = engagement.pending_events[before:]
    assert isinstance(linked, Engagement.MilestoneTaskLinked)
    assert (linked.milestone_id, linked.task_id) == (milestone_id, task.id)


def test_a_task_without_a_milestone_does_not_touch_the_engagement() -> None:
    engagement = an_engagement()
    story = a_story(an_epic(engagement))
    before = list(engagement.pending_events)
    plan_task(story, engagement)
    assert engagement.pending_events == before


def test_a_task_on_an_unknown_milestone_is_refused_and_links_nothing() -> None:
    engagement = an_engagement()
    other = an_engagement()
    story = a_story(an_epic(engagement))
    before = list(engagement.pending_events)
    for milestone_id in (uuid4(), next(iter(other.milestones))):
        with pytest.raises(UnknownMilestone) as caught:
            plan_task(story, engagement, milestone_id)
        assert caught.value.field == "milestoneId"
    assert engagement.pending_events == before


def test_a_task_needs_a_title() -> None:
    engagement = an_engagement()
    story = a_story(an_epic(engagement))
    before = list(engagement.pending_events)
    with pytest.raises(InvalidValue) as caught:
        plan_task(story, engagement, next(iter(engagement.milestones)), title="")
    assert caught.value.field == "title"
    assert engagement.pending_events == before  # refused before linking anything


@pytest.mark.parametrize("end", ["cancel", "complete"])
def test_tasks_are_only_added_while_the_engagement_is_draft_or_active(end: str) -> None:
    engagement = an_engagement()
    story = a_story(an_epic(engagement))
    plan_task(story, engagement)
    engagement.activate(at=START)
    plan_task(story, engagement)
    if end == "cancel":
        engagement.cancel(reason=None, at=START)
    else:
        engagement.complete(at=START)
    with pytest.raises(IllegalTransition) as caught:
        plan_task(story, engagement)
    assert caught.value.aggregate == "engagement"


def test_a_completed_milestone_takes_no_more_tasks() -> None:
    engagement = an_engagement()
    (milestone_id,) = engagement.milestones
    engagement.activate(at=START)
    engagement.complete_milestone(milestone_id=milestone_id, at=START)
    with pytest.raises(IllegalTransition):
        plan_task(a_story(an_epic(engagement)), engagement, milestone_id)


def test_completing_a_milestones_task_needs_its_engagement() -> None:
    engagement = an_engagement()
    task = plan_task(a_story(an_epic(engagement)), engagement, next(iter(engagement.milestones)))
    task.change_status(status=IN_PROGRESS, completed_at=None, at=START)
    with pytest.raises(ValueError, match="engagement"):
        task.change_status(status=COMPLETED, completed_at=None, at=START)
    with pytest.raises(ValueError, match="engagement"):
        task.change_status(
            status=COMPLETED, completed_at=None, at=START, engagement=an_engagement()
        )
    assert task.status == IN_PROGRESS


def test_the_milestone_completes_once_when_its_last_task_completes() -> None:
    engagement = an_engagement()
    (milestone_id,) = engagement.milestones
    story = a_story(an_epic(engagement))
    first, second = (
        plan_task(story, engagement, milestone_id),
        plan_task(story, engagement, milestone_id),
    )
    for task in (first, second):
        task.change_status(status=IN_PROGRESS, completed_at=None, at=START)

    first.change_status(status=COMPLETED, completed_at=None, at=START, engagement=engagement)
    assert milestones_completed(engagement) == []
    second.change_status(status=COMPLETED, completed_at=None, at=START, engagement=engagement)
    (done,) = milestones_completed(engagement)
    assert (done.milestone_id, done.trigger, done.amount) == (milestone_id, "tasks", Decimal(1000))
    for task in (first, second):
        assert not task.change_status(
            status=COMPLETED, completed_at=None, at=START, engagement=engagement
        )
    assert len(milestones_completed(engagement)) == 1


def test_event_topics_are_stable_and_only_task_completed_is_a_webhook() -> None:
    aggregates = [Epic, Story, Task, Sprint]
    events = [
        value
        for aggregate in aggregates
        for value in vars(aggregate).values()
        if isinstance(value, type) and issubclass(value, TenantEvent) and "TOPIC" in vars(value)
    ]
    topics = {get_topic(cls) for cls in events}
    assert topics == {
        "workledger:EpicCreated",
        "workledger:EpicClosed",
        "workledger:StoryCreated",
        "workledger:TaskCreated",
        "workledger:TaskStatusChanged",
        "workledger:TaskCompleted",
        "workledger:SprintCreated",
    }
    assert {get_topic(a) for a in aggregates} == {
        "workledger:Epic",
        "workledger:Story",
        "workledger:Task",
        "workledger:Sprint",
    }
    assert {cls.webhook for cls in events if cls.webhook} == {"task.completed"}
    assert Task.Completed.webhook == "task.completed"


# -- the task state machine ----------------------------------------------------------------

STATUSES = st.sampled_from([TODO, IN_PROGRESS, COMPLETED, "Done", "todo", "", "Completed "])
# How completedAt is sent, relative to the command's instant: a tz-aware offset, naive, or absent.
WHENS = st.one_of(
    st.none(),
    st.sampled_from(["naive", "other-zone"]),
    st.integers(min_value=-(10**8), max_value=10**6),  # microseconds; > 0 is in the future
)


@dataclass
class TaskModel:
    status: str = TODO
    completed_at: datetime | None = None
    version: int = 1


@dataclass
class World:
    engagement: Engagement
    milestone_id: UUID
    tasks: list[Task]
    models: list[TaskModel]
    linked: list[bool]
    milestone_events: list[Any] = field(default_factory=list)


class TaskStatusMachine(RuleBasedStateMachine):
    """Tasks of one story, some linked to one milestone, moved around at random; every step is
    saved (tasks with the engagement) to a real event log and read back."""

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.log = memory_log()
        self.clock = START

    def now(self) -> datetime:
        self.clock += timedelta(minutes=7, microseconds=3)
        return self.clock

    @initialize(linked=st.lists(st.booleans(), min_size=1, max_size=4), activate=st.booleans())
    def plan(self, linked: list[bool], activate: bool) -> None:
        engagement = an_engagement(at=self.now())
        if activate:
            engagement.activate(at=self.now())
        (milestone_id,) = engagement.milestones
        story = a_story(an_epic(engagement))
        tasks = [plan_task(story, engagement, milestone_id if link else None) for link in linked]
        self.log.record(engagement, story, *tasks, meta=META)
        self.world = World(
            engagement, milestone_id, tasks, [TaskModel() for _ in tasks], list(linked)
        )

    @rule(data=st.data(), status=STATUSES, when=WHENS)
    def put(self, data: st.DataObject, status: str, when: int | str | None) -> None:
        world = self.world
        assert world is not None
        index = data.draw(st.integers(min_value=0, max_value=len(world.tasks) - 1))
        task, model = world.tasks[index], world.models[index]
        at = self.now()
        if when is None:
            completed_at = None
        elif when == "naive":
            completed_at = (at - timedelta(hours=1)).replace(tzinfo=None)
        elif when == "other-zone":
            completed_at = (at - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=5)))
        else:
            assert isinstance(when, int)
            completed_at = at + timedelta(microseconds=when)

        bad_field = None
        if status not in (TODO, IN_PROGRESS, COMPLETED):
            bad_field = "status"
        elif status == COMPLETED and completed_at is not None:
            if when == "naive" or completed_at > at:
                bad_field = "completedAt"
        elif completed_at is not None:
            bad_field = "completedAt"
        same = status == model.status
        illegal = not bad_field and not same and (model.status, status) not in LEGAL

        engagement = world.engagement
        task_events, engagement_events = len(task.pending_events), len(engagement.pending_events)
        state_before = (task.status, task.completed_at, task.version)
        if bad_field or illegal:
            with pytest.raises(InvalidValue if bad_field else IllegalTransition) as caught:
                task.change_status(
                    status=status, completed_at=completed_at, at=at, engagement=engagement
                )
            if bad_field:
                assert isinstance(caught.value, InvalidValue)
                assert caught.value.field == bad_field
            else:
                assert isinstance(caught.value, IllegalTransition)
                assert caught.value.state == model.status
            assert (task.status, task.completed_at, task.version) == state_before
            assert len(task.pending_events) == task_events
            assert len(engagement.pending_events) == engagement_events
            return

        recorded = task.change_status(
            status=status, completed_at=completed_at, at=at, engagement=engagement
        )

        assert recorded is not same
        new_task_events = task.pending_events[task_events:]
        new_engagement_events = engagement.pending_events[engagement_events:]
        if same:
            assert new_task_events == []
            assert new_engagement_events == []
            return
        (event,) = new_task_events
        model.version += 1
        model.status = status
        if status == COMPLETED:
            assert isinstance(event, Task.Completed)
            model.completed_at = at if completed_at is None else completed_at
            assert event.completed_at == model.completed_at
            assert event.completed_at.utcoffset() == timedelta(0)
            assert (event.engagement_id, event.milestone_id) == (
                engagement.id,
                task.milestone_id,
            )
        else:
            assert isinstance(event, Task.StatusChanged)
            assert event.status == status
        if status == COMPLETED and world.linked[index]:
            assert isinstance(new_engagement_events[0], Engagement.MilestoneTaskCompleted)
            assert new_engagement_events[0].task_id == task.id
            world.milestone_events += [
                e for e in new_engagement_events if isinstance(e, Engagement.MilestoneCompleted)
            ]
        else:
            assert new_engagement_events == []
        self.log.record(task, engagement, meta=META)

    @precondition(lambda self: self.world is not None)
    @invariant()
    def tasks_are_what_was_decided_and_what_the_log_holds(self) -> None:
        world = self.world
        assert world is not None
        for task, model in zip(world.tasks, world.models, strict=True):
            assert (task.status, task.completed_at, task.version) == (
                model.status,
                model.completed_at,
                model.version,
            )
            stored = self.log.load(Task, task.id)
            assert stored is not None
            assert (stored.status, stored.completed_at, stored.version) == (
                model.status,
                model.completed_at,
                model.version,
            )

    @precondition(lambda self: self.world is not None)
    @invariant()
    def the_milestone_completed_once_exactly_when_all_its_tasks_did(self) -> None:
        world = self.world
        assert world is not None
        linked = [m for m, link in zip(world.models, world.linked, strict=True) if link]
        all_done = bool(linked) and all(m.status == COMPLETED for m in linked)
        assert len(world.milestone_events) == (1 if all_done else 0)
        stored = self.log.load(Engagement, world.engagement.id)
        assert stored is not None
        milestone = stored.milestones[world.milestone_id]
        assert milestone.status == (COMPLETED if all_done else "Open")
        done_ids = {
            t.id for t, m in zip(world.tasks, world.models, strict=True) if m.status == COMPLETED
        }
        assert milestone.done_task_ids == done_ids & milestone.task_ids


TaskStatusMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_task_status_machine = TaskStatusMachine.TestCase


def test_the_module_names_its_statuses_as_the_api_does() -> None:
    assert work.TASK_STATUSES == ("Todo", "InProgress", "Completed")
    assert {(a, b) for a, moves in work.TASK_MOVES.items() for b in moves} == LEGAL
