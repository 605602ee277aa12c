"""Billing under real concurrency, on SQLite and PostgreSQL: simultaneous issues take gap-free
numbers, simultaneous payments never overpay, and a completed milestone is billed exactly once
whatever reruns, replays, crashes or concurrent policy runners do.

Each racer is a separate `build()` (its own connections and runners), like separate processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from application.billing import (
    BillingCommands,
    BillingQueries,
    CreateInvoice,
    InvoiceFilter,
    LineBody,
    RecordPayment,
    VoidInvoice,
    milestone_invoice_id,
    numbering_id,
)
from application.context import system_context
from application.customers import CreateCustomer, CustomerCommands
from application.engagements import (
    AddMilestone,
    ContractTerms,
    CreateEngagement,
    EngagementCommands,
    Pricing,
    Timeline,
)
from application.errors import ConcurrentWrite
from application.problems import problem_for
from application.queries import AuditQueries
from application.results import Written
from application.squads import CreateSquad, SquadCommands
from application.tenants import ProvisionTenant, TenantCommands
from domain.engagement import Engagement
from domain.errors import IllegalTransition
from domain.invoice import Invoice, InvoiceNumbering, Overpayment
from entrypoints.container import Services
from projections.policies import MilestoneBilling
from tests.integration.workload import context

POLICY = MilestoneBilling.name
MILESTONE_AMOUNT = Decimal("1250.50")


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run `calls` at once (released together by a barrier); each outcome or its exception."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = calls[i]()
        except Exception as error:  # collected and asserted on
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return outcomes


class Shop:
    """A tenant with a customer, and the contexts of its finance and delivery people."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.tenant = (
            services.get(TenantCommands)
            .provision(
                context("platform-admin"),
                ProvisionTenant(name=f"Billing {uuid4().hex[:8]}", contact_email="a@b.co"),
            )
            .id
        )
        self.finance = context("finance", tenant=self.tenant, sub="fin")
        self.pm = context("project-manager", tenant=self.tenant, sub="pm")
        self.admin = context("customer-admin", tenant=self.tenant, sub="admin")
        self.customer = (
            services.get(CustomerCommands).create(self.admin, CreateCustomer(name="Globex")).id
        )

    def draft(self, price: str = "100.00") -> UUID:
        cmd = CreateInvoice(
            customer_id=self.customer,
            currency="USD",
            lines=[LineBody(description="Work", quantity=Decimal(1), unit_price=Decimal(price))],
        )
        return self.services.get(BillingCommands).create(self.finance, cmd).id

    def engagement(self) -> UUID:
        squad = (
            self.services.get(SquadCommands)
            .create(self.pm, CreateSquad(name="Alpha", capacity_hours_per_week=Decimal(40)))
            .id
        )
        terms = ContractTerms(
            scope="Build it",
            pricing=Pricing(model="fixed-price", amount=Decimal("12000.50"), currency="EUR"),
            timeline=Timeline(start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)),
        )
        engagements = self.services.get(EngagementCommands)
        engagement = engagements.create(
            self.pm,
            CreateEngagement(customer_id=self.customer, contract_terms=terms, squad_id=squad),
        ).id
        engagements.activate(self.pm, engagement, None)
        return engagement

    def completed_milestone(self, amount: Decimal | None = MILESTONE_AMOUNT) -> tuple[UUID, UUID]:
        """An active engagement with a milestone completed by hand: (engagement, milestone).
        Nothing follows the log yet: no policy has seen the completion."""
        engagement = self.engagement()
        engagements = self.services.get(EngagementCommands)
        _, milestone = engagements.add_milestone(
            self.pm,
            engagement,
            AddMilestone(name="Design signed off", due_date=date(2026, 3, 31), amount=amount),
        )
        engagements.complete_milestone(self.pm, engagement, milestone)
        return engagement, milestone

    def invoices_listed(self) -> list[dict[str, Any]]:
        self.services.projections.catch_up()
        page = self.services.get(BillingQueries).invoices(
            self.finance, InvoiceFilter(), limit=200, cursor=None
        )
        return [msgspec.json.decode(item) for item in page.items]


def created_invoices(services: Services) -> list[Invoice.Created]:
    return [r.event for r in services.log.read(0, 100_000) if isinstance(r.event, Invoice.Created)]


def assert_billed_once(shop: Shop, engagement: UUID, milestone: UUID) -> None:
    """Exactly one invoice for the milestone, in the log and in the read model."""
    for_milestone = [e for e in created_invoices(shop.services) if e.milestone_id == milestone]
    assert len(for_milestone) == 1, for_milestone
    created = for_milestone[0]
    assert created.originator_id == milestone_invoice_id(milestone)
    assert created.customer_id == shop.customer
    assert created.engagement_id == engagement
    assert created.currency == "EUR"
    assert created.total == MILESTONE_AMOUNT
    invoice = shop.services.log.load(Invoice, created.originator_id)
    assert invoice is not None
    assert invoice.status == "Draft"
    assert invoice.version == 1  # nothing was recorded on it a second time
    listed = [doc for doc in shop.invoices_listed() if doc["milestoneId"] == str(milestone)]
    assert len(listed) == 1, listed
    assert listed[0]["invoiceId"] == str(created.originator_id)
    assert listed[0]["status"] == "Draft"
    assert listed[0]["totalAmount"] == "1250.50"
    assert listed[0]["engagementId"] == str(engagement)
    assert listed[0]["customerId"] == str(shop.customer)
    assert listed[0]["lines"][0]["description"] == "Milestone: Design signed off"


def system_ctx() -> Any:
    return system_context("milestone-billing", "test")


def policy_position(services: Services) -> int:
    rows = services.db.query("SELECT position FROM projection_tracking WHERE name = ?", (POLICY,))
    return int(rows[0][0])


# -- numbering --------------------------------------------------------------------------------


def test_twelve_simultaneous_issues_take_twelve_gap_free_numbers(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    drafts = [shop.draft() for _ in range(12)]
    racers = [make_services(database_url) for _ in range(6)]
    outcomes = race(
        [
            (lambda i=i: racers[i % 6].get(BillingCommands).issue(shop.finance, drafts[i], None))
            for i in range(12)
        ]
    )
    assert all(isinstance(o, Written) for o in outcomes), outcomes

    invoices = [shop.services.log.load(Invoice, invoice_id) for invoice_id in drafts]
    assert all(i is not None and i.status == "Issued" for i in invoices)
    year = invoices[0].issue_date.year  # type: ignore[union-attr]
    numbers = sorted(i.number for i in invoices)  # type: ignore[union-attr,type-var]
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, 13)]

    # The numbering stream agrees: sequences 1..12, each taken once, for the invoice that bears it.
    history = shop.services.log.history(numbering_id(shop.tenant, year))
    taken = [e for e in history if isinstance(e, InvoiceNumbering.NumberTaken)]
    assert [e.sequence for e in taken] == list(range(1, 13))
    by_id = {i.id: i.number for i in invoices}  # type: ignore[union-attr]
    assert {e.invoice_id for e in taken} == set(drafts)
    assert all(by_id[e.invoice_id] == f"INV-{year}-{e.sequence:06d}" for e in taken)

    listed = shop.invoices_listed()
    assert sorted(doc["number"] for doc in listed) == numbers
    assert {doc["status"] for doc in listed} == {"Issued"}


def test_one_invoice_issued_twice_at_once_takes_one_number(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    invoice_id = shop.draft()
    racers = [make_services(database_url) for _ in range(3)]
    outcomes = race(
        [(lambda r=r: r.get(BillingCommands).issue(shop.finance, invoice_id, None)) for r in racers]
    )
    wins = [o for o in outcomes if isinstance(o, Written)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, IllegalTransition) for o in outcomes if o not in wins), outcomes
    invoice = shop.services.log.load(Invoice, invoice_id)
    assert invoice is not None
    assert invoice.issue_date is not None
    assert invoice.number == f"INV-{invoice.issue_date.year}-000001"
    history = shop.services.log.history(numbering_id(shop.tenant, invoice.issue_date.year))
    assert [e.sequence for e in history if isinstance(e, InvoiceNumbering.NumberTaken)] == [1]
    # The next invoice gets the next number: the losers consumed none.
    following = shop.draft()
    shop.services.get(BillingCommands).issue(shop.finance, following, None)
    again = shop.services.log.load(Invoice, following)
    assert again is not None
    assert again.number == f"INV-{invoice.issue_date.year}-000002"


# -- payments ---------------------------------------------------------------------------------


def test_two_payments_that_together_exceed_the_balance_cannot_both_land(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    invoice_id = shop.draft("100.00")
    shop.services.get(BillingCommands).issue(shop.finance, invoice_id, None)
    racers = [make_services(database_url) for _ in range(2)]
    pay = RecordPayment(
        invoice_id=invoice_id,
        amount=Decimal("60.00"),
        method="bank-transfer",
        received_on=date(2026, 3, 2),
    )
    outcomes = race(
        [(lambda r=r: r.get(BillingCommands).record_payment(shop.finance, pay)) for r in racers]
    )
    wins = [o for o in outcomes if isinstance(o, Written)]
    losses = [o for o in outcomes if not isinstance(o, Written)]
    assert len(wins) == 1, outcomes
    assert len(losses) == 1, outcomes
    assert isinstance(losses[0], Overpayment), outcomes
    refused = problem_for(losses[0])
    assert (refused["status"], refused["code"]) == (409, "overpayment")

    invoice = shop.services.log.load(Invoice, invoice_id)
    assert invoice is not None
    assert invoice.paid == Decimal("60.00") <= invoice.total
    assert invoice.status == "PartiallyPaid"
    assert len(invoice.payment_ids) == 1
    (doc,) = shop.invoices_listed()
    assert (doc["paidAmount"], doc["balance"], doc["status"]) == ("60.00", "40.00", "PartiallyPaid")


def test_a_void_racing_a_payment_never_leaves_a_paid_void_invoice(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    invoice_id = shop.draft("100.00")
    shop.services.get(BillingCommands).issue(shop.finance, invoice_id, None)
    payer, voider = make_services(database_url), make_services(database_url)
    pay = RecordPayment(
        invoice_id=invoice_id,
        amount=Decimal("10.00"),
        method="card",
        received_on=date(2026, 3, 2),
    )
    paid, voided = race(
        [
            lambda: payer.get(BillingCommands).record_payment(shop.finance, pay),
            lambda: voider.get(BillingCommands).void(shop.finance, invoice_id, VoidInvoice(), None),
        ]
    )
    invoice = shop.services.log.load(Invoice, invoice_id)
    assert invoice is not None
    if invoice.status == "Void":
        assert isinstance(voided, Written), voided
        assert isinstance(paid, IllegalTransition), paid
        assert invoice.paid == 0
    else:
        assert isinstance(paid, Written), paid
        assert isinstance(voided, IllegalTransition | ConcurrentWrite), voided
        assert problem_for(voided)["status"] == 409
        assert (invoice.status, invoice.paid) == ("PartiallyPaid", Decimal("10.00"))


# -- milestone billing ------------------------------------------------------------------------


def test_a_completed_milestone_is_billed_once_however_often_the_policy_runs(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    engagement, milestone = shop.completed_milestone()
    assert not [e for e in created_invoices(shop.services) if e.milestone_id == milestone]
    shop.services.follow()
    assert_billed_once(shop, engagement, milestone)
    shop.services.follow()
    shop.services.policies.catch_up()
    assert_billed_once(shop, engagement, milestone)
    # A rebuilt read model still shows one invoice.
    shop.services.projections.replay()
    assert_billed_once(shop, engagement, milestone)


def test_policy_runners_in_separate_processes_bill_once(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    completed = [shop.completed_milestone() for _ in range(3)]
    runners = [make_services(database_url) for _ in range(4)]
    outcomes = race([r.follow for r in runners])
    assert outcomes == [None] * 4, outcomes
    for engagement, milestone in completed:
        assert_billed_once(shop, engagement, milestone)


def test_a_runner_that_read_before_the_other_wrote_collides_and_bills_nothing(
    make_services: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The losing side of the race, made certain: its check saw no invoice (it read before the
    winner wrote), so its write collides with the winner's on the derived id and is dropped."""
    shop = Shop(make_services(database_url))
    engagement, milestone = shop.completed_milestone()
    shop.services.follow()
    late = make_services(database_url)
    load = late.log.load

    def stale_load(cls: Any, aggregate_id: UUID, **kw: Any) -> Any:
        return None if cls is Invoice else load(cls, aggregate_id, **kw)

    monkeypatch.setattr(late.log, "load", stale_load)
    (completed,) = [
        r for r in late.log.read(0, 100_000) if isinstance(r.event, Engagement.MilestoneCompleted)
    ]
    assert late.get(BillingCommands).bill_milestone(system_ctx(), completed.event) is False
    MilestoneBilling(late.get(BillingCommands)).handle(completed)  # no error either
    assert_billed_once(shop, engagement, milestone)


def test_a_crash_between_the_invoice_and_the_tracking_update_bills_once(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    engagement, milestone = shop.completed_milestone()
    (completed,) = [
        r
        for r in shop.services.log.read(0, 100_000)
        if isinstance(r.event, Engagement.MilestoneCompleted) and r.event.milestone_id == milestone
    ]
    # The policy's command ran, then the process died before its position advanced.
    MilestoneBilling(shop.services.get(BillingCommands)).handle(completed)
    assert policy_position(shop.services) < completed.position
    shop.services.follow()  # the restarted follower handles the completion again
    assert policy_position(shop.services) >= completed.position
    assert_billed_once(shop, engagement, milestone)

    # And once more from the very beginning of the log (tracking lost altogether).
    with shop.services.db.transaction() as cur:
        cur.execute("UPDATE projection_tracking SET position = 0 WHERE name = ?", (POLICY,))
    restarted = make_services(database_url)
    restarted.follow()
    assert policy_position(restarted) == restarted.log.head()
    assert_billed_once(shop, engagement, milestone)


def test_a_milestone_without_an_amount_is_not_billed(make_services: Any, database_url: str) -> None:
    shop = Shop(make_services(database_url))
    _, milestone = shop.completed_milestone(amount=None)
    shop.services.follow()
    assert shop.services.log.load(Invoice, milestone_invoice_id(milestone)) is None
    assert not [e for e in created_invoices(shop.services) if e.milestone_id == milestone]
    assert shop.invoices_listed() == []
    assert policy_position(shop.services) == shop.services.log.head()


def test_the_audit_trail_names_the_milestone_billing_policy(
    make_services: Any, database_url: str
) -> None:
    shop = Shop(make_services(database_url))
    _, milestone = shop.completed_milestone()
    shop.services.follow()
    invoice_id = milestone_invoice_id(milestone)
    (recorded,) = [
        r
        for r in shop.services.log.read(0, 100_000)
        if isinstance(r.event, Invoice.Created) and r.event.originator_id == invoice_id
    ]
    auditor = context("auditor", tenant=shop.tenant)
    page = shop.services.get(AuditQueries).stream(auditor, invoice_id, limit=10, cursor=None)
    entries = [msgspec.json.decode(item) for item in page.items]
    assert [e["type"] for e in entries] == ["InvoiceCreated"]
    assert recorded.meta.actor == "system:milestone-billing"
    assert entries[0]["actor"] == "system:milestone-billing"
