"""Reports: receivables aging and revenue by month, read from the reports read model.

Both are tenant-scoped and need `invoice:read`. Amounts are exact Decimals end to end and leave
as decimal strings with the currency's minor units (JPY "120000", USD "600.05", BHD "1.250").

- Receivables age the *current* open balances of issued invoices by days past due on `asOf`
  (default: today, UTC): not yet due or due that day -> `current`, then 1-30, 31-60, 61-90 and
  over 90 days. One row per customer and currency, sorted by customer name, then currency.
- Revenue is per month and currency: `invoiced` by the month of the issue date (a void takes
  the invoice back out of its issue month), `collected` by the month a payment was received.
  Only months with figures are listed, sorted by month, then currency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Protocol
from uuid import UUID

import msgspec

from application.context import Context
from application.errors import InvalidRequest
from application.ports import Clock
from domain.money import minor_units

PERMISSION = "invoice:read"
BUCKETS = ("current", "days1to30", "days31to60", "days61to90", "over90")
MAX_MONTHS_APART = 10 * 12
_MONTH = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")


# -- the read port ----------------------------------------------------------------------


class OpenReceivable(msgspec.Struct, frozen=True):
    """An issued invoice's open balance (always above zero), with its customer's name."""

    customer_id: UUID
    customer_name: str | None  # None only if the customer is unknown to the read models
    currency: str
    due_date: date
    balance: Decimal


class RevenueFigures(msgspec.Struct, frozen=True):
    month: str  # YYYY-MM
    currency: str
    invoiced: Decimal
    collected: Decimal


class ReportsReadModel(Protocol):
    def open_receivables(self, tenant_id: UUID) -> list[OpenReceivable]: ...

    def revenue(self, tenant_id: UUID, from_month: str, to_month: str) -> list[RevenueFigures]:
        """Months `from_month`..`to_month` (inclusive, YYYY-MM) that have figures."""
        ...


# -- what clients get -------------------------------------------------------------------


class AgingRow(msgspec.Struct, frozen=True, rename="camel"):
    customer_id: UUID
    customer_name: str | None
    currency: str
    current: str
    days1to30: str
    days31to60: str
    days61to90: str
    over90: str
    total: str


class ReceivablesReport(msgspec.Struct, frozen=True, rename="camel"):
    as_of: date
    rows: list[AgingRow]


class RevenueRow(msgspec.Struct, frozen=True, rename="camel"):
    month: str
    currency: str
    invoiced: str
    collected: str


class RevenueReport(msgspec.Struct, frozen=True, rename="camel"):
    rows: list[RevenueRow]


# -- pure rules -------------------------------------------------------------------------


def bucket(days_past_due: int) -> str:
    """The aging bucket of a balance `days_past_due` days after its due date."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days1to30"
    if days_past_due <= 60:
        return "days31to60"
    if days_past_due <= 90:
        return "days61to90"
    return "over90"


def amount_text(amount: Decimal, currency: str) -> str:
    """A decimal string with exactly the currency's minor units ("0.00", "120000")."""
    rounded = amount.quantize(Decimal(1).scaleb(-minor_units(currency)))
    return str(rounded.copy_abs() if rounded == 0 else rounded)  # never "-0.00"


def aging(items: Iterable[OpenReceivable], as_of: date) -> list[AgingRow]:
    """Open balances summed per customer and currency into buckets by days past due."""
    sums: dict[tuple[UUID, str], dict[str, Decimal]] = {}
    names: dict[UUID, str | None] = {}
    for item in items:
        buckets = sums.setdefault(
            (item.customer_id, item.currency), dict.fromkeys(BUCKETS, Decimal(0))
        )
        buckets[bucket((as_of - item.due_date).days)] += item.balance
        names[item.customer_id] = item.customer_name

    def row(customer_id: UUID, currency: str, buckets: dict[str, Decimal]) -> AgingRow:
        text = {name: amount_text(value, currency) for name, value in buckets.items()}
        return AgingRow(
            customer_id=customer_id,
            customer_name=names[customer_id],
            currency=currency,
            current=text["current"],
            days1to30=text["days1to30"],
            days31to60=text["days31to60"],
            days61to90=text["days61to90"],
            over90=text["over90"],
            total=amount_text(sum(buckets.values(), Decimal(0)), currency),
        )

    rows = [row(customer, currency, buckets) for (customer, currency), buckets in sums.items()]
    rows.sort(
        key=lambda r: (
            (r.customer_name or "").casefold(),
            r.customer_name or "",
            str(r.customer_id),
            r.currency,
        )
    )
    return rows


def month_text(field: str, value: str | None) -> str:
    """A YYYY-MM month, or a 400 naming `field`."""
    if value is None or value == "":
        raise InvalidRequest(field, "is required: a month as YYYY-MM")
    if not _MONTH.fullmatch(value) or value.startswith("0000"):
        raise InvalidRequest(field, "must be a month as YYYY-MM, such as 2026-01")
    return value


def _months(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_range(from_month: str | None, to_month: str | None) -> tuple[str, str]:
    """The validated `from`..`to` range: from <= to, at most ten years apart."""
    start, end = month_text("from", from_month), month_text("to", to_month)
    if _months(end) < _months(start):
        raise InvalidRequest("to", "must not be before `from`")
    if _months(end) - _months(start) > MAX_MONTHS_APART:
        raise InvalidRequest("to", "must be at most 10 years after `from`")
    return start, end


# -- the query service ------------------------------------------------------------------


class ReportQueries:
    def __init__(self, reports: ReportsReadModel, clock: Clock) -> None:
        self._reports = reports
        self._clock = clock

    def receivables(self, ctx: Context, as_of: date | None = None) -> ReceivablesReport:
        """Open balances of issued invoices, aged as of `as_of` (default: today, UTC)."""
        ctx.require(PERMISSION)
        tenant_id = ctx.require_tenant()
        day = as_of or self._clock.now().date()
        return ReceivablesReport(
            as_of=day, rows=aging(self._reports.open_receivables(tenant_id), day)
        )

    def revenue(self, ctx: Context, from_month: str | None, to_month: str | None) -> RevenueReport:
        """Invoiced and collected per month and currency, `from_month`..`to_month` inclusive."""
        ctx.require(PERMISSION)
        tenant_id = ctx.require_tenant()
        start, end = month_range(from_month, to_month)
        figures = self._reports.revenue(tenant_id, start, end)
        rows = [
            RevenueRow(
                month=f.month,
                currency=f.currency,
                invoiced=amount_text(f.invoiced, f.currency),
                collected=amount_text(f.collected, f.currency),
            )
            for f in figures
        ]
        rows.sort(key=lambda r: (r.month, r.currency))
        return RevenueReport(rows=rows)
