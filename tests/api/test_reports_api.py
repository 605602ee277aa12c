"""Black-box tests of /api/v1/reports: receivables aging and revenue by month, on SQLite and
PostgreSQL (API.md, "Reports (read models)" and "Billing").

Invoices are made, issued, paid and voided through the billing API; issue dates are "today",
so aging is tested with `asOf` dates after the due dates. The reports projection, its read model
and routes are wired in this module (until entrypoints/container.py and app.py know them).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.context import EventMeta
from domain.invoice import Invoice
from entrypoints.container import Services
from tests.api.problems import problem
from tests.api.world import Tenancy
from tests.conftest import Api

REPORT_TABLES = {
    "rm_report_drafts": "tenant_id, invoice_id",
    "rm_report_receivables": "tenant_id, invoice_id",
    "rm_report_revenue": "tenant_id, month, currency",
}
ZEROS_USD = {"current": "0.00", "days1to30": "0.00", "days31to60": "0.00", "days61to90": "0.00"}


@pytest.fixture
def reports_api(world: Tenancy) -> Api:
    """The world's API client (the shared app, reports included; both stores)."""
    return world.api


# -- helpers ------------------------------------------------------------------------------


class Books:
    """The world's tenant, kept by its finance role through the billing API."""

    def __init__(self, api: Api, world: Tenancy) -> None:
        self.api = api
        self.world = world
        self.finance = api.as_("finance", tenant=world.tenant)

    def customer(self, name: str) -> str:
        response = self.api.request(
            "POST", "/customers", json={"name": name}, auth=self.world.admin
        )
        assert response.status_code == 201, response.text
        return str(response.json()["customerId"])

    def invoice(
        self,
        customer: str,
        currency: str,
        lines: list[tuple[Any, Any]],
        due: date | None = None,
        *,
        issue: bool = True,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "customerId": customer,
            "currency": currency,
            "lines": [
                {"description": f"Line {i}", "quantity": q, "unitPrice": p}
                for i, (q, p) in enumerate(lines)
            ],
        }
        if due is not None:
            body["dueDate"] = due.isoformat()
        created = self.api.request("POST", "/billing/invoices", json=body, auth=self.finance)
        assert created.status_code == 201, created.text
        if not issue:
            return dict(created.json())
        invoice_id = created.json()["invoiceId"]
        issued = self.api.request(
            "POST", f"/billing/invoices/{invoice_id}/issue", auth=self.finance
        )
        assert issued.status_code == 200, issued.text
        doc = dict(issued.json())
        if due is not None:
            assert doc["dueDate"] == due.isoformat()  # the aging below relies on it
        return doc

    def pay(self, invoice: dict[str, Any], amount: str, received_on: date) -> None:
        body = {
            "invoiceId": invoice["invoiceId"],
            "amount": amount,
            "method": "bank-transfer",
            "receivedOn": received_on.isoformat(),
        }
        response = self.api.request("POST", "/billing/payments", json=body, auth=self.finance)
        assert response.status_code == 201, response.text

    def void(self, invoice: dict[str, Any]) -> None:
        path = f"/billing/invoices/{invoice['invoiceId']}/void"
        response = self.api.request("POST", path, auth=self.finance)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Void"

    def receivables(self, as_of: date | None = None, auth: dict[str, str] | None = None) -> Any:
        query = {} if as_of is None else {"asOf": as_of.isoformat()}
        return self.api.request(
            "GET", "/reports/receivables", params=query, auth=auth or self.finance
        )

    def revenue(self, start: str, end: str, auth: dict[str, str] | None = None) -> Any:
        return self.api.request(
            "GET", "/reports/revenue", params={"from": start, "to": end}, auth=auth or self.finance
        )


def previous_month(day: date) -> date:
    return day.replace(day=1) - timedelta(days=1)


class Ledger:
    """A tenant's books: two customers, USD and JPY, a partial payment, a full payment, a void
    and a draft. Due dates are set relative to `base` (the day after the issue date) so that,
    as of `base + 200`, every aging bucket has a known balance."""

    def __init__(self, api: Api, world: Tenancy) -> None:
        books = self.books = Books(api, world)
        globex = world.customer  # named "Globex"
        self.acme = acme = books.customer("Acme Corp")
        self.globex = globex
        probe = books.invoice(globex, "USD", [(1, "1000.10"), (2, "0.05")])
        self.today = date.fromisoformat(probe["issueDate"])  # the tenant's today
        books.void(probe)  # issued and voided: it counts for nothing
        base = self.today + timedelta(days=1)
        self.as_of = base + timedelta(days=200)

        def due(days_late: int) -> date:
            return self.as_of - timedelta(days=days_late)

        a = books.invoice(globex, "USD", [(1, "1000.10"), (2, "0.05")], due=due(60))
        assert a["totalAmount"] == "1000.20"
        self.paid_earlier = previous_month(self.today).replace(day=15)
        books.pay(a, "400.15", self.paid_earlier)  # partial: 600.05 stays open
        books.invoice(globex, "USD", [(1, "12.34")], due=due(0))
        b = books.invoice(globex, "JPY", [(3, 40000)], due=due(101))
        assert b["totalAmount"] == "120000"
        c = books.invoice(acme, "USD", [(1, "250")], due=due(50))
        books.void(c)
        d = books.invoice(acme, "USD", [(1, "99.99")], due=due(50))
        books.pay(d, "99.99", self.today)  # paid in full: no longer open
        books.invoice(acme, "USD", [(1, "5.55")], due=due(1))
        books.invoice(acme, "USD", [(1, "10.01")], due=due(90))
        books.invoice(acme, "USD", [(1, "777.77")], due=due(120), issue=False)  # a draft
        books.void(books.invoice(acme, "USD", [(1, "8.88")], issue=False))  # a voided draft


@pytest.fixture
def ledger(reports_api: Api, world: Tenancy) -> Ledger:
    return Ledger(reports_api, world)


def snapshot(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: services.db.query(f"SELECT * FROM {table} ORDER BY {order}")
        for table, order in REPORT_TABLES.items()
    }


# -- receivables ----------------------------------------------------------------------------


def test_receivables_age_open_balances_per_customer_and_currency(ledger: Ledger) -> None:
    response = ledger.books.receivables(ledger.as_of)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "asOf": ledger.as_of.isoformat(),
        "rows": [
            {
                "customerId": ledger.acme,
                "customerName": "Acme Corp",
                "currency": "USD",
                "current": "0.00",
                "days1to30": "5.55",
                "days31to60": "0.00",
                "days61to90": "10.01",
                "over90": "0.00",
                "total": "15.56",
            },
            {
                "customerId": ledger.globex,
                "customerName": "Globex",
                "currency": "JPY",
                "current": "0",
                "days1to30": "0",
                "days31to60": "0",
                "days61to90": "0",
                "over90": "120000",
                "total": "120000",
            },
            {
                "customerId": ledger.globex,
                "customerName": "Globex",
                "currency": "USD",
                "current": "12.34",
                "days1to30": "0.00",
                "days31to60": "600.05",
                "days61to90": "0.00",
                "over90": "0.00",
                "total": "612.39",
            },
        ],
    }


def test_receivables_as_of_the_issue_date_are_all_current(ledger: Ledger) -> None:
    rows = ledger.books.receivables(ledger.today).json()["rows"]
    assert [(r["customerName"], r["currency"], r["current"], r["total"]) for r in rows] == [
        ("Acme Corp", "USD", "15.56", "15.56"),
        ("Globex", "JPY", "120000", "120000"),
        ("Globex", "USD", "612.39", "612.39"),
    ]
    late = [r for r in rows if r["current"] != r["total"]]
    assert late == []


def test_receivables_default_to_today(ledger: Ledger) -> None:
    before = datetime.now(UTC).date()
    body = ledger.books.receivables().json()
    after = datetime.now(UTC).date()
    assert body["asOf"] in {before.isoformat(), after.isoformat()}
    assert [r["total"] for r in body["rows"]] == ["15.56", "120000", "612.39"]


def test_the_open_balances_are_the_invoices_still_owed(ledger: Ledger) -> None:
    """The report's totals equal the balances the billing API shows for open invoices."""
    response = ledger.books.api.request(
        "GET", "/billing/invoices", params={"limit": 200}, auth=ledger.books.finance
    )
    owed: dict[tuple[str, str], Decimal] = {}
    for invoice in response.json()["invoices"]:
        if invoice["status"] in ("Issued", "PartiallyPaid"):
            key = (invoice["customerId"], invoice["currency"])
            owed[key] = owed.get(key, Decimal(0)) + Decimal(invoice["balance"])
    rows = ledger.books.receivables(ledger.as_of).json()["rows"]
    assert {(r["customerId"], r["currency"]): Decimal(r["total"]) for r in rows} == owed
    assert len(owed) == 3


# -- revenue --------------------------------------------------------------------------------


def test_revenue_by_month_and_currency(ledger: Ledger) -> None:
    this_month = ledger.today.isoformat()[:7]
    last_month = ledger.paid_earlier.isoformat()[:7]

    response = ledger.books.revenue(last_month, this_month)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "rows": [
            {"month": last_month, "currency": "USD", "invoiced": "0.00", "collected": "400.15"},
            {"month": this_month, "currency": "JPY", "invoiced": "120000", "collected": "0"},
            # 1000.20 + 12.34 + 99.99 + 5.55 + 10.01; the two voided invoices count for nothing
            {"month": this_month, "currency": "USD", "invoiced": "1128.09", "collected": "99.99"},
        ]
    }
    only_last = ledger.books.revenue(last_month, last_month).json()["rows"]
    assert [r["month"] for r in only_last] == [last_month]
    later = (ledger.today + timedelta(days=40)).isoformat()[:7]
    assert ledger.books.revenue(later, later).json() == {"rows": []}


def test_a_void_takes_the_invoice_out_of_its_issue_month_and_payments_count_by_receipt(
    reports_api: Api, world: Tenancy
) -> None:
    """Issue, void and payment dates in different months (made through the domain, since the
    API issues "today")."""
    services = reports_api.services
    tenant_id = UUID(world.tenant)
    meta = EventMeta(actor="user:setup", request_id="setup")
    at = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

    def issued(total: str, issue_date: date) -> Invoice:
        invoice = Invoice.draft(
            invoice_id=uuid4(),
            tenant_id=tenant_id,
            customer_id=UUID(world.customer),
            engagement_id=None,
            milestone_id=None,
            currency="USD",
            lines=[("Work", Decimal(1), Decimal(total))],
            due_date=None,
            at=at,
        )
        invoice.issue(
            number=f"T-{uuid4().hex[:6]}", issue_date=issue_date, payment_terms_days=30, at=at
        )
        return invoice

    january = issued("300.00", date(2025, 1, 31))
    nothing = issued("0", date(2025, 5, 20))  # a zero invoice: owed nothing, invoiced nothing
    february = issued("45.50", date(2025, 2, 1))
    february.receive_payment(
        payment_id=uuid4(),
        amount=Decimal("45.50"),
        method="card",
        received_on=date(2025, 4, 2),
        reference=None,
        at=at,
    )
    services.log.record(january, february, nothing, meta=meta)
    services.projections.catch_up()
    books = Books(reports_api, world)
    assert books.revenue("2025-01", "2025-12").json()["rows"] == [
        {"month": "2025-01", "currency": "USD", "invoiced": "300.00", "collected": "0.00"},
        {"month": "2025-02", "currency": "USD", "invoiced": "45.50", "collected": "0.00"},
        {"month": "2025-04", "currency": "USD", "invoiced": "0.00", "collected": "45.50"},
    ]
    [open_before] = books.receivables(date(2025, 12, 31)).json()["rows"]
    assert (open_before["over90"], open_before["total"]) == ("300.00", "300.00")

    january.void(reason="wrong customer", at=datetime(2025, 3, 5, tzinfo=UTC))
    services.log.record(january, meta=meta)
    services.projections.catch_up()

    assert books.revenue("2025-01", "2025-12").json()["rows"] == [
        {"month": "2025-02", "currency": "USD", "invoiced": "45.50", "collected": "0.00"},
        {"month": "2025-04", "currency": "USD", "invoiced": "0.00", "collected": "45.50"},
    ]
    assert books.receivables(date(2025, 12, 31)).json()["rows"] == []


# -- who may read, and what -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["finance", "customer-admin", "auditor", "project-manager"])
def test_roles_with_invoice_read_see_the_reports(ledger: Ledger, world: Tenancy, role: str) -> None:
    auth = ledger.books.api.as_(role, tenant=world.tenant)
    receivables = ledger.books.receivables(ledger.as_of, auth=auth)
    assert receivables.status_code == 200, receivables.text
    assert len(receivables.json()["rows"]) == 3
    month = ledger.today.isoformat()[:7]
    revenue = ledger.books.revenue(month, month, auth=auth)
    assert revenue.status_code == 200, revenue.text
    assert len(revenue.json()["rows"]) == 2


@pytest.mark.parametrize("role", ["member", "squad-lead"])
def test_roles_without_invoice_read_get_403(ledger: Ledger, world: Tenancy, role: str) -> None:
    auth = ledger.books.api.as_(role, tenant=world.tenant)
    problem(ledger.books.receivables(ledger.as_of, auth=auth), 403)
    problem(ledger.books.revenue("2026-01", "2026-12", auth=auth), 403)
    problem(ledger.books.revenue("bad", "worse", auth=auth), 403)  # authorised before validated


def test_no_credentials_401(ledger: Ledger) -> None:
    response = ledger.books.api.request("GET", "/reports/receivables")
    problem(response, 401)


def test_another_tenant_sees_nothing_and_its_books_stay_its_own(
    ledger: Ledger, world: Tenancy
) -> None:
    api = ledger.books.api
    other = Tenancy(api)
    month = ledger.today.isoformat()[:7]
    auth = api.as_("finance", tenant=other.tenant)

    receivables = ledger.books.receivables(ledger.as_of, auth=auth)
    assert receivables.status_code == 200, receivables.text
    assert receivables.json() == {"asOf": ledger.as_of.isoformat(), "rows": []}
    assert ledger.books.revenue("2000-01", "2009-12", auth=auth).json() == {"rows": []}
    assert ledger.books.revenue(month, month, auth=auth).json() == {"rows": []}

    their_books = Books(api, other)
    their_books.invoice(other.customer, "USD", [(1, "1.00")])
    theirs = their_books.receivables(ledger.as_of).json()["rows"]
    assert [(r["customerId"], r["total"]) for r in theirs] == [(other.customer, "1.00")]
    ours = ledger.books.receivables(ledger.as_of).json()["rows"]
    assert [r["total"] for r in ours] == ["15.56", "120000", "612.39"]
    # ?tenantId= may only repeat the caller's own tenant.
    problem(
        api.request("GET", "/reports/receivables", params={"tenantId": world.tenant}, auth=auth),
        403,
    )


def test_a_platform_admin_reads_a_tenants_reports_by_naming_it(ledger: Ledger) -> None:
    admin = ledger.books.api.as_("platform-admin")
    problem(ledger.books.receivables(ledger.as_of, auth=admin), 403)
    response = ledger.books.api.request(
        "GET",
        "/reports/receivables",
        params={"asOf": ledger.as_of.isoformat(), "tenantId": ledger.books.world.tenant},
        auth=admin,
    )
    assert response.status_code == 200, response.text
    assert [r["total"] for r in response.json()["rows"]] == ["15.56", "120000", "612.39"]


# -- input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2026-12"}, "from"),
        ({"from": "2026-01"}, "to"),
        ({"from": "2026-13", "to": "2026-12"}, "from"),
        ({"from": "2026-1", "to": "2026-12"}, "from"),
        ({"from": "2026-01", "to": "2026-12-01"}, "to"),
        ({"from": "2026-02", "to": "2026-01"}, "to"),
        ({"from": "2016-01", "to": "2026-02"}, "to"),
    ],
)
def test_revenue_months_must_be_a_valid_range(
    reports_api: Api, world: Tenancy, params: dict[str, str], field: str
) -> None:
    auth = reports_api.as_("finance", tenant=world.tenant)
    response = reports_api.request("GET", "/reports/revenue", params=params, auth=auth)
    problem(response, 400, field=field)


def test_revenue_accepts_exactly_ten_years(reports_api: Api, world: Tenancy) -> None:
    auth = reports_api.as_("finance", tenant=world.tenant)
    params = {"from": "2016-01", "to": "2026-01"}
    response = reports_api.request("GET", "/reports/revenue", params=params, auth=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"rows": []}


@pytest.mark.parametrize("as_of", ["2026-02-30", "tomorrow", "2026-1-5", "20260105"])
def test_as_of_must_be_a_date(reports_api: Api, world: Tenancy, as_of: str) -> None:
    auth = reports_api.as_("finance", tenant=world.tenant)
    response = reports_api.request("GET", "/reports/receivables", params={"asOf": as_of}, auth=auth)
    problem(response, 400, field="asOf")


# -- rebuilding -----------------------------------------------------------------------------


def test_replay_rebuilds_exactly_the_live_report_tables(ledger: Ledger) -> None:
    services = ledger.books.api.services
    live = snapshot(services)
    assert len(live["rm_report_receivables"]) == 5  # A, 12.34, JPY, 5.55, 10.01
    assert len(live["rm_report_drafts"]) == 1
    assert len(live["rm_report_revenue"]) == 3
    report = ledger.books.receivables(ledger.as_of).json()

    reached = services.projections.replay()

    assert reached == services.log.head()
    assert snapshot(services) == live
    assert ledger.books.receivables(ledger.as_of).json() == report
