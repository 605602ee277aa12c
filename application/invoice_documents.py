"""Invoice downloads: the printable document of an invoice, and the port that renders it.

`InvoiceDownloads` gathers what an invoice page shows (the tenant that bills, the customer billed,
the invoice with its lines and balance) from the read models into an `InvoiceDocument`, and
hands it to an `InvoiceRenderer` (a PDF adapter). Amounts stay the read model's decimal strings,
already carrying the currency's minor units; how they are displayed is the renderer's business.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol
from uuid import UUID

import msgspec
from babel import Locale

from application.billing import BillingQueries
from application.context import Context
from application.customers import CustomerQueries
from application.queries import TenantQueries

DRAFT_NUMBER = "DRAFT"
# Country names in the billed-to block; the renderer formats numbers and dates in the same one.
DISPLAY_LOCALE = "en_GB"
# What printing an invoice reads besides the invoice: the tenant's name and the billed customer.
PRINTED_WITH_INVOICE = frozenset({"tenant:read", "customer:read"})


class InvoiceLine(msgspec.Struct, frozen=True):
    description: str
    quantity: str  # a decimal string, e.g. "1", "2.5"
    unit_price: str  # a decimal string; may be finer than the currency's minor unit
    amount: str  # a decimal string in the currency's minor units


class InvoiceDocument(msgspec.Struct, frozen=True):
    """Everything an invoice page shows, and nothing it does not."""

    tenant_name: str
    tenant_email: str | None
    customer_name: str
    customer_email: str | None
    billing_address: list[str]  # display lines, the country by name; empty when unknown
    invoice_id: UUID
    number: str  # "INV-2026-000001", or DRAFT_NUMBER before the invoice is issued
    status: str  # Draft, Issued, PartiallyPaid, Paid or Void
    currency: str  # ISO 4217
    issue_date: date | None  # None while a draft
    due_date: date | None
    lines: list[InvoiceLine]
    total: str
    paid: str
    balance: str
    # The invoice's own terms once issued (due date - issue date), the tenant's before that.
    payment_terms_days: int | None
    as_of: datetime  # when the invoice last changed: the state the page shows (and its PDF date)

    @property
    def is_draft(self) -> bool:
        return self.number == DRAFT_NUMBER


class InvoiceRenderer(Protocol):
    """Port: turns an invoice document into a file (a PDF, for the adapter in adapters.pdf)."""

    def render(self, document: InvoiceDocument) -> bytes: ...


def file_name(document: InvoiceDocument) -> str:
    """`INV-2026-000001.pdf`, or `draft-<first 8 hex digits of the id>.pdf` before issue.

    Numbers are the tenant's prefix (letters, digits, `-`), the year and a sequence, so they are
    safe in a file name and a Content-Disposition header as they are."""
    if document.is_draft:
        return f"draft-{document.invoice_id.hex[:8]}.pdf"
    return f"{document.number}.pdf"


# -- the read models' representations, as far as a page needs them ---------------------------


class _Line(msgspec.Struct, rename="camel"):
    description: str
    quantity: str
    unit_price: str
    amount: str


class _Invoice(msgspec.Struct, rename="camel"):
    invoice_id: UUID
    customer_id: UUID
    number: str | None
    status: str
    currency: str
    lines: list[_Line]
    total_amount: str
    paid_amount: str
    balance: str
    issue_date: date | None
    due_date: date | None
    updated_at: datetime


class _Address(msgspec.Struct, rename="camel"):
    line1: str
    city: str
    country: str
    line2: str | None = None
    postal_code: str | None = None


class _Customer(msgspec.Struct, rename="camel"):
    name: str
    email: str | None = None
    billing_address: _Address | None = None


class _Tenant(msgspec.Struct, rename="camel"):
    name: str
    contact_email: str | None = None


class _Settings(msgspec.Struct, rename="camel"):
    payment_terms_days: int | None = None


def address_lines(address: _Address | None) -> list[str]:
    if address is None:
        return []
    territories = Locale.parse(DISPLAY_LOCALE).territories
    place = ", ".join(part for part in (address.city, address.postal_code) if part)
    lines = [address.line1, address.line2 or "", place, territories.get(address.country, "")]
    return [line for line in lines if line]


def _printing(ctx: Context) -> Context:
    """The caller's context for reading what is printed on an invoice it may read.

    An invoice shows who bills and who is billed; a caller allowed to read the invoice (an API
    key scoped to `invoice:read` only, say) may read those two on it. Same caller, same tenant:
    the reads stay tenant-scoped, and they are only ever made for the invoice's own customer."""
    principal = msgspec.structs.replace(
        ctx.principal, permissions=ctx.principal.permissions | PRINTED_WITH_INVOICE
    )
    return msgspec.structs.replace(ctx, principal=principal)


class InvoiceDownloads:
    """The invoice as a file. Needs `invoice:read`; another tenant's invoice is not found."""

    def __init__(
        self,
        renderer: InvoiceRenderer,
        billing: BillingQueries,
        customers: CustomerQueries,
        tenants: TenantQueries,
    ) -> None:
        self._renderer = renderer
        self._billing = billing
        self._customers = customers
        self._tenants = tenants

    def document(self, ctx: Context, invoice_id: UUID) -> InvoiceDocument:
        # The invoice first: its permission and tenant decide between 403, 404 and a page.
        invoice = msgspec.json.decode(self._billing.invoice(ctx, invoice_id).doc, type=_Invoice)
        reader = _printing(ctx)
        customer = msgspec.json.decode(
            self._customers.get(reader, invoice.customer_id).doc, type=_Customer
        )
        record = self._tenants.get(reader, reader.require_tenant())
        tenant = msgspec.json.decode(record.tenant.doc, type=_Tenant)
        settings = msgspec.json.decode(record.settings, type=_Settings)
        return InvoiceDocument(
            tenant_name=tenant.name,
            tenant_email=tenant.contact_email,
            customer_name=customer.name,
            customer_email=customer.email,
            billing_address=address_lines(customer.billing_address),
            invoice_id=invoice.invoice_id,
            number=invoice.number or DRAFT_NUMBER,
            status=invoice.status,
            currency=invoice.currency,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            lines=[
                InvoiceLine(
                    description=line.description,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    amount=line.amount,
                )
                for line in invoice.lines
            ],
            total=invoice.total_amount,
            paid=invoice.paid_amount,
            balance=invoice.balance,
            payment_terms_days=(
                (invoice.due_date - invoice.issue_date).days
                if invoice.issue_date is not None and invoice.due_date is not None
                else settings.payment_terms_days
            ),
            as_of=invoice.updated_at,
        )

    def pdf(self, ctx: Context, invoice_id: UUID) -> tuple[str, bytes]:
        """The file name and the rendered bytes."""
        document = self.document(ctx, invoice_id)
        return file_name(document), self._renderer.render(document)
