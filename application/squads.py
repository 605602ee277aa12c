"""Squads and staffing: squads of people with a weekly capacity, assigned to engagements."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol
from uuid import UUID

import msgspec

from application.claims import rerun_on_conflict
from application.commands import Command
from application.context import Context
from application.engagements import require_engagement
from application.errors import InvalidRequest, NotFound
from application.event_log import EventLog
from application.ports import Clock, IdGenerator
from application.queries import Document, Page, check_limit, decode_cursor
from application.results import Written
from application.tenancy import active_tenant
from domain.person import Person
from domain.squad import Assignment, Squad, load_in_week, week_of


class CreateSquad(Command):
    name: str
    capacity_hours_per_week: Decimal
    member_ids: list[UUID] = []
    lead_id: UUID | None = None


UpdateSquad = CreateSquad  # PUT sends the whole squad again


class AssignSquad(Command):
    engagement_id: UUID
    hours_per_week: Decimal
    from_: date = msgspec.field(name="from")
    to: date


class SquadCommands:
    def __init__(self, log: EventLog, clock: Clock, ids: IdGenerator) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids

    def create(self, ctx: Context, cmd: CreateSquad) -> Written:
        ctx.require("squad:write")
        tenant = active_tenant(self._log, ctx)
        self._check_members(tenant.id, cmd.member_ids)
        squad = Squad.form(
            squad_id=self._ids.new_id(),
            tenant_id=tenant.id,
            name=cmd.name,
            capacity_hours_per_week=cmd.capacity_hours_per_week,
            member_ids=cmd.member_ids,
            lead_id=cmd.lead_id,
            at=self._clock.now(),
        )
        position = self._log.record(squad, meta=ctx.meta)
        return Written(id=squad.id, version=squad.version, position=position, created=True)

    def update(
        self, ctx: Context, squad_id: UUID, cmd: UpdateSquad, if_match: int | None
    ) -> Written:
        ctx.require("squad:write")
        squad = self._squad(ctx, squad_id, if_match)
        self._check_members(squad.tenant_id, cmd.member_ids)
        squad.update(
            name=cmd.name,
            capacity_hours_per_week=cmd.capacity_hours_per_week,
            member_ids=cmd.member_ids,
            lead_id=cmd.lead_id,
            at=self._clock.now(),
        )
        position = self._log.record(squad, meta=ctx.meta)
        return Written(id=squad.id, version=squad.version, position=position)

    def assign(self, ctx: Context, squad_id: UUID, cmd: AssignSquad) -> Written:
        """Assign the squad to an engagement. The squad and the engagement are written together;
        a concurrent assignment to the same squad makes the loser re-decide (rerun_on_conflict)
        against the other, so together they never exceed the squad's capacity."""
        ctx.require("squad:write")
        assignment_id = self._ids.new_id()

        def run() -> Written:
            squad = self._squad(ctx, squad_id, None)
            engagement = require_engagement(
                self._log, squad.tenant_id, cmd.engagement_id, field="engagementId"
            )
            now = self._clock.now()
            engagement.assign_squad(squad_id=squad.id, at=now)
            squad.assign(
                assignment_id=assignment_id,
                engagement_id=engagement.id,
                hours_per_week=cmd.hours_per_week,
                start=cmd.from_,
                end=cmd.to,
                at=now,
            )
            position = self._log.record(squad, engagement, meta=ctx.meta)
            return Written(id=assignment_id, version=squad.version, position=position, created=True)

        return rerun_on_conflict(run)

    def end_assignment(self, ctx: Context, squad_id: UUID, assignment_id: UUID) -> Written:
        ctx.require("squad:write")

        def run() -> Written:
            squad = self._squad(ctx, squad_id, None)
            if not any(a.assignment_id == assignment_id for a in squad.assignments):
                raise NotFound("assignment", assignment_id)
            squad.end_assignment(assignment_id=assignment_id, at=self._clock.now())
            position = self._log.record(squad, meta=ctx.meta)
            return Written(id=assignment_id, version=squad.version, position=position)

        return rerun_on_conflict(run)

    def _squad(self, ctx: Context, squad_id: UUID, if_match: int | None) -> Squad:
        tenant = active_tenant(self._log, ctx)
        squad = self._log.load(Squad, squad_id)
        if squad is None or squad.tenant_id != tenant.id:
            raise NotFound("squad", squad_id)
        self._log.check_version(squad, if_match)
        return squad

    def _check_members(self, tenant_id: UUID, member_ids: list[UUID]) -> None:
        for person_id in member_ids:
            person = self._log.load(Person, person_id)
            if person is None or person.tenant_id != tenant_id:
                raise InvalidRequest("memberIds", f"no person {person_id} in the tenant")


# -- reads ----------------------------------------------------------------------------------


class AssignmentRow(msgspec.Struct, frozen=True):
    hours_per_week: Decimal
    start: date
    end: date


class SquadReadModel(Protocol):
    def get(self, tenant_id: UUID, squad_id: UUID) -> Document | None: ...

    def active_assignments(self, tenant_id: UUID, squad_id: UUID) -> list[AssignmentRow]: ...

    def capacity(self, tenant_id: UUID, squad_id: UUID) -> Decimal | None: ...

    def assignment(self, tenant_id: UUID, assignment_id: UUID) -> Document | None: ...

    def assignments(
        self,
        tenant_id: UUID,
        *,
        squad_id: UUID | None,
        engagement_id: UUID | None,
        limit: int,
        after: int,
    ) -> Page: ...

    def list(self, tenant_id: UUID, *, limit: int, after: int) -> Page: ...


class Capacity(msgspec.Struct, rename="camel", frozen=True):
    squad_id: UUID
    week_of: date
    capacity_hours_per_week: Decimal
    allocated_hours_per_week: Decimal
    available_hours_per_week: Decimal


class SquadQueries:
    def __init__(self, squads: SquadReadModel, clock: Clock) -> None:
        self._squads = squads
        self._clock = clock

    def get(self, ctx: Context, squad_id: UUID) -> Document:
        ctx.require("squad:read")
        document = self._squads.get(ctx.require_tenant(), squad_id)
        if document is None:
            raise NotFound("squad", squad_id)
        return document

    def list(self, ctx: Context, *, limit: int, cursor: str | None) -> Page:
        ctx.require("squad:read")
        return self._squads.list(
            ctx.require_tenant(), limit=check_limit(limit), after=decode_cursor(cursor)
        )

    def capacity(self, ctx: Context, squad_id: UUID, on: date | None) -> Capacity:
        """Capacity, allocation and room in the ISO week containing `on` (default: today)."""
        ctx.require("squad:read")
        tenant_id = ctx.require_tenant()
        capacity = self._squads.capacity(tenant_id, squad_id)
        if capacity is None:
            raise NotFound("squad", squad_id)
        week = week_of(on or self._clock.now().date())
        rows = self._squads.active_assignments(tenant_id, squad_id)
        allocated = load_in_week(
            [Assignment(squad_id, squad_id, r.hours_per_week, r.start, r.end) for r in rows], week
        )
        return Capacity(
            squad_id=squad_id,
            week_of=week,
            capacity_hours_per_week=capacity,
            allocated_hours_per_week=allocated,
            available_hours_per_week=max(capacity - allocated, Decimal(0)),
        )

    def assignment(self, ctx: Context, assignment_id: UUID) -> Document:
        ctx.require("squad:read")
        document = self._squads.assignment(ctx.require_tenant(), assignment_id)
        if document is None:
            raise NotFound("assignment", assignment_id)
        return document

    def assignments(
        self,
        ctx: Context,
        *,
        squad_id: UUID | None,
        engagement_id: UUID | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        ctx.require("squad:read")
        return self._squads.assignments(
            ctx.require_tenant(),
            squad_id=squad_id,
            engagement_id=engagement_id,
            limit=check_limit(limit),
            after=decode_cursor(cursor),
        )
