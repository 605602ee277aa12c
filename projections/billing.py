"""The billing read models: invoices (with their balance) and payments."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from application.billing import InvoiceFilter
from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.invoice import Invoice
from projections.documents import DocumentTable
from projections.formats import day, ident, instant, to_json
from projections.paging import page_of

State = dict[str, Any]


def evolve(state: State | None, event: Any) -> State:
    """The invoice's client-facing representation after `event`."""
    if isinstance(event, Invoice.Created):
        return {
            "invoiceId": str(event.originator_id),
            "customerId": str(event.customer_id),
            "engagementId": ident(event.engagement_id),
            "milestoneId": ident(event.milestone_id),
            "number": None,
            "status": "Draft",
            "currency": event.currency,
            "lines": [
                {
                    "description": line.description,
                    "quantity": format(line.quantity, "f"),
                    "unitPrice": str(line.unit_price),
                    "amount": str(line.amount),
                }
                for line in event.lines
            ],
            "totalAmount": str(event.total),
            "paidAmount": str(event.total - event.total),  # zero, in the currency's digits
            "balance": str(event.total),
            "issueDate": None,
            "dueDate": day(event.due_date),
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    assert state is not None, "an invoice's first event creates it"
    if isinstance(event, Invoice.Issued):
        state.update(
            status="Issued",
            number=event.number,
            issueDate=day(event.issue_date),
            dueDate=day(event.due_date),
        )
    elif isinstance(event, Invoice.PaymentReceived):
        paid = Decimal(state["paidAmount"]) + event.amount
        state.update(
            paidAmount=str(paid),
            balance=str(event.balance_after),
            status="Paid" if event.balance_after == 0 else "PartiallyPaid",
        )
    elif isinstance(event, Invoice.Paid):
        state["status"] = "Paid"
    elif isinstance(event, Invoice.Voided):
        state["status"] = "Void"
    state["updatedAt"] = instant(event.timestamp)
    return state


def payment_doc(event: Invoice.PaymentReceived, invoice: State) -> State:
    return {
        "paymentId": str(event.payment_id),
        "invoiceId": str(event.originator_id),
        "invoiceNumber": invoice["number"],
        "customerId": invoice["customerId"],
        "amount": str(event.amount),
        "currency": invoice["currency"],
        "method": event.method,
        "receivedOn": day(event.received_on),
        "reference": event.reference,
        "createdAt": instant(event.timestamp),
    }


INVOICES = DocumentTable(
    "rm_invoices",
    "invoice_id",
    Invoice.Event,
    Invoice.Created,
    evolve,
    (("status", "status"), ("customer_id", "customerId")),
)


class BillingProjection:
    name = "billing"
    tables = (INVOICES.name, "rm_payments")
    ddl = (
        *INVOICES.ddl("customer_id, seq"),
        "CREATE TABLE IF NOT EXISTS rm_payments ("
        " tenant_id TEXT NOT NULL, payment_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " invoice_id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant_id, payment_id))",
        "CREATE INDEX IF NOT EXISTS rm_payments_list ON rm_payments (tenant_id, seq)",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, Invoice.Event):
            return
        doc = INVOICES.apply(cur, recorded.position, event)
        if isinstance(event, Invoice.PaymentReceived):
            cur.execute(
                "INSERT INTO rm_payments (tenant_id, payment_id, seq, invoice_id, doc)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    str(event.tenant_id),
                    str(event.payment_id),
                    recorded.position,
                    str(event.originator_id),
                    to_json(payment_doc(event, doc)),
                ),
            )


class BillingView:
    """Reads of invoices and payments (application.billing.BillingReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def invoice(self, tenant_id: UUID, invoice_id: UUID) -> Document | None:
        return INVOICES.get(self._db, tenant_id, invoice_id)

    def invoices(self, tenant_id: UUID, where: InvoiceFilter, *, limit: int, after: int) -> Page:
        filters = {"status": where.status, "customer_id": ident(where.customer_id)}
        return INVOICES.page(self._db, tenant_id, filters, limit=limit, after=after)

    def payment(self, tenant_id: UUID, payment_id: UUID) -> Document | None:
        rows = self._db.query(
            "SELECT doc FROM rm_payments WHERE tenant_id = ? AND payment_id = ?",
            (str(tenant_id), str(payment_id)),
        )
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=1) if rows else None

    def payments(self, tenant_id: UUID, invoice_id: UUID | None, *, limit: int, after: int) -> Page:
        conditions, params = ["tenant_id = ?"], [str(tenant_id)]
        if invoice_id:
            conditions.append("invoice_id = ?")
            params.append(str(invoice_id))
        return page_of(self._db, "rm_payments", conditions, params, limit=limit, after=after)
