"""Engagement use cases: contracts between a customer and a squad, lifecycle, milestones."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol
from uuid import UUID

import msgspec

from application.claims import rerun_on_conflict
from application.commands import Command
from application.context import Context
from application.customers import require_customer
from application.errors import InvalidRequest, NotFound
from application.event_log import EventLog
from application.ports import Clock, IdGenerator
from application.queries import Document, Page, check_limit, decode_cursor
from application.results import Written
from application.tenancy import active_tenant
from domain.engagement import Engagement, Terms, UnknownMilestone
from domain.squad import Squad


class Pricing(Command):
    model: str
    amount: Decimal  # a JSON number or a decimal string; kept exact either way
    currency: str


class Timeline(Command):
    start_date: date
    end_date: date


class ContractTerms(Command):
    scope: str
    pricing: Pricing
    timeline: Timeline


class CreateEngagement(Command):
    customer_id: UUID
    contract_terms: ContractTerms
    project_id: str | None = None
    squad_id: UUID | None = None

    def terms(self) -> Terms:
        return _terms(self.customer_id, self.project_id, self.contract_terms)


class UpdateEngagement(Command):
    """PUT: the whole agreement again (only while the engagement is a Draft)."""

    customer_id: UUID
    contract_terms: ContractTerms
    project_id: str | None = None

    def terms(self) -> Terms:
        return _terms(self.customer_id, self.project_id, self.contract_terms)


class CancelEngagement(Command):
    reason: str | None = None


class AddMilestone(Command):
    name: str
    due_date: date
    amount: Decimal | None = None


def _terms(customer_id: UUID, project_id: str | None, terms: ContractTerms) -> Terms:
    return Terms(
        customer_id=customer_id,
        project_id=project_id,
        scope=terms.scope,
        pricing_model=terms.pricing.model,
        amount=terms.pricing.amount,
        currency=terms.pricing.currency,
        start_date=terms.timeline.start_date,
        end_date=terms.timeline.end_date,
    )


def require_engagement(
    log: EventLog, tenant_id: UUID, engagement_id: UUID, *, field: str | None = None
) -> Engagement:
    """The tenant's engagement: NotFound in a path, or InvalidRequest naming `field` in a body."""
    engagement = log.load(Engagement, engagement_id)
    if engagement is None or engagement.tenant_id != tenant_id:
        if field is None:
            raise NotFound("engagement", engagement_id)
        raise InvalidRequest(field, "no engagement with this id in the tenant")
    return engagement


class EngagementCommands:
    def __init__(self, log: EventLog, clock: Clock, ids: IdGenerator) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids

    def create(self, ctx: Context, cmd: CreateEngagement) -> Written:
        ctx.require("engagement:write")
        tenant = active_tenant(self._log, ctx)
        require_customer(self._log, tenant.id, cmd.customer_id)
        if cmd.squad_id is not None:
            squad = self._log.load(Squad, cmd.squad_id)
            if squad is None or squad.tenant_id != tenant.id:
                raise InvalidRequest("squadId", "no squad with this id in the tenant")
        engagement = Engagement.draft(
            engagement_id=self._ids.new_id(),
            tenant_id=tenant.id,
            terms=cmd.terms(),
            squad_id=cmd.squad_id,
            at=self._clock.now(),
        )
        position = self._log.record(engagement, meta=ctx.meta)
        return Written(
            id=engagement.id, version=engagement.version, position=position, created=True
        )

    def update(
        self, ctx: Context, engagement_id: UUID, cmd: UpdateEngagement, if_match: int | None
    ) -> Written:
        ctx.require("engagement:write")
        engagement = self._writable(ctx, engagement_id, if_match)
        if cmd.customer_id != engagement.terms.customer_id:
            require_customer(self._log, engagement.tenant_id, cmd.customer_id)
        engagement.change_terms(terms=cmd.terms(), at=self._clock.now())
        return self._save(ctx, engagement)

    def activate(self, ctx: Context, engagement_id: UUID, if_match: int | None) -> Written:
        ctx.require("engagement:write")
        engagement = self._writable(ctx, engagement_id, if_match)
        engagement.activate(at=self._clock.now())
        return self._save(ctx, engagement)

    def complete(self, ctx: Context, engagement_id: UUID, if_match: int | None) -> Written:
        ctx.require("engagement:write")
        engagement = self._writable(ctx, engagement_id, if_match)
        engagement.complete(at=self._clock.now())
        return self._save(ctx, engagement)

    def cancel(
        self, ctx: Context, engagement_id: UUID, cmd: CancelEngagement, if_match: int | None
    ) -> Written:
        ctx.require("engagement:write")
        engagement = self._writable(ctx, engagement_id, if_match)
        engagement.cancel(reason=cmd.reason, at=self._clock.now())
        return self._save(ctx, engagement)

    def add_milestone(
        self, ctx: Context, engagement_id: UUID, cmd: AddMilestone
    ) -> tuple[Written, UUID]:
        ctx.require("engagement:write")
        milestone_id = self._ids.new_id()

        def run() -> Written:
            engagement = self._writable(ctx, engagement_id, None)
            engagement.add_milestone(
                milestone_id=milestone_id,
                name=cmd.name,
                due_date=cmd.due_date,
                amount=cmd.amount,
                at=self._clock.now(),
            )
            return self._save(ctx, engagement)

        return rerun_on_conflict(run), milestone_id

    def complete_milestone(self, ctx: Context, engagement_id: UUID, milestone_id: UUID) -> Written:
        ctx.require("engagement:write")

        def run() -> Written:
            engagement = self._writable(ctx, engagement_id, None)
            try:
                engagement.complete_milestone(milestone_id=milestone_id, at=self._clock.now())
            except UnknownMilestone:
                raise NotFound("milestone", milestone_id) from None
            return self._save(ctx, engagement)

        return rerun_on_conflict(run)

    def _writable(self, ctx: Context, engagement_id: UUID, if_match: int | None) -> Engagement:
        tenant = active_tenant(self._log, ctx)
        engagement = require_engagement(self._log, tenant.id, engagement_id)
        self._log.check_version(engagement, if_match)
        return engagement

    def _save(self, ctx: Context, engagement: Engagement) -> Written:
        position = self._log.record(engagement, meta=ctx.meta)
        return Written(id=engagement.id, version=engagement.version, position=position)


# -- reads ----------------------------------------------------------------------------------


class EngagementFilter(msgspec.Struct, frozen=True):
    status: str | None = None
    customer_id: UUID | None = None


class EngagementReadModel(Protocol):
    def get(self, tenant_id: UUID, engagement_id: UUID) -> Document | None: ...

    def list(self, tenant_id: UUID, where: EngagementFilter, *, limit: int, after: int) -> Page: ...


STATUSES = ("Draft", "Active", "Completed", "Cancelled")


class EngagementQueries:
    def __init__(self, engagements: EngagementReadModel) -> None:
        self._engagements = engagements

    def get(self, ctx: Context, engagement_id: UUID) -> Document:
        ctx.require("engagement:read")
        document = self._engagements.get(ctx.require_tenant(), engagement_id)
        if document is None:
            raise NotFound("engagement", engagement_id)
        return document

    def list(
        self, ctx: Context, where: EngagementFilter, *, limit: int, cursor: str | None
    ) -> Page:
        ctx.require("engagement:read")
        if where.status is not None and where.status not in STATUSES:
            raise InvalidRequest("status", f"must be one of {', '.join(STATUSES)}")
        return self._engagements.list(
            ctx.require_tenant(), where, limit=check_limit(limit), after=decode_cursor(cursor)
        )
