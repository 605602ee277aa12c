"""Engagement: a contract between a customer and a squad, its milestones, and its lifecycle.

Lifecycle: Draft -> Active -> Completed, and Draft|Active -> Cancelled. Terms change only in
Draft; activation needs a squad. A milestone completes by hand, or by itself when the last of
its tasks completes; either way exactly once, because the engagement is one aggregate and every
completion is a write to it that optimistic concurrency serialises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import money, values
from domain.errors import IllegalTransition, InvalidValue
from domain.events import TenantEvent

PRICING_MODELS = ("fixed-price", "time-and-materials", "retainer")
DRAFT, ACTIVE, COMPLETED, CANCELLED = "Draft", "Active", "Completed", "Cancelled"
OPEN = "Open"
PRICING = "contractTerms.pricing"


@dataclass(frozen=True)
class Terms:
    """What the customer and the squad agreed: scope, price and timeline."""

    customer_id: UUID
    project_id: str | None
    scope: str
    pricing_model: str
    amount: Decimal
    currency: str
    start_date: date
    end_date: date

    def validated(self) -> Terms:
        if self.end_date < self.start_date:
            raise InvalidValue("contractTerms.timeline.endDate", "must not be before startDate")
        currency = values.currency(f"{PRICING}.currency", self.currency)
        return Terms(
            customer_id=self.customer_id,
            project_id=values.optional_text("projectId", self.project_id, 100),
            scope=values.required_text("contractTerms.scope", self.scope, 5000),
            pricing_model=values.one_of(f"{PRICING}.model", self.pricing_model, PRICING_MODELS),
            amount=money.amount(
                f"{PRICING}.amount", self.amount, currency, currency_field=f"{PRICING}.currency"
            ),
            currency=currency,
            start_date=self.start_date,
            end_date=self.end_date,
        )


@dataclass
class Milestone:
    milestone_id: UUID
    name: str
    due_date: date
    amount: Decimal | None
    status: str = OPEN
    task_ids: set[UUID] = field(default_factory=set)
    done_task_ids: set[UUID] = field(default_factory=set)


class Engagement(Aggregate):
    TOPIC = "workledger:Engagement"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:EngagementCreated"
        webhook = "engagement.created"
        customer_id: UUID
        project_id: str | None
        squad_id: UUID | None
        scope: str
        pricing_model: str
        amount: Decimal
        currency: str
        start_date: date
        end_date: date

    class TermsChanged(Event):
        TOPIC = "workledger:EngagementUpdated"
        webhook = "engagement.updated"
        customer_id: UUID
        project_id: str | None
        scope: str
        pricing_model: str
        amount: Decimal
        currency: str
        start_date: date
        end_date: date

        def apply(self, aggregate: Engagement) -> None:
            aggregate.terms = Terms(
                customer_id=self.customer_id,
                project_id=self.project_id,
                scope=self.scope,
                pricing_model=self.pricing_model,
                amount=self.amount,
                currency=self.currency,
                start_date=self.start_date,
                end_date=self.end_date,
            )

    class SquadAssigned(Event):
        TOPIC = "workledger:EngagementSquadAssigned"
        webhook = "engagement.updated"
        squad_id: UUID

        def apply(self, aggregate: Engagement) -> None:
            aggregate.squad_id = self.squad_id

    class Activated(Event):
        TOPIC = "workledger:EngagementActivated"
        webhook = "engagement.activated"

        def apply(self, aggregate: Engagement) -> None:
            aggregate.status = ACTIVE

    class Completed(Event):
        TOPIC = "workledger:EngagementCompleted"
        webhook = "engagement.completed"

        def apply(self, aggregate: Engagement) -> None:
            aggregate.status = COMPLETED

    class Cancelled(Event):
        TOPIC = "workledger:EngagementCancelled"
        webhook = "engagement.cancelled"
        reason: str | None

        def apply(self, aggregate: Engagement) -> None:
            aggregate.status = CANCELLED

    class MilestoneAdded(Event):
        TOPIC = "workledger:MilestoneAdded"
        webhook = "engagement.updated"
        milestone_id: UUID
        name: str
        due_date: date
        amount: Decimal | None
        currency: str

        def apply(self, aggregate: Engagement) -> None:
            aggregate.milestones[self.milestone_id] = Milestone(
                self.milestone_id, self.name, self.due_date, self.amount
            )

    class MilestoneTaskLinked(Event):
        TOPIC = "workledger:MilestoneTaskLinked"
        milestone_id: UUID
        task_id: UUID

        def apply(self, aggregate: Engagement) -> None:
            aggregate.milestones[self.milestone_id].task_ids.add(self.task_id)

    class MilestoneTaskCompleted(Event):
        TOPIC = "workledger:MilestoneTaskCompleted"
        milestone_id: UUID
        task_id: UUID

        def apply(self, aggregate: Engagement) -> None:
            aggregate.milestones[self.milestone_id].done_task_ids.add(self.task_id)

    class MilestoneCompleted(Event):
        """Carries what billing needs (amount, currency, customer) so a policy reacting to it
        never has to read the engagement back."""

        TOPIC = "workledger:MilestoneCompleted"
        webhook = "milestone.completed"
        milestone_id: UUID
        name: str
        amount: Decimal | None
        currency: str
        customer_id: UUID
        trigger: str  # "manual" | "tasks"

        def apply(self, aggregate: Engagement) -> None:
            aggregate.milestones[self.milestone_id].status = COMPLETED

    def __init__(
        self,
        tenant_id: UUID,
        customer_id: UUID,
        project_id: str | None,
        squad_id: UUID | None,
        scope: str,
        pricing_model: str,
        amount: Decimal,
        currency: str,
        start_date: date,
        end_date: date,
    ) -> None:
        self.tenant_id = tenant_id
        self.terms = Terms(
            customer_id=customer_id,
            project_id=project_id,
            scope=scope,
            pricing_model=pricing_model,
            amount=amount,
            currency=currency,
            start_date=start_date,
            end_date=end_date,
        )
        self.squad_id = squad_id
        self.status = DRAFT
        self.milestones: dict[UUID, Milestone] = {}

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def draft(
        cls,
        *,
        engagement_id: UUID,
        tenant_id: UUID,
        terms: Terms,
        squad_id: UUID | None,
        at: datetime,
    ) -> Engagement:
        checked = terms.validated()
        return cls._create(
            cls.Created,
            id=engagement_id,
            tenant_id=tenant_id,
            squad_id=squad_id,
            timestamp=at,
            **vars(checked),
        )

    def change_terms(self, *, terms: Terms, at: datetime) -> None:
        self._require(DRAFT, action="update")
        checked = terms.validated()
        if checked == self.terms:
            return
        milestones = list(self.milestones.values())
        if checked.currency != self.terms.currency and any(
            m.amount is not None for m in milestones
        ):
            # Milestone amounts are in the engagement's currency; re-denominating them silently
            # would bill the wrong figure.
            raise InvalidValue(
                f"{PRICING}.currency", "cannot change while milestones carry amounts"
            )
        if any(not checked.start_date <= m.due_date <= checked.end_date for m in milestones):
            raise InvalidValue(
                "contractTerms.timeline", "must contain the due dates of the milestones"
            )
        self.trigger_event(
            self.TermsChanged, tenant_id=self.tenant_id, timestamp=at, **vars(checked)
        )

    def assign_squad(self, *, squad_id: UUID, at: datetime) -> None:
        """The first squad assigned becomes the engagement's squad."""
        if self.status in (COMPLETED, CANCELLED):
            raise IllegalTransition("engagement", "assign a squad to", self.status)
        if self.squad_id is None:
            self.trigger_event(
                self.SquadAssigned, tenant_id=self.tenant_id, timestamp=at, squad_id=squad_id
            )

    def activate(self, *, at: datetime) -> None:
        self._require(DRAFT, action="activate")
        if self.squad_id is None:
            raise IllegalTransition("engagement", "activate", "Draft without a squad")
        self.trigger_event(self.Activated, tenant_id=self.tenant_id, timestamp=at)

    def complete(self, *, at: datetime) -> None:
        self._require(ACTIVE, action="complete")
        self.trigger_event(self.Completed, tenant_id=self.tenant_id, timestamp=at)

    def cancel(self, *, reason: str | None, at: datetime) -> None:
        self._require(DRAFT, ACTIVE, action="cancel")
        self.trigger_event(
            self.Cancelled,
            tenant_id=self.tenant_id,
            timestamp=at,
            reason=values.optional_text("reason", reason, 500),
        )

    def add_milestone(
        self,
        *,
        milestone_id: UUID,
        name: str,
        due_date: date,
        amount: Decimal | None,
        at: datetime,
    ) -> None:
        self._require(DRAFT, ACTIVE, action="add a milestone to")
        if milestone_id in self.milestones:
            raise InvalidValue("milestoneId", "this engagement already has that milestone")
        if not self.terms.start_date <= due_date <= self.terms.end_date:
            raise InvalidValue("dueDate", "must be within the engagement's timeline")
        if len(self.milestones) >= 500:
            raise InvalidValue("milestones", "an engagement can have at most 500 milestones")
        self.trigger_event(
            self.MilestoneAdded,
            tenant_id=self.tenant_id,
            timestamp=at,
            milestone_id=milestone_id,
            name=values.required_text("name", name),
            due_date=due_date,
            currency=self.terms.currency,
            amount=None if amount is None else money.amount("amount", amount, self.terms.currency),
        )

    def complete_milestone(self, *, milestone_id: UUID, at: datetime) -> None:
        milestone = self.milestone(milestone_id)
        self._require(ACTIVE, action="complete a milestone of")
        if milestone.status != OPEN:
            raise IllegalTransition("milestone", "complete", milestone.status)
        self._milestone_completed(milestone, "manual", at)

    def link_task(self, *, milestone_id: UUID, task_id: UUID, at: datetime) -> None:
        milestone = self.milestone(milestone_id)
        if milestone.status != OPEN:
            raise IllegalTransition("milestone", "add a task to", milestone.status)
        self.trigger_event(
            self.MilestoneTaskLinked,
            tenant_id=self.tenant_id,
            timestamp=at,
            milestone_id=milestone_id,
            task_id=task_id,
        )

    def task_completed(self, *, milestone_id: UUID, task_id: UUID, at: datetime) -> bool:
        """Record a linked task's completion; completes the milestone when it was the last.
        Returns whether the milestone completed now."""
        milestone = self.milestone(milestone_id)
        if task_id not in milestone.task_ids or task_id in milestone.done_task_ids:
            return False
        self.trigger_event(
            self.MilestoneTaskCompleted,
            tenant_id=self.tenant_id,
            timestamp=at,
            milestone_id=milestone_id,
            task_id=task_id,
        )
        all_done = milestone.done_task_ids == milestone.task_ids
        if milestone.status == OPEN and all_done and self.status != CANCELLED:
            self._milestone_completed(milestone, "tasks", at)
            return True
        return False

    # -- queries --------------------------------------------------------------------------

    def milestone(self, milestone_id: UUID) -> Milestone:
        try:
            return self.milestones[milestone_id]
        except KeyError:
            raise UnknownMilestone(milestone_id) from None

    def _milestone_completed(self, milestone: Milestone, trigger: str, at: datetime) -> None:
        self.trigger_event(
            self.MilestoneCompleted,
            tenant_id=self.tenant_id,
            timestamp=at,
            milestone_id=milestone.milestone_id,
            name=milestone.name,
            amount=milestone.amount,
            currency=self.terms.currency,
            customer_id=self.terms.customer_id,
            trigger=trigger,
        )

    def _require(self, *states: str, action: str) -> None:
        if self.status not in states:
            raise IllegalTransition("engagement", action, self.status)


class UnknownMilestone(InvalidValue):
    """A milestone id that is not one of this engagement's (a 404 where it is in the path)."""

    def __init__(self, milestone_id: UUID) -> None:
        super().__init__("milestoneId", f"no milestone {milestone_id} in this engagement")
        self.milestone_id = milestone_id
