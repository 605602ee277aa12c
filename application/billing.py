"""Billing use cases: invoices from Draft to Paid, gap-free numbering, payments, and the policy
that bills a completed milestone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

import msgspec

from application.claims import rerun_on_conflict
from application.commands import Command
from application.context import Context
from application.customers import require_customer
from application.engagements import require_engagement
from application.errors import ConcurrentWrite, InvalidRequest, NotFound
from application.event_log import EventLog
from application.ports import Clock, IdGenerator
from application.queries import Document, Page, check_limit, decode_cursor
from application.results import Written
from application.tenancy import active_tenant
from domain.engagement import Engagement
from domain.invoice import Invoice, InvoiceNumbering, invoice_number

# Fixed namespaces: changing them would re-key existing numbering and milestone invoices.
_NUMBERING = UUID("5b0c9d0e-2f7a-4c1e-9d3b-6a1f0e2c4b7d")
_MILESTONE_INVOICE = UUID("0e7d4c2a-9b1f-4f6e-8a3c-2d5b7e9f1a0c")
# Issuing is a hot spot (one numbering aggregate per tenant and year): allow more reruns.
ISSUE_ATTEMPTS = 25


class LineBody(Command):
    description: str
    quantity: Decimal
    unit_price: Decimal


class CreateInvoice(Command):
    customer_id: UUID
    currency: str
    lines: list[LineBody]
    engagement_id: UUID | None = None
    due_date: date | None = None


class VoidInvoice(Command):
    reason: str | None = None


class RecordPayment(Command):
    invoice_id: UUID
    amount: Decimal
    method: str
    received_on: date
    reference: str | None = None


def numbering_id(tenant_id: UUID, year: int) -> UUID:
    return uuid5(_NUMBERING, f"{tenant_id}/{year}")


def milestone_invoice_id(milestone_id: UUID) -> UUID:
    """The one invoice a milestone may ever produce: a second attempt collides with the first."""
    return uuid5(_MILESTONE_INVOICE, str(milestone_id))


class BillingCommands:
    def __init__(self, log: EventLog, clock: Clock, ids: IdGenerator) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids

    def create(self, ctx: Context, cmd: CreateInvoice) -> Written:
        ctx.require("invoice:write")
        tenant = active_tenant(self._log, ctx)
        require_customer(self._log, tenant.id, cmd.customer_id)
        if cmd.engagement_id is not None:
            engagement = require_engagement(
                self._log, tenant.id, cmd.engagement_id, field="engagementId"
            )
            if engagement.terms.customer_id != cmd.customer_id:
                raise InvalidRequest("engagementId", "the engagement is for another customer")
        invoice = Invoice.draft(
            invoice_id=self._ids.new_id(),
            tenant_id=tenant.id,
            customer_id=cmd.customer_id,
            engagement_id=cmd.engagement_id,
            milestone_id=None,
            currency=cmd.currency,
            lines=[(line.description, line.quantity, line.unit_price) for line in cmd.lines],
            due_date=cmd.due_date,
            at=self._clock.now(),
        )
        position = self._log.record(invoice, meta=ctx.meta)
        return Written(id=invoice.id, version=invoice.version, position=position, created=True)

    def issue(self, ctx: Context, invoice_id: UUID, if_match: int | None) -> Written:
        """Number and date the invoice: the tenant's next number for the year of the issue date
        (in the tenant's time zone), taken in the same write as the issue, so gap-free."""
        ctx.require("invoice:issue")

        def run() -> Written:
            tenant = active_tenant(self._log, ctx)
            invoice = self._invoice(tenant.id, invoice_id, if_match)
            now = self._clock.now()
            issue_date = now.astimezone(ZoneInfo(tenant.timezone)).date()
            numbering_key = numbering_id(tenant.id, issue_date.year)
            numbering = self._log.load(InvoiceNumbering, numbering_key) or InvoiceNumbering.start(
                numbering_id=numbering_key, tenant_id=tenant.id, year=issue_date.year, at=now
            )
            sequence = numbering.take(invoice_id=invoice.id, at=now)
            invoice.issue(
                number=invoice_number(tenant.invoice_prefix, issue_date.year, sequence),
                issue_date=issue_date,
                payment_terms_days=tenant.payment_terms_days,
                at=now,
            )
            position = self._log.record(invoice, numbering, meta=ctx.meta)
            return Written(id=invoice.id, version=invoice.version, position=position)

        return rerun_on_conflict(run, attempts=ISSUE_ATTEMPTS)

    def void(
        self, ctx: Context, invoice_id: UUID, cmd: VoidInvoice, if_match: int | None
    ) -> Written:
        ctx.require("invoice:write")
        tenant = active_tenant(self._log, ctx)
        invoice = self._invoice(tenant.id, invoice_id, if_match)
        invoice.void(reason=cmd.reason, at=self._clock.now())
        position = self._log.record(invoice, meta=ctx.meta)
        return Written(id=invoice.id, version=invoice.version, position=position)

    def record_payment(self, ctx: Context, cmd: RecordPayment) -> Written:
        """A payment against an issued invoice; never more than its open balance, also when
        payments arrive concurrently (they are writes to the one invoice)."""
        ctx.require("payment:write")
        payment_id = self._ids.new_id()

        def run() -> Written:
            tenant = active_tenant(self._log, ctx)
            invoice = self._log.load(Invoice, cmd.invoice_id)
            if invoice is None or invoice.tenant_id != tenant.id:
                raise InvalidRequest("invoiceId", "no invoice with this id in the tenant")
            invoice.receive_payment(
                payment_id=payment_id,
                amount=cmd.amount,
                method=cmd.method,
                received_on=cmd.received_on,
                reference=cmd.reference,
                at=self._clock.now(),
            )
            position = self._log.record(invoice, meta=ctx.meta)
            return Written(id=payment_id, version=invoice.version, position=position, created=True)

        return rerun_on_conflict(run)

    def bill_milestone(self, ctx: Context, event: Engagement.MilestoneCompleted) -> bool:
        """Policy: a completed milestone with an amount gets a Draft invoice for that amount,
        for the engagement's customer, exactly once. The invoice id is derived from the
        milestone, so a replay, a rerun after a crash or a second process collides with the
        first invoice instead of making another. Returns whether an invoice was made now."""
        if event.amount is None or event.amount == 0:
            return False
        invoice_id = milestone_invoice_id(event.milestone_id)
        if self._log.load(Invoice, invoice_id) is not None:
            return False
        invoice = Invoice.draft(
            invoice_id=invoice_id,
            tenant_id=event.tenant_id,
            customer_id=event.customer_id,
            engagement_id=event.originator_id,
            milestone_id=event.milestone_id,
            currency=event.currency,
            lines=[(f"Milestone: {event.name}", Decimal(1), event.amount)],
            due_date=None,
            at=self._clock.now(),
        )
        try:
            self._log.record(invoice, meta=ctx.meta)
        except ConcurrentWrite:
            return False  # another runner made it first: exactly once holds
        return True

    def _invoice(self, tenant_id: UUID, invoice_id: UUID, if_match: int | None) -> Invoice:
        invoice = self._log.load(Invoice, invoice_id)
        if invoice is None or invoice.tenant_id != tenant_id:
            raise NotFound("invoice", invoice_id)
        self._log.check_version(invoice, if_match)
        return invoice


# -- reads ----------------------------------------------------------------------------------


class InvoiceFilter(msgspec.Struct, frozen=True):
    status: str | None = None
    customer_id: UUID | None = None


class BillingReadModel(Protocol):
    def invoice(self, tenant_id: UUID, invoice_id: UUID) -> Document | None: ...

    def invoices(
        self, tenant_id: UUID, where: InvoiceFilter, *, limit: int, after: int
    ) -> Page: ...

    def payments(
        self, tenant_id: UUID, invoice_id: UUID | None, *, limit: int, after: int
    ) -> Page: ...

    def payment(self, tenant_id: UUID, payment_id: UUID) -> Document | None: ...


INVOICE_STATUSES = ("Draft", "Issued", "PartiallyPaid", "Paid", "Void")


class BillingQueries:
    def __init__(self, billing: BillingReadModel) -> None:
        self._billing = billing

    def invoice(self, ctx: Context, invoice_id: UUID) -> Document:
        ctx.require("invoice:read")
        document = self._billing.invoice(ctx.require_tenant(), invoice_id)
        if document is None:
            raise NotFound("invoice", invoice_id)
        return document

    def invoices(
        self, ctx: Context, where: InvoiceFilter, *, limit: int, cursor: str | None
    ) -> Page:
        ctx.require("invoice:read")
        if where.status is not None and where.status not in INVOICE_STATUSES:
            raise InvalidRequest("status", f"must be one of {', '.join(INVOICE_STATUSES)}")
        return self._billing.invoices(
            ctx.require_tenant(), where, limit=check_limit(limit), after=decode_cursor(cursor)
        )

    def payment(self, ctx: Context, payment_id: UUID) -> Document:
        ctx.require("payment:read")
        document = self._billing.payment(ctx.require_tenant(), payment_id)
        if document is None:
            raise NotFound("payment", payment_id)
        return document

    def payments(
        self, ctx: Context, invoice_id: UUID | None, *, limit: int, cursor: str | None
    ) -> Page:
        ctx.require("payment:read")
        return self._billing.payments(
            ctx.require_tenant(), invoice_id, limit=check_limit(limit), after=decode_cursor(cursor)
        )
