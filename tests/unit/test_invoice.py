"""domain.invoice: exact totals, payments that never exceed the total, gap-free numbering.

The expectations are computed here, independently: line amounts with a Decimal context wide
enough to be exact, minor units written out from ISO 4217, and the invoice lifecycle as a small
model that the aggregate (and the events it records) must agree with at every step.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from application.context import EventMeta
from application.errors import ConcurrentWrite
from application.event_log import EventLog
from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.invoice import Invoice, InvoiceNumbering, Overpayment, invoice_number
from projections.billing import evolve

# ISO 4217 minor units, written out independently of Babel/CLDR.
MINOR_UNITS = {"USD": 2, "JPY": 0, "BHD": 3}
LIMIT = Decimal("1e15")  # totals from here up are refused as too large
AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ISSUE_DATE = date(2026, 3, 2)
META = EventMeta(actor="user:test", request_id="req-test")
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

currencies = st.sampled_from(sorted(MINOR_UNITS))


def exact() -> Any:
    """A Decimal context in which every product below is exact (no silent rounding)."""
    return localcontext(Context(prec=60))


def expected_line(quantity: Decimal, unit_price: Decimal, currency: str) -> Decimal:
    with exact():
        product = quantity * unit_price
        return product.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), ROUND_HALF_EVEN)


def places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


def draft(currency: str, lines: list[tuple[str, Decimal, Decimal]], **kw: Any) -> Invoice:
    fields: dict[str, Any] = {
        "invoice_id": uuid4(),
        "tenant_id": uuid4(),
        "customer_id": uuid4(),
        "engagement_id": None,
        "milestone_id": None,
        "currency": currency,
        "lines": lines,
        "due_date": None,
        "at": AT,
        **kw,
    }
    return Invoice.draft(**fields)


# -- totals -----------------------------------------------------------------------------------

# Quantities: positive, at most 4 decimals, below 1e9. Unit prices: non-negative, at most 6
# decimals. Small values with few places make half-way cases (0.125 USD, 2.5 JPY) common.
quantities = st.one_of(
    st.integers(1, 20).map(Decimal),
    st.decimals(Decimal("0.0001"), Decimal("1000"), places=4),
    st.decimals(Decimal("0.0001"), Decimal("999999999.9999"), places=4),
)
unit_prices = st.one_of(
    st.decimals(Decimal(0), Decimal("10"), places=1),  # x.5 for JPY
    st.decimals(Decimal(0), Decimal("100"), places=3),  # x.xx5 for USD
    st.decimals(Decimal(0), Decimal("100"), places=4),  # x.xxx5 for BHD
    st.decimals(Decimal(0), Decimal("999999999999.999999"), places=6),
)
line_lists = st.lists(
    st.tuples(
        st.sampled_from(["Design", "Build: sprint 1", "Hosting (per month)", "Café"]),
        quantities,
        unit_prices,
    ),
    min_size=1,
    max_size=8,
)


@PROPERTY_SETTINGS
@given(currency=currencies, lines=line_lists)
@example(currency="USD", lines=[("tie down", Decimal(1), Decimal("0.125"))])
@example(currency="USD", lines=[("tie up", Decimal(1), Decimal("0.135"))])
@example(
    currency="JPY", lines=[("tie", Decimal(1), Decimal("2.5")), ("t", Decimal(3), Decimal("0.5"))]
)
@example(currency="BHD", lines=[("tie", Decimal("0.5"), Decimal("0.0025"))])
@example(
    currency="USD", lines=[("a", Decimal("3"), Decimal("0.335")), ("b", Decimal(1), Decimal(0))]
)
def test_total_is_the_sum_of_the_rounded_lines(
    currency: str, lines: list[tuple[str, Decimal, Decimal]]
) -> None:
    amounts = [expected_line(q, p, currency) for _, q, p in lines]
    with exact():
        total = sum(amounts, Decimal(0))
    if total >= LIMIT:
        with pytest.raises(InvalidValue):
            draft(currency, lines)
        return
    invoice = draft(currency, lines)
    assert [line.amount for line in invoice.lines] == amounts
    # Every figure has exactly the currency's digits (so "0.10", never "0.1" or "0.100").
    assert all(places(line.amount) == MINOR_UNITS[currency] for line in invoice.lines)
    assert invoice.total == total
    assert places(invoice.total) == MINOR_UNITS[currency]
    assert invoice.total == sum((line.amount for line in invoice.lines), Decimal(0))
    assert invoice.status == "Draft"
    assert invoice.paid == 0


def test_rounding_is_half_even_per_line_not_on_the_total() -> None:
    # Three lines of 0.005 USD: each rounds (half-even) to 0.00, so the total is 0.00, not 0.02.
    invoice = draft("USD", [("a", Decimal(1), Decimal("0.005"))] * 3)
    assert str(invoice.total) == "0.00"
    assert [
        str(line.amount) for line in draft("JPY", [("a", Decimal(1), Decimal("3.5"))]).lines
    ] == ["4"]
    assert str(draft("BHD", [("a", Decimal(2), Decimal("1.00025"))]).total) == "2.000"


@pytest.mark.parametrize(
    ("lines", "currency", "field"),
    [
        ([], "USD", "lines"),
        ([("a", Decimal(-1), Decimal(1))], "USD", "lines[0].quantity"),
        ([("a", Decimal(0), Decimal(1))], "USD", "lines[0].quantity"),
        ([("a", Decimal("0.00001"), Decimal(1))], "USD", "lines[0].quantity"),
        ([("a", Decimal(1), Decimal("0.0000001"))], "USD", "lines[0].unitPrice"),
        ([("a", Decimal(1), Decimal(-1))], "USD", "lines[0].unitPrice"),
        ([("a", Decimal(1), Decimal("NaN"))], "USD", "lines[0].unitPrice"),
        (
            [("a", Decimal(1), Decimal(1)), (" ", Decimal(1), Decimal(1))],
            "USD",
            "lines[1].description",
        ),
        ([("a", Decimal(1), Decimal(1))], "XXX-NOPE", "currency"),
    ],
)
def test_bad_drafts_name_the_field(
    lines: list[tuple[str, Decimal, Decimal]], currency: str, field: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        draft(currency, lines)
    assert refused.value.field == field


def test_due_date_on_issue() -> None:
    later = ISSUE_DATE + timedelta(days=40)
    kept = draft("USD", [("a", Decimal(1), Decimal(1))], due_date=later)
    kept.issue(number="INV-2026-000001", issue_date=ISSUE_DATE, payment_terms_days=14, at=AT)
    assert kept.due_date == later
    for due in (None, ISSUE_DATE - timedelta(days=1)):
        termed = draft("USD", [("a", Decimal(1), Decimal(1))], due_date=due)
        termed.issue(number="INV-2026-000001", issue_date=ISSUE_DATE, payment_terms_days=14, at=AT)
        assert termed.due_date == ISSUE_DATE + timedelta(days=14)


def test_a_draft_due_on_the_issue_date_gets_the_payment_terms() -> None:
    invoice = draft("USD", [("a", Decimal(1), Decimal(1))], due_date=ISSUE_DATE)
    invoice.issue(number="INV-2026-000001", issue_date=ISSUE_DATE, payment_terms_days=14, at=AT)
    assert invoice.due_date == ISSUE_DATE + timedelta(days=14)


# -- payments: paid never exceeds the total ---------------------------------------------------

invoice_totals = st.sampled_from(
    [("USD", "100.00"), ("USD", "0.01"), ("JPY", "1000"), ("BHD", "12.345"), ("USD", "0.00")]
)
payment_amounts = st.one_of(
    st.sampled_from(["balance", "balance+unit", "half", "third", "unit"]),
    st.sampled_from(
        [
            Decimal(0),
            Decimal("-0.00"),
            Decimal("-0.001"),
            Decimal(-5),
            Decimal("NaN"),
            Decimal("sNaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
            Decimal("1e15"),
            Decimal("1e30"),
            Decimal("0.004"),
            Decimal("0.005"),
            Decimal("0.015"),
            Decimal("0.0005"),
        ]
    ),
    st.decimals(Decimal("-10"), Decimal("2000"), places=4),
)


class InvoiceLifecycle(RuleBasedStateMachine):
    """Issue, pay (any amount at all), void, in any order: the aggregate agrees with a model of
    Draft -> Issued -> PartiallyPaid -> Paid (Void only while nothing is paid), paid never
    exceeds the total, and the recorded events rebuild the same invoice and read model."""

    @initialize(total=invoice_totals, issue_first=st.booleans())
    def start(self, total: tuple[str, str], issue_first: bool) -> None:
        self.currency, figure = total
        self.unit = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
        self.invoice = draft(self.currency, [("Work", Decimal(1), Decimal(figure))])
        self.total = Decimal(figure)
        self.status = "Draft"
        self.paid = Decimal(0)
        self.payments = 0
        self.events = list(self.invoice.collect_events())
        self.doc = evolve(None, self.events[0])
        if issue_first:  # most interesting sequences start from an issued invoice
            self.issue()

    def _recorded(self) -> None:
        new = self.invoice.collect_events()
        self.events += new
        for new_event in new:
            self.doc = evolve(self.doc, new_event)

    def _amount(self, spec: str | Decimal) -> Decimal:
        balance = self.total - self.paid
        if isinstance(spec, Decimal):
            return spec
        return {
            "balance": balance,
            "balance+unit": balance + self.unit,
            "half": balance / 2,
            "third": balance / 3,
            "unit": self.unit,
        }[spec]

    @rule()
    def issue(self) -> None:
        if self.status != "Draft":
            with pytest.raises(IllegalTransition):
                self.invoice.issue(
                    number="INV-2026-000001", issue_date=ISSUE_DATE, payment_terms_days=30, at=AT
                )
            return
        self.invoice.issue(
            number="INV-2026-000001", issue_date=ISSUE_DATE, payment_terms_days=30, at=AT
        )
        # An invoice for nothing is settled the moment it is issued.
        self.status = "Paid" if self.invoice.total == 0 else "Issued"
        self._recorded()

    @rule(spec=payment_amounts)
    def pay(self, spec: str | Decimal) -> None:
        amount = self._amount(spec)
        expected: type[DomainError] | None = None
        rounded = None
        if self.status not in ("Issued", "PartiallyPaid"):
            expected = IllegalTransition
        elif not amount.is_finite() or amount < 0:
            expected = InvalidValue
        else:
            rounded = expected_line(Decimal(1), amount, self.currency)
            if rounded == 0 or rounded >= LIMIT:
                expected = InvalidValue
            elif rounded > self.total - self.paid:
                expected = Overpayment
        pay = {
            "payment_id": uuid4(),
            "amount": amount,
            "method": "bank-transfer",
            "received_on": ISSUE_DATE,
            "reference": None,
            "at": AT,
        }
        if expected is not None:
            with pytest.raises(expected):
                self.invoice.receive_payment(**pay)
            assert not self.invoice.collect_events(), "a refused payment recorded something"
            return
        assert rounded is not None
        self.invoice.receive_payment(**pay)
        self.paid += rounded
        self.payments += 1
        self.status = "Paid" if self.paid == self.total else "PartiallyPaid"
        self._recorded()

    @rule(spec=st.sampled_from(["half", "third", "unit", "balance"]))
    def pay_part_of_the_balance(self, spec: str) -> None:
        self.pay(spec)

    @rule(reason=st.one_of(st.none(), st.just("duplicate")), now=st.integers(0, 2))
    def void(self, reason: str | None, now: int) -> None:
        if now:  # voiding ends the story: try it a third as often as the rest
            return
        if self.status not in ("Draft", "Issued") or self.paid:
            with pytest.raises(IllegalTransition):
                self.invoice.void(reason=reason, at=AT)
            return
        self.invoice.void(reason=reason, at=AT)
        self.status = "Void"
        self._recorded()

    @invariant()
    def paid_never_exceeds_the_total(self) -> None:
        assert self.invoice.paid <= self.invoice.total
        assert self.invoice.balance >= 0
        assert self.invoice.paid == self.paid
        assert self.invoice.total == self.total
        assert self.invoice.status == self.status
        assert len(self.invoice.payment_ids) == self.payments
        if self.invoice.status == "Void":
            assert self.invoice.paid == 0

    @invariant()
    def events_rebuild_the_same_invoice(self) -> None:
        rebuilt: Any = None
        for recorded in self.events:
            rebuilt = recorded.mutate(rebuilt)
        assert rebuilt.status == self.status
        assert rebuilt.paid == self.paid
        assert rebuilt.version == self.invoice.version
        assert self.doc["status"] == self.status
        assert Decimal(self.doc["paidAmount"]) == self.paid
        assert Decimal(self.doc["balance"]) == self.total - self.paid


InvoiceLifecycle.TestCase.settings = settings(
    max_examples=250, stateful_step_count=20, deadline=None
)
test_invoice_lifecycle = InvoiceLifecycle.TestCase


@pytest.mark.parametrize("paid", ["0.01", "99.99", "100.00"])
def test_void_is_refused_once_anything_is_paid(paid: str) -> None:
    invoice = draft("USD", [("Work", Decimal(1), Decimal(100))])
    invoice.issue(number="INV-2026-000001", issue_date=ISSUE_DATE, payment_terms_days=30, at=AT)
    invoice.receive_payment(
        payment_id=uuid4(),
        amount=Decimal(paid),
        method="card",
        received_on=ISSUE_DATE,
        reference=None,
        at=AT,
    )
    invoice.collect_events()
    with pytest.raises(IllegalTransition):
        invoice.void(reason=None, at=AT)
    assert not invoice.collect_events()
    assert invoice.status == ("Paid" if paid == "100.00" else "PartiallyPaid")


def test_an_issued_zero_invoice_is_paid_and_takes_no_payment() -> None:
    invoice = draft("USD", [("Free", Decimal(1), Decimal(0))])
    invoice.issue(number="INV-2026-000001", issue_date=ISSUE_DATE, payment_terms_days=30, at=AT)
    assert invoice.status == "Paid"
    assert [type(e).__name__ for e in invoice.pending_events][-2:] == ["Issued", "Paid"]
    with pytest.raises(IllegalTransition):
        invoice.receive_payment(
            payment_id=uuid4(),
            amount=Decimal("0.01"),
            method="card",
            received_on=ISSUE_DATE,
            reference=None,
            at=AT,
        )


# -- numbering: gap-free under any interleaving -----------------------------------------------


COPIES = 4
slots = st.integers(0, COPIES - 1)


class Numbering(RuleBasedStateMachine):
    """Several copies of one tenant's InvoiceNumbering, loaded from one event log at different
    times, race to take numbers, each with the invoice it numbers in the same atomic write. A
    stale copy's write fails with ConcurrentWrite and stores nothing (the application reloads
    and reruns); whatever the interleaving, the stored numbers are 1..n, no gaps, no repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.log = EventLog(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"}
        )
        self.tenant_id = uuid4()
        self.numbering_id = uuid4()
        self.stored_version = 0  # 0: the numbering does not exist yet
        self.taken: list[UUID] = []  # invoice ids, in the order their numbers were taken
        self.slots = [self._load() for _ in range(COPIES)]

    def _load(self) -> tuple[InvoiceNumbering | None, int]:
        loaded = self.log.load(InvoiceNumbering, self.numbering_id)
        return loaded, 0 if loaded is None else loaded.version

    @rule(slot=slots)
    def reload(self, slot: int) -> None:
        self.slots[slot] = self._load()

    @rule(slot=slots)
    def take_a_number(self, slot: int) -> None:
        copy, seen_version = self.slots[slot]
        if copy is None:
            copy = InvoiceNumbering.start(
                numbering_id=self.numbering_id, tenant_id=self.tenant_id, year=2026, at=AT
            )
        invoice = draft("USD", [("Work", Decimal(1), Decimal(10))], tenant_id=self.tenant_id)
        sequence = copy.take(invoice_id=invoice.id, at=AT)
        invoice.issue(
            number=invoice_number("INV", 2026, sequence),
            issue_date=ISSUE_DATE,
            payment_terms_days=30,
            at=AT,
        )
        stale = seen_version != self.stored_version
        if stale:
            with pytest.raises(ConcurrentWrite):
                self.log.record(invoice, copy, meta=META)
            assert self.log.load(Invoice, invoice.id) is None, "a failed issue left an invoice"
            event("stale copy refused")
            self.slots[slot] = self._load()  # what the application's rerun does
            return
        self.log.record(invoice, copy, meta=META)
        self.taken.append(invoice.id)
        event(f"numbers taken >= {min(len(self.taken), 8)}")
        assert sequence == len(self.taken)
        self.stored_version = copy.version
        self.slots[slot] = (copy, copy.version)

    @invariant()
    def stored_numbers_are_gap_free(self) -> None:
        history = self.log.history(self.numbering_id)
        sequences = [e.sequence for e in history if isinstance(e, InvoiceNumbering.NumberTaken)]
        assert sequences == list(range(1, len(self.taken) + 1))
        assert [e.invoice_id for e in history[1:]] == self.taken
        numbers = []
        for invoice_id in self.taken:
            invoice = self.log.load(Invoice, invoice_id)
            assert invoice is not None
            numbers.append(invoice.number)
        assert numbers == [invoice_number("INV", 2026, n) for n in sequences]

    def teardown(self) -> None:
        self.log.close()


Numbering.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_numbering_is_gap_free = Numbering.TestCase
