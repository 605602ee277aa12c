"""Squad: people with a weekly capacity, assigned to engagements for date ranges.

Invariant: in no ISO week may the hours of the squad's assignments that touch that week exceed
its weekly capacity. The squad holds its own assignments, so two concurrent assignments are two
writes to one aggregate: optimistic concurrency lets one through and the other is re-decided
against it, so together they can never exceed the capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import values
from domain.errors import CapacityExceeded, IllegalTransition, InvalidValue
from domain.events import TenantEvent

MAX_HOURS = Decimal(168)  # hours in a week
MAX_MEMBERS = 200


def week_of(day: date) -> date:
    """The Monday that starts `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Assignment:
    assignment_id: UUID
    engagement_id: UUID
    hours_per_week: Decimal
    start: date
    end: date

    def covers(self, week: date) -> bool:
        return week_of(self.start) <= week <= week_of(self.end)


def load_in_week(assignments: list[Assignment], week: date) -> Decimal:
    """Hours per week allocated in the ISO week starting on Monday `week`."""
    return sum((a.hours_per_week for a in assignments if a.covers(week)), Decimal(0))


def peak_load(assignments: list[Assignment], start: date, end: date) -> tuple[Decimal, date]:
    """The busiest week between `start` and `end` and its load. The load only rises where an
    assignment starts, so only those weeks (and `start`'s) need looking at."""
    first, last = week_of(start), week_of(end)
    candidates = {first} | {
        week_of(a.start) for a in assignments if first <= week_of(a.start) <= last
    }
    return max((load_in_week(assignments, w), w) for w in candidates)


def hours(field: str, value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0 or value > MAX_HOURS:
        raise InvalidValue(field, f"must be more than 0 and at most {MAX_HOURS}")
    if value != value.quantize(Decimal("0.01")):
        raise InvalidValue(field, "must have at most two decimal places")
    return value.quantize(Decimal("0.01"))


class Squad(Aggregate):
    TOPIC = "workledger:Squad"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:SquadCreated"
        name: str
        capacity_hours_per_week: Decimal
        member_ids: list[UUID]
        lead_id: UUID | None

    class Updated(Event):
        TOPIC = "workledger:SquadUpdated"
        name: str
        capacity_hours_per_week: Decimal
        member_ids: list[UUID]
        lead_id: UUID | None

        def apply(self, aggregate: Squad) -> None:
            aggregate.name = self.name
            aggregate.capacity = self.capacity_hours_per_week
            aggregate.member_ids = list(self.member_ids)
            aggregate.lead_id = self.lead_id

    class AssignmentAdded(Event):
        TOPIC = "workledger:SquadAssignmentAdded"
        assignment_id: UUID
        engagement_id: UUID
        hours_per_week: Decimal
        start: date
        end: date

        def apply(self, aggregate: Squad) -> None:
            aggregate.assignments.append(
                Assignment(
                    self.assignment_id,
                    self.engagement_id,
                    self.hours_per_week,
                    self.start,
                    self.end,
                )
            )

    class AssignmentEnded(Event):
        TOPIC = "workledger:SquadAssignmentEnded"
        assignment_id: UUID

        def apply(self, aggregate: Squad) -> None:
            aggregate.assignments = [
                a for a in aggregate.assignments if a.assignment_id != self.assignment_id
            ]

    def __init__(
        self,
        tenant_id: UUID,
        name: str,
        capacity_hours_per_week: Decimal,
        member_ids: list[UUID],
        lead_id: UUID | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.capacity = capacity_hours_per_week
        self.member_ids = list(member_ids)
        self.lead_id = lead_id
        self.assignments: list[Assignment] = []

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def form(
        cls,
        *,
        squad_id: UUID,
        tenant_id: UUID,
        name: str,
        capacity_hours_per_week: Decimal,
        member_ids: list[UUID],
        lead_id: UUID | None,
        at: datetime,
    ) -> Squad:
        return cls._create(
            cls.Created,
            id=squad_id,
            tenant_id=tenant_id,
            timestamp=at,
            **_details(name, capacity_hours_per_week, member_ids, lead_id),
        )

    def update(
        self,
        *,
        name: str,
        capacity_hours_per_week: Decimal,
        member_ids: list[UUID],
        lead_id: UUID | None,
        at: datetime,
    ) -> None:
        details = _details(name, capacity_hours_per_week, member_ids, lead_id)
        new_capacity = details["capacity_hours_per_week"]
        if self.assignments and new_capacity < self.capacity:
            starts = [a.start for a in self.assignments]
            ends = [a.end for a in self.assignments]
            peak, week = peak_load(self.assignments, min(starts), max(ends))
            if peak > new_capacity:
                raise CapacityExceeded(week.isoformat(), str(peak), str(new_capacity))
        self.trigger_event(self.Updated, tenant_id=self.tenant_id, timestamp=at, **details)

    def assign(
        self,
        *,
        assignment_id: UUID,
        engagement_id: UUID,
        hours_per_week: Decimal,
        start: date,
        end: date,
        at: datetime,
    ) -> Assignment:
        """Take on an engagement for [start, end] at `hours_per_week`, if every week has room."""
        wanted = hours("hoursPerWeek", hours_per_week)
        if end < start:
            raise InvalidValue("to", "must not be before from")
        if (end - start).days > 366 * 5:
            raise InvalidValue("to", "an assignment can last at most five years")
        proposed = Assignment(assignment_id, engagement_id, wanted, start, end)
        peak, week = peak_load([*self.assignments, proposed], start, end)
        if peak > self.capacity:
            available = self.capacity - load_in_week(self.assignments, week)
            raise CapacityExceeded(week.isoformat(), str(wanted), str(max(available, Decimal(0))))
        self.trigger_event(
            self.AssignmentAdded,
            tenant_id=self.tenant_id,
            timestamp=at,
            assignment_id=assignment_id,
            engagement_id=engagement_id,
            hours_per_week=wanted,
            start=start,
            end=end,
        )
        return proposed

    def end_assignment(self, *, assignment_id: UUID, at: datetime) -> None:
        if not any(a.assignment_id == assignment_id for a in self.assignments):
            raise IllegalTransition("assignment", "end", "already ended")
        self.trigger_event(
            self.AssignmentEnded,
            tenant_id=self.tenant_id,
            timestamp=at,
            assignment_id=assignment_id,
        )


def _details(
    name: str, capacity: Decimal, member_ids: list[UUID], lead_id: UUID | None
) -> dict[str, Any]:
    if len(set(member_ids)) != len(member_ids):
        raise InvalidValue("memberIds", "must not repeat a person")
    if len(member_ids) > MAX_MEMBERS:
        raise InvalidValue("memberIds", f"a squad has at most {MAX_MEMBERS} members")
    if lead_id is not None and lead_id not in member_ids:
        raise InvalidValue("leadId", "the lead must be one of the members")
    return {
        "name": values.required_text("name", name, 100),
        "capacity_hours_per_week": hours("capacityHoursPerWeek", capacity),
        "member_ids": list(member_ids),
        "lead_id": lead_id,
    }
