"""Squad capacity as a state machine: form, assign, end assignments, change the capacity.

The invariant is computed here from scratch: an assignment covers every ISO week (as
`date.isocalendar()` numbers them) from the week of its start to the week of its end, and in
no week may the hours of the assignments covering it exceed the squad's weekly capacity.
Nothing in the checks calls domain.squad.peak_load or load_in_week.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from application.errors import ConcurrentWrite
from application.event_log import EventLog
from domain.errors import CapacityExceeded, IllegalTransition, InvalidValue
from domain.squad import Assignment, Squad, peak_load
from tests.unit.support import MACHINE_SETTINGS, META, memory_log, replay

TENANT = UUID("00000000-0000-4000-8000-000000000001")
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
MAX_SPAN_DAYS = 366 * 5  # "an assignment can last at most five years"

Week = tuple[int, int]  # (ISO year, ISO week)


# -- the independent model --------------------------------------------------------------------


def iso_week(day: date) -> Week:
    year, week, _ = day.isocalendar()
    return year, week


def weeks_covered(start: date, end: date) -> set[Week]:
    """Every ISO week from start's to end's, inclusive: a step of 7 days always lands in the
    next ISO week, and the end's week is added in case the last step fell short of it."""
    weeks = set()
    day = start
    while day <= end:
        weeks.add(iso_week(day))
        day += timedelta(days=7)
    weeks.add(iso_week(end))
    return weeks


def monday_of(week: Week) -> date:
    return date.fromisocalendar(week[0], week[1], 1)


def week_loads(assignments: Iterable[Any]) -> Counter[Week]:
    """Hours per ISO week, from anything with hours_per_week, start and end."""
    loads: Counter[Week] = Counter()
    for a in assignments:
        for week in weeks_covered(a.start, a.end):
            loads[week] += a.hours_per_week
    return loads


def valid_hours(value: Decimal) -> bool:
    return value.is_finite() and 0 < value <= 168 and (value * 100) % 1 == 0


@dataclass(frozen=True)
class Planned:
    assignment_id: UUID
    engagement_id: UUID
    hours_per_week: Decimal
    start: date
    end: date


def snapshot(squad: Squad) -> Any:
    state = {k: v for k, v in vars(squad).items() if k != "_pending_events"}
    state["capacity"] = str(squad.capacity)  # Decimal == ignores the exponent; str does not
    state["assignments"] = [(a, str(a.hours_per_week)) for a in squad.assignments]
    return copy.deepcopy(state)


# -- inputs -----------------------------------------------------------------------------------

hour_values = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=40, places=2),
    st.sampled_from(
        [
            "0",
            "-1",
            "-0.01",
            "0.001",
            "1.005",
            "0.01",
            "8",
            "20",
            "37.5",
            "40",
            "40.00",
            "40.000",
            "167.99",
            "168",
            "168.01",
            "169",
            "NaN",
            "Infinity",
            "-Infinity",
        ]
    ).map(Decimal),
    st.decimals(min_value=Decimal("0.01"), max_value=60, places=2),
    st.decimals(min_value=Decimal("0.001"), max_value=60, places=3),
)
capacities = st.one_of(
    st.sampled_from(["10", "37.5", "40", "80", "120", "168"]).map(Decimal),
    st.decimals(min_value=Decimal("0.01"), max_value=168, places=2),
)
# Year ends with an ISO week 53 (2020) and an ISO year that starts in December (2024-12-30).
bases = st.sampled_from([date(2020, 11, 30), date(2024, 11, 25), date(2025, 3, 3)])
spans = st.one_of(
    st.integers(min_value=-10, max_value=70),
    st.sampled_from([-1, 0, 6, 7, MAX_SPAN_DAYS, MAX_SPAN_DAYS + 1, 2000]),
)


class SquadMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.squad: Squad | None = None
        self.capacity = Decimal(0)
        self.active: list[Planned] = []  # the model: assignments in force, in order
        self.ended: list[UUID] = []
        self.version = 0
        self.saved_events: list[Any] = []
        self.log: EventLog | None = None
        self.clock = START
        self.ids = 0

    def now(self) -> datetime:
        self.clock += timedelta(minutes=1, microseconds=3)
        return self.clock

    def new_id(self) -> UUID:
        """Ids drawn from a counter: runs must not depend on chance outside Hypothesis."""
        self.ids += 1
        return UUID(int=(0xA << 124) + self.ids)

    def model_loads(self) -> Counter[Week]:
        return week_loads(self.active)

    def refused(self, command: Callable[[], Any], allowed: tuple[type[Exception], ...]) -> Any:
        """Run a command the model says must fail; it must change nothing."""
        assert self.squad is not None
        before = snapshot(self.squad)
        pending = list(self.squad.pending_events)
        with pytest.raises(allowed) as caught:
            command()
        assert snapshot(self.squad) == before
        assert self.squad.pending_events == pending
        return caught.value

    def accepted(self, command: Callable[[], Any], event_type: type[Any]) -> Any:
        assert self.squad is not None
        pending = len(self.squad.pending_events)
        result = command()
        new_events = self.squad.pending_events[pending:]
        assert [type(e) for e in new_events] == [event_type]
        assert new_events[0].tenant_id == TENANT
        self.version += 1
        return result

    # -- rules -----------------------------------------------------------------------------

    @initialize(capacity=capacities)
    def form(self, capacity: Decimal) -> None:
        squad_id = uuid4()
        self.squad = Squad.form(
            squad_id=squad_id,
            tenant_id=TENANT,
            name=" Squad A ",
            capacity_hours_per_week=capacity,
            member_ids=[],
            lead_id=None,
            at=self.now(),
        )
        self.capacity = capacity
        self.version = 1
        assert self.squad.id == squad_id
        assert self.squad.name == "Squad A"
        self.log = memory_log()

    @rule(hours=hour_values, base=bases, offset=st.integers(0, 120), span=spans)
    def assign(self, hours: Decimal, base: date, offset: int, span: int) -> None:
        start = base + timedelta(days=offset)
        self.try_assign(hours, start, start + timedelta(days=span))

    @precondition(lambda self: self.active)
    @rule(
        spec=st.tuples(
            st.integers(min_value=0, max_value=50),
            st.integers(min_value=0, max_value=30),
            st.sampled_from(["-0.01", "0", "0.01"]),
        )
    )
    def assign_what_is_left(self, spec: tuple[int, int, str]) -> None:
        """Ask for the room left (give or take a cent) around an existing assignment: the
        edge of the capacity, where an off-by-one would show."""
        index, span, offset = spec
        other = self.active[index % len(self.active)]
        start, end = other.start, other.start + timedelta(days=span)
        loads = self.model_loads()
        room = self.capacity - max(loads[w] for w in weeks_covered(start, end))
        self.try_assign(room + Decimal(offset), start, end)

    def try_assign(self, hours: Decimal, start: date, end: date) -> None:
        squad = self.squad
        assert squad is not None
        span = (end - start).days
        planned = Planned(self.new_id(), self.new_id(), hours, start, end)

        def command() -> Assignment:
            return squad.assign(
                assignment_id=planned.assignment_id,
                engagement_id=planned.engagement_id,
                hours_per_week=hours,
                start=start,
                end=end,
                at=self.now(),
            )

        bad = []
        if not valid_hours(hours):
            bad.append("hoursPerWeek")
        if end < start or span > MAX_SPAN_DAYS:
            bad.append("to")
        if bad:
            error = self.refused(command, (InvalidValue,))
            assert error.field in bad, (error.field, bad)
            event("assign: invalid")
            return
        loads = self.model_loads()
        over = {w for w in weeks_covered(start, end) if loads[w] + hours > self.capacity}
        if over:
            error = self.refused(command, (CapacityExceeded,))
            week = date.fromisoformat(error.week)
            assert week.weekday() == 0
            assert iso_week(week) in over, (error.week, sorted(over))
            event("assign: over capacity")
            return
        result = self.accepted(command, Squad.AssignmentAdded)
        assert result.assignment_id == planned.assignment_id
        assert result.engagement_id == planned.engagement_id
        assert (result.start, result.end) == (start, end)
        assert result.hours_per_week == hours
        assert str(result.hours_per_week) == str(hours.quantize(Decimal("0.01")))
        self.active.append(planned)
        event("assign: accepted")

    @rule(data=st.data(), known=st.booleans())
    def end_assignment(self, data: st.DataObject, known: bool) -> None:
        squad = self.squad
        assert squad is not None
        if known and self.active:
            target = data.draw(st.sampled_from([a.assignment_id for a in self.active]))
        elif self.ended and data.draw(st.booleans()):
            target = data.draw(st.sampled_from(self.ended))
        else:
            target = self.new_id()

        def command() -> None:
            squad.end_assignment(assignment_id=target, at=self.now())

        if not any(a.assignment_id == target for a in self.active):
            error = self.refused(command, (IllegalTransition,))
            assert error.aggregate == "assignment"
            return
        self.accepted(command, Squad.AssignmentEnded)
        self.active = [a for a in self.active if a.assignment_id != target]
        self.ended.append(target)

    @rule(data=st.data(), choice=st.sampled_from(["same", "any", "bad"]))
    def update(self, data: st.DataObject, choice: str) -> None:
        if choice == "same":
            wanted = self.capacity
        elif choice == "any":
            wanted = data.draw(capacities)
        else:
            wanted = data.draw(st.sampled_from(["0", "-5", "168.01", "40.005", "NaN"]).map(Decimal))
        self.change_capacity(wanted)

    @precondition(lambda self: self.active)
    @rule(offset=st.sampled_from(["-1", "-0.01", "0", "0.01", "1"]))
    def update_around_the_peak(self, offset: str) -> None:
        peak = max(self.model_loads().values())
        self.change_capacity(peak + Decimal(offset))

    def change_capacity(self, wanted: Decimal) -> None:
        squad = self.squad
        assert squad is not None
        loads = self.model_loads()
        peak = max(loads.values(), default=Decimal(0))

        def command() -> None:
            squad.update(
                name="Squad A",
                capacity_hours_per_week=wanted,
                member_ids=[],
                lead_id=None,
                at=self.now(),
            )

        if not valid_hours(wanted):
            error = self.refused(command, (InvalidValue,))
            assert error.field == "capacityHoursPerWeek"
            event("update: invalid")
            return
        if wanted < peak:
            error = self.refused(command, (CapacityExceeded,))
            week = date.fromisoformat(error.week)
            assert week.weekday() == 0
            assert loads[iso_week(week)] > wanted
            event("update: below the peak")
            return
        event("update: accepted" + (" (down)" if peak and wanted < self.capacity else ""))
        self.accepted(command, Squad.Updated)
        self.capacity = wanted

    @rule(continue_with_loaded=st.booleans())
    def save_and_reload(self, continue_with_loaded: bool) -> None:
        assert self.squad is not None
        assert self.log is not None
        pending = list(self.squad.pending_events)
        self.log.record(self.squad, meta=META)
        assert self.squad.pending_events == []
        self.saved_events.extend(pending)
        loaded = self.log.load(Squad, self.squad.id)
        assert loaded is not None
        assert snapshot(loaded) == snapshot(self.squad)
        if continue_with_loaded:
            self.squad = loaded

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def no_week_over_capacity(self) -> None:
        """Checked on the aggregate's own assignments, not on the model's."""
        if self.squad is None:
            return
        for week, load in week_loads(self.squad.assignments).items():
            assert load <= self.squad.capacity, (monday_of(week), load, self.squad.capacity)

    @invariant()
    def matches_model(self) -> None:
        if self.squad is None:
            return
        assert str(self.squad.capacity) == str(self.capacity.quantize(Decimal("0.01")))
        actual = [
            (a.assignment_id, a.engagement_id, a.hours_per_week, a.start, a.end)
            for a in self.squad.assignments
        ]
        expected = [
            (a.assignment_id, a.engagement_id, a.hours_per_week, a.start, a.end)
            for a in self.active
        ]
        assert actual == expected
        assert self.squad.version == self.version

    @invariant()
    def replay_gives_the_live_state(self) -> None:
        if self.squad is None:
            return
        events = self.saved_events + list(self.squad.pending_events)
        assert [e.originator_version for e in events] == list(range(1, self.squad.version + 1))
        rebuilt = replay(events)
        assert isinstance(rebuilt, Squad)
        assert snapshot(rebuilt) == snapshot(self.squad)


SquadMachine.TestCase.settings = MACHINE_SETTINGS
TestSquadCapacity = SquadMachine.TestCase


# -- peak_load against brute force ----------------------------------------------------------


def brute_force_peak(assignments: list[Assignment], start: date, end: date) -> Decimal:
    loads = week_loads(assignments)
    return max((loads[w] for w in weeks_covered(start, end)), default=Decimal(0))


@st.composite
def assignment_lists(draw: st.DrawFn) -> list[Assignment]:
    result = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        start = draw(st.dates(min_value=date(2020, 11, 1), max_value=date(2021, 6, 30)))
        span = draw(st.integers(min_value=0, max_value=120))
        hours = draw(st.decimals(min_value=Decimal("0.01"), max_value=168, places=2))
        result.append(Assignment(uuid4(), uuid4(), hours, start, start + timedelta(days=span)))
    return result


@settings(max_examples=100, deadline=None)
@given(
    assignments=assignment_lists(),
    start=st.dates(min_value=date(2020, 10, 1), max_value=date(2021, 8, 31)),
    span=st.integers(min_value=0, max_value=200),
)
def test_peak_load_is_the_busiest_week(
    assignments: list[Assignment], start: date, span: int
) -> None:
    end = start + timedelta(days=span)
    peak, week = peak_load(assignments, start, end)
    assert peak == brute_force_peak(assignments, start, end)
    assert week.weekday() == 0
    assert iso_week(start) <= iso_week(week) <= iso_week(end)
    assert week_loads(assignments)[iso_week(week)] == peak


def test_the_model_counts_iso_weeks_across_year_ends() -> None:
    # 2020 has an ISO week 53; 2024-12-30 is in ISO week 1 of 2025.
    assert weeks_covered(date(2020, 12, 31), date(2021, 1, 4)) == {(2020, 53), (2021, 1)}
    assert weeks_covered(date(2024, 12, 29), date(2024, 12, 30)) == {(2024, 52), (2025, 1)}
    assert weeks_covered(date(2024, 3, 3), date(2024, 3, 11)) == {(2024, 9), (2024, 10), (2024, 11)}
    assert len(weeks_covered(date(2024, 1, 1), date(2024, 12, 31))) == 53


# -- examples -----------------------------------------------------------------------------------


def formed(capacity: str = "40") -> Squad:
    return Squad.form(
        squad_id=uuid4(),
        tenant_id=TENANT,
        name="Squad A",
        capacity_hours_per_week=Decimal(capacity),
        member_ids=[],
        lead_id=None,
        at=START,
    )


@pytest.mark.parametrize("capacity", ["0", "-1", "168.01", "40.001", "NaN", "Infinity"])
def test_form_refuses_an_impossible_capacity(capacity: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        formed(capacity)
    assert caught.value.field == "capacityHoursPerWeek"


def test_assignments_touching_the_same_week_share_it() -> None:
    squad = formed("40")
    # Sunday 2024-03-10 ends ISO week 10; Monday 2024-03-04 starts it.
    squad.assign(
        assignment_id=uuid4(),
        engagement_id=uuid4(),
        hours_per_week=Decimal("30"),
        start=date(2024, 2, 20),
        end=date(2024, 3, 4),
        at=START,
    )
    with pytest.raises(CapacityExceeded) as caught:
        squad.assign(
            assignment_id=uuid4(),
            engagement_id=uuid4(),
            hours_per_week=Decimal("10.01"),
            start=date(2024, 3, 10),
            end=date(2024, 4, 1),
            at=START,
        )
    assert caught.value.week == "2024-03-04"
    squad.assign(
        assignment_id=uuid4(),
        engagement_id=uuid4(),
        hours_per_week=Decimal("10.01"),
        start=date(2024, 3, 11),
        end=date(2024, 4, 1),
        at=START,
    )
    assert len(squad.assignments) == 2


def test_two_copies_cannot_both_take_the_last_hours() -> None:
    log = memory_log()
    squad = formed("40")
    log.record(squad, meta=META)
    first, second = log.load(Squad, squad.id), log.load(Squad, squad.id)
    assert first is not None
    assert second is not None
    for copy_ in (first, second):
        copy_.assign(
            assignment_id=uuid4(),
            engagement_id=uuid4(),
            hours_per_week=Decimal("30"),
            start=date(2024, 3, 4),
            end=date(2024, 3, 31),
            at=START,
        )
    log.record(first, meta=META)
    with pytest.raises(ConcurrentWrite):
        log.record(second, meta=META)
    reloaded = log.load(Squad, squad.id)
    assert reloaded is not None
    assert len(reloaded.assignments) == 1
    with pytest.raises(CapacityExceeded):
        reloaded.assign(
            assignment_id=uuid4(),
            engagement_id=uuid4(),
            hours_per_week=Decimal("30"),
            start=date(2024, 3, 4),
            end=date(2024, 3, 31),
            at=START,
        )
