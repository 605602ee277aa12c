"""Invoice: what a customer owes, from Draft to Paid (or Void), with exact money.

Lines are priced quantity x unit price, each rounded half-even to the currency's minor unit; the
total is the sum of the rounded lines, so every printed figure adds up. Statuses:
Draft -> Issued -> PartiallyPaid -> Paid, and Draft|Issued -> Void while nothing is paid.
Payments are recorded on the invoice itself, so two concurrent payments are two writes to one
aggregate and can never together exceed the balance.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import ClassVar
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain import money, values
from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.events import TenantEvent

DRAFT, ISSUED, PARTIALLY_PAID, PAID, VOID = "Draft", "Issued", "PartiallyPaid", "Paid", "Void"
METHODS = ("bank-transfer", "card", "cash", "cheque", "direct-debit", "other")
MAX_LINES = 500


class Line(msgspec.Struct, frozen=True, rename="camel"):
    """A priced line; camelCase when stored, so the audit trail shows it as clients send it."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # quantity x unit price, rounded to the currency's minor unit


def price_line(
    index: int, description: str, quantity: Decimal, unit_price: Decimal, currency: str
) -> Line:
    field = f"lines[{index}]"
    if not quantity.is_finite() or quantity <= 0 or quantity >= Decimal("1e9"):
        raise InvalidValue(f"{field}.quantity", "must be a positive number below 1000000000")
    if quantity != quantity.quantize(Decimal("0.0001")):
        raise InvalidValue(f"{field}.quantity", "must have at most four decimal places")
    # Rates may be finer than the currency's minor unit (0.125 per item); the line amount is not.
    if not unit_price.is_finite() or unit_price < 0 or unit_price >= money.MAX_AMOUNT:
        raise InvalidValue(f"{field}.unitPrice", "must be a non-negative decimal amount")
    if unit_price != unit_price.quantize(Decimal("0.000001")):
        raise InvalidValue(f"{field}.unitPrice", "must have at most six decimal places")
    price = unit_price.copy_abs() if unit_price == 0 else unit_price  # never "-0"
    try:
        amount = (quantity * price).quantize(
            Decimal(1).scaleb(-money.minor_units(currency)), rounding=ROUND_HALF_EVEN
        )
    except InvalidOperation:
        raise InvalidValue(f"{field}.quantity", "is too large") from None
    return Line(
        description=values.required_text(f"{field}.description", description, 500),
        # Plain digits ("10", not "1E+1"), without trailing zeros beyond what was sent.
        quantity=quantity.quantize(Decimal(1)) if quantity == quantity.to_integral() else quantity,
        unit_price=price,
        amount=amount,
    )


def total_of(lines: list[Line]) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))


class Invoice(Aggregate):
    TOPIC = "workledger:Invoice"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:InvoiceCreated"
        webhook = "invoice.created"
        customer_id: UUID
        engagement_id: UUID | None
        milestone_id: UUID | None
        currency: str
        lines: list[Line]
        total: Decimal
        due_date: date | None

    class Issued(Event):
        TOPIC = "workledger:InvoiceIssued"
        webhook = "invoice.issued"
        number: str
        issue_date: date
        due_date: date

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = ISSUED
            aggregate.number = self.number
            aggregate.issue_date = self.issue_date
            aggregate.due_date = self.due_date

    class PaymentReceived(Event):
        TOPIC = "workledger:PaymentReceived"
        webhook = "payment.received"
        payment_id: UUID
        amount: Decimal
        method: str
        received_on: date
        reference: str | None
        balance_after: Decimal

        def apply(self, aggregate: Invoice) -> None:
            aggregate.paid += self.amount
            aggregate.payment_ids.append(self.payment_id)
            aggregate.status = PAID if self.balance_after == 0 else PARTIALLY_PAID

    class Paid(Event):
        TOPIC = "workledger:InvoicePaid"
        webhook = "invoice.paid"

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = PAID

    class Voided(Event):
        TOPIC = "workledger:InvoiceVoided"
        webhook = "invoice.voided"
        reason: str | None

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = VOID

    def __init__(
        self,
        tenant_id: UUID,
        customer_id: UUID,
        engagement_id: UUID | None,
        milestone_id: UUID | None,
        currency: str,
        lines: list[Line],
        total: Decimal,
        due_date: date | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.customer_id = customer_id
        self.engagement_id = engagement_id
        self.milestone_id = milestone_id
        self.currency = currency
        self.lines = list(lines)
        self.total = total
        self.status = DRAFT
        self.number: str | None = None
        self.issue_date: date | None = None
        self.due_date = due_date
        self.paid = Decimal(0)
        self.payment_ids: list[UUID] = []

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def draft(
        cls,
        *,
        invoice_id: UUID,
        tenant_id: UUID,
        customer_id: UUID,
        engagement_id: UUID | None,
        milestone_id: UUID | None,
        currency: str,
        lines: list[tuple[str, Decimal, Decimal]],
        due_date: date | None,
        at: datetime,
    ) -> Invoice:
        code = values.currency("currency", currency)
        if not lines:
            raise InvalidValue("lines", "an invoice needs at least one line")
        if len(lines) > MAX_LINES:
            raise InvalidValue("lines", f"an invoice has at most {MAX_LINES} lines")
        priced = [price_line(i, d, q, p, code) for i, (d, q, p) in enumerate(lines)]
        total = total_of(priced)
        if total >= money.MAX_AMOUNT:
            raise InvalidValue("lines", "the total is too large")
        return cls._create(
            cls.Created,
            id=invoice_id,
            tenant_id=tenant_id,
            customer_id=customer_id,
            engagement_id=engagement_id,
            milestone_id=milestone_id,
            currency=code,
            lines=priced,
            total=total,
            due_date=due_date,
            timestamp=at,
        )

    def issue(
        self, *, number: str, issue_date: date, payment_terms_days: int, at: datetime
    ) -> None:
        """Give the invoice its number and dates. The number comes from InvoiceNumbering."""
        if self.status != DRAFT:
            raise IllegalTransition("invoice", "issue", self.status)
        due = self.due_date
        if due is None or due <= issue_date:
            due = date.fromordinal(issue_date.toordinal() + payment_terms_days)
        self.trigger_event(
            self.Issued,
            tenant_id=self.tenant_id,
            timestamp=at,
            number=number,
            issue_date=issue_date,
            due_date=due,
        )
        if self.total == 0:  # nothing to pay: settled the moment it is issued
            self.trigger_event(self.Paid, tenant_id=self.tenant_id, timestamp=at)

    def receive_payment(
        self,
        *,
        payment_id: UUID,
        amount: Decimal,
        method: str,
        received_on: date,
        reference: str | None,
        at: datetime,
    ) -> None:
        if self.status not in (ISSUED, PARTIALLY_PAID):
            raise IllegalTransition("invoice", "record a payment on", self.status)
        paid = money.amount("amount", amount, self.currency, allow_zero=False)
        if paid > self.balance:
            raise Overpayment(paid, self.balance, self.currency)
        self.trigger_event(
            self.PaymentReceived,
            tenant_id=self.tenant_id,
            timestamp=at,
            payment_id=payment_id,
            amount=paid,
            method=values.one_of("method", method, METHODS),
            received_on=received_on,
            reference=values.optional_text("reference", reference, 100),
            balance_after=self.balance - paid,
        )
        if self.balance == 0:
            self.trigger_event(self.Paid, tenant_id=self.tenant_id, timestamp=at)

    def void(self, *, reason: str | None, at: datetime) -> None:
        if self.status not in (DRAFT, ISSUED) or self.paid:
            raise IllegalTransition("invoice", "void", self.status)
        self.trigger_event(
            self.Voided,
            tenant_id=self.tenant_id,
            timestamp=at,
            reason=values.optional_text("reason", reason, 500),
        )

    # -- queries --------------------------------------------------------------------------

    @property
    def balance(self) -> Decimal:
        return self.total - self.paid


class Overpayment(DomainError):
    """A payment larger than the open balance (409)."""

    code = "overpayment"

    def __init__(self, amount: Decimal, balance: Decimal, currency: str) -> None:
        super().__init__(
            f"the payment of {amount} {currency} exceeds the open balance of {balance} {currency}"
        )


def invoice_number(prefix: str, year: int, sequence: int) -> str:
    return f"{prefix}-{year}-{sequence:06d}"


class InvoiceNumbering(Aggregate):
    """A tenant's invoice numbers for one year: issued one at a time, gap-free.

    Its id is derived from (tenant, year), and a number is taken in the same atomic write that
    issues the invoice, so a failed issue consumes nothing and two concurrent issues cannot take
    the same number: one of them conflicts on this aggregate's version and tries again.
    """

    TOPIC = "workledger:InvoiceNumbering"

    class Event(TenantEvent):
        audited: ClassVar[bool] = False  # bookkeeping: the invoice's own Issued event says it

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:InvoiceNumberingStarted"
        year: int

    class NumberTaken(Event):
        TOPIC = "workledger:InvoiceNumberTaken"
        sequence: int
        invoice_id: UUID

        def apply(self, aggregate: InvoiceNumbering) -> None:
            aggregate.last = self.sequence

    def __init__(self, tenant_id: UUID, year: int) -> None:
        self.tenant_id = tenant_id
        self.year = year
        self.last = 0

    @classmethod
    def start(
        cls, *, numbering_id: UUID, tenant_id: UUID, year: int, at: datetime
    ) -> InvoiceNumbering:
        return cls._create(
            cls.Created, id=numbering_id, tenant_id=tenant_id, year=year, timestamp=at
        )

    def take(self, *, invoice_id: UUID, at: datetime) -> int:
        sequence = self.last + 1
        self.trigger_event(
            self.NumberTaken,
            tenant_id=self.tenant_id,
            timestamp=at,
            sequence=sequence,
            invoice_id=invoice_id,
        )
        return sequence
