"""The reports read model: open receivables per issued invoice, and revenue per month.

Folded from the invoice events alone (it reads no other read model while applying), so it can be
rebuilt in any order next to the others:

- `rm_report_drafts`: what an unissued invoice will owe (customer, currency, total). Issued
  events do not repeat these facts, so they are kept from `Invoice.Created` until the invoice is
  issued or voided.
- `rm_report_receivables`: one row per issued invoice with an open balance. `Issued` adds it
  with the total; `PaymentReceived` sets the balance the payment left; a zero balance, `Paid`
  and `Voided` remove it.
- `rm_report_revenue`: per (month, currency), `invoiced` (totals by the month of the issue
  date; a void of an issued invoice takes its total back out of that month) and `collected`
  (payments by the month of `receivedOn`). A row whose figures are both zero is removed, so a
  month with nothing but an issued-and-voided invoice has no row.

Amounts are stored as exact decimal text and added up in Python with Decimal: no floats, and no
BIGINT that sums of large amounts in three-decimal currencies could overflow. Every key starts
with tenant_id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from uuid import UUID

import msgspec

from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.reports import OpenReceivable, RevenueFigures
from domain.invoice import Invoice

ZERO = Decimal(0)
_NAMES_PER_QUERY = 500


def month_of(day: date) -> str:
    return day.isoformat()[:7]


class ReportsProjection:
    name = "reports"
    tables: tuple[str, ...] = ("rm_report_drafts", "rm_report_receivables", "rm_report_revenue")
    ddl: tuple[str, ...] = (
        "CREATE TABLE IF NOT EXISTS rm_report_drafts ("
        " tenant_id TEXT NOT NULL, invoice_id TEXT NOT NULL, customer_id TEXT NOT NULL,"
        " currency TEXT NOT NULL, total TEXT NOT NULL, PRIMARY KEY (tenant_id, invoice_id))",
        "CREATE TABLE IF NOT EXISTS rm_report_receivables ("
        " tenant_id TEXT NOT NULL, invoice_id TEXT NOT NULL, customer_id TEXT NOT NULL,"
        " currency TEXT NOT NULL, issue_date TEXT NOT NULL, due_date TEXT NOT NULL,"
        " total TEXT NOT NULL, balance TEXT NOT NULL, PRIMARY KEY (tenant_id, invoice_id))",
        "CREATE TABLE IF NOT EXISTS rm_report_revenue ("
        " tenant_id TEXT NOT NULL, month TEXT NOT NULL, currency TEXT NOT NULL,"
        " invoiced TEXT NOT NULL, collected TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, month, currency))",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, Invoice.Event):
            return
        key = (str(event.tenant_id), str(event.originator_id))
        if isinstance(event, Invoice.Created):
            cur.execute(
                "INSERT INTO rm_report_drafts (tenant_id, invoice_id, customer_id, currency, total)"
                " VALUES (?, ?, ?, ?, ?)",
                (*key, str(event.customer_id), event.currency, str(event.total)),
            )
        elif isinstance(event, Invoice.Issued):
            self._issued(cur, key, event)
        elif isinstance(event, Invoice.PaymentReceived):
            self._payment(cur, key, event)
        elif isinstance(event, Invoice.Paid):
            self._close(cur, key)
        elif isinstance(event, Invoice.Voided):
            self._voided(cur, key)

    def _issued(self, cur: SqlCursor, key: tuple[str, str], event: Invoice.Issued) -> None:
        cur.execute(
            "SELECT customer_id, currency, total FROM rm_report_drafts"
            " WHERE tenant_id = ? AND invoice_id = ?",
            key,
        )
        draft = cur.fetchone()
        assert draft is not None, f"invoice {key[1]} is issued but was never a draft"
        customer_id, currency, total = draft
        cur.execute("DELETE FROM rm_report_drafts WHERE tenant_id = ? AND invoice_id = ?", key)
        if Decimal(total) != 0:  # nothing is owed on an invoice of zero: not a receivable
            cur.execute(
                "INSERT INTO rm_report_receivables (tenant_id, invoice_id, customer_id, currency,"
                " issue_date, due_date, total, balance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    customer_id,
                    currency,
                    event.issue_date.isoformat(),
                    event.due_date.isoformat(),
                    total,
                    total,
                ),
            )
        _add_revenue(cur, key[0], month_of(event.issue_date), currency, invoiced=Decimal(total))

    def _payment(
        self, cur: SqlCursor, key: tuple[str, str], event: Invoice.PaymentReceived
    ) -> None:
        cur.execute(
            "SELECT currency FROM rm_report_receivables WHERE tenant_id = ? AND invoice_id = ?",
            key,
        )
        row = cur.fetchone()
        assert row is not None, f"a payment on invoice {key[1]}, which has no open balance"
        _add_revenue(cur, key[0], month_of(event.received_on), row[0], collected=event.amount)
        if event.balance_after == 0:
            self._close(cur, key)
        else:
            cur.execute(
                "UPDATE rm_report_receivables SET balance = ?"
                " WHERE tenant_id = ? AND invoice_id = ?",
                (str(event.balance_after), *key),
            )

    @staticmethod
    def _close(cur: SqlCursor, key: tuple[str, str]) -> None:
        cur.execute("DELETE FROM rm_report_receivables WHERE tenant_id = ? AND invoice_id = ?", key)

    def _voided(self, cur: SqlCursor, key: tuple[str, str]) -> None:
        cur.execute("DELETE FROM rm_report_drafts WHERE tenant_id = ? AND invoice_id = ?", key)
        cur.execute(
            "SELECT currency, issue_date, total FROM rm_report_receivables"
            " WHERE tenant_id = ? AND invoice_id = ?",
            key,
        )
        issued = cur.fetchone()
        if issued is None:  # a voided draft (or an issued invoice of zero): nothing was counted
            return
        currency, issue_date, total = issued
        self._close(cur, key)
        _add_revenue(cur, key[0], issue_date[:7], currency, invoiced=-Decimal(total))


def _add_revenue(
    cur: SqlCursor,
    tenant_id: str,
    month: str,
    currency: str,
    *,
    invoiced: Decimal = ZERO,
    collected: Decimal = ZERO,
) -> None:
    if invoiced == 0 and collected == 0:
        return
    row_key = (tenant_id, month, currency)
    cur.execute(
        "SELECT invoiced, collected FROM rm_report_revenue"
        " WHERE tenant_id = ? AND month = ? AND currency = ?",
        row_key,
    )
    row = cur.fetchone()
    if row is None:
        cur.execute(
            "INSERT INTO rm_report_revenue (tenant_id, month, currency, invoiced, collected)"
            " VALUES (?, ?, ?, ?, ?)",
            (*row_key, str(invoiced), str(collected)),
        )
        return
    new_invoiced, new_collected = Decimal(row[0]) + invoiced, Decimal(row[1]) + collected
    if new_invoiced == 0 and new_collected == 0:
        cur.execute(
            "DELETE FROM rm_report_revenue WHERE tenant_id = ? AND month = ? AND currency = ?",
            row_key,
        )
        return
    cur.execute(
        "UPDATE rm_report_revenue SET invoiced = ?, collected = ?"
        " WHERE tenant_id = ? AND month = ? AND currency = ?",
        (str(new_invoiced), str(new_collected), *row_key),
    )


class _Named(msgspec.Struct):
    name: str


class ReportsView:
    """Reads of the reports read model (implements application.reports.ReportsReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def open_receivables(self, tenant_id: UUID) -> list[OpenReceivable]:
        rows = self._db.query(
            "SELECT customer_id, currency, due_date, balance FROM rm_report_receivables"
            " WHERE tenant_id = ? ORDER BY invoice_id",
            (str(tenant_id),),
        )
        names = self._customer_names(str(tenant_id), {row[0] for row in rows})
        return [
            OpenReceivable(
                customer_id=UUID(customer_id),
                customer_name=names.get(customer_id),
                currency=currency,
                due_date=date.fromisoformat(due_date),
                balance=Decimal(balance),
            )
            for customer_id, currency, due_date, balance in rows
        ]

    def revenue(self, tenant_id: UUID, from_month: str, to_month: str) -> list[RevenueFigures]:
        rows = self._db.query(
            "SELECT month, currency, invoiced, collected FROM rm_report_revenue"
            " WHERE tenant_id = ? AND month >= ? AND month <= ? ORDER BY month, currency",
            (str(tenant_id), from_month, to_month),
        )
        return [
            RevenueFigures(
                month=month,
                currency=currency,
                invoiced=Decimal(invoiced),
                collected=Decimal(collected),
            )
            for month, currency, invoiced, collected in rows
        ]

    def _customer_names(self, tenant_id: str, customer_ids: Iterable[str]) -> dict[str, str]:
        """Names from the customers read model (its document's "name")."""
        ids = sorted(customer_ids)
        names: dict[str, str] = {}
        for start in range(0, len(ids), _NAMES_PER_QUERY):
            chunk = ids[start : start + _NAMES_PER_QUERY]
            rows = self._db.query(
                "SELECT customer_id, doc FROM rm_customers"
                f" WHERE tenant_id = ? AND customer_id IN ({', '.join('?' for _ in chunk)})",
                (tenant_id, *chunk),
            )
            for customer_id, doc in rows:
                names[customer_id] = msgspec.json.decode(doc, type=_Named).name
        return names
