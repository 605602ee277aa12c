"""Billing over HTTP (API.md "Billing", "Conventions", "Authentication and authorization";
docs/api-notes.md "Billing"): invoices with exact totals, gap-free numbers from the tenant's
settings, payments that never exceed the balance, the role matrix, tenant isolation and the
`?tenantId=` rule. Both stores."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.api.problems import problem
from tests.api.world import Tenancy

LINES = [
    # numbers and decimal strings are both accepted; 3 x 0.125 = 0.375 -> 0.38 (half-even)
    {"description": "Design", "quantity": 3, "unitPrice": "0.125"},
    {"description": "Build", "quantity": "1.5", "unitPrice": 1000.10},
]


def finance(world: Tenancy) -> dict[str, str]:
    return world.api.as_("finance", tenant=world.tenant, sub="fin")


def create(world: Tenancy, auth: dict[str, str] | None = None, **body: Any) -> Any:
    sent = {"customerId": world.customer, "currency": "USD", "lines": LINES, **body}
    return world.api.request("POST", "/billing/invoices", json=sent, auth=auth or finance(world))


def draft(world: Tenancy, price: str = "100.00", **body: Any) -> str:
    lines = [{"description": "Work", "quantity": 1, "unitPrice": price}]
    response = create(world, lines=lines, **body)
    assert response.status_code == 201, response.text
    return str(response.json()["invoiceId"])


def issue(world: Tenancy, invoice_id: str, **kw: Any) -> Any:
    return world.api.request(
        "POST", f"/billing/invoices/{invoice_id}/issue", auth=kw.pop("auth", finance(world)), **kw
    )


def issued(world: Tenancy, price: str = "100.00") -> str:
    invoice_id = draft(world, price)
    response = issue(world, invoice_id)
    assert response.status_code == 200, response.text
    return invoice_id


def pay(world: Tenancy, invoice_id: str, amount: Any, auth: dict[str, str] | None = None) -> Any:
    body = {
        "invoiceId": invoice_id,
        "amount": amount,
        "method": "bank-transfer",
        "receivedOn": "2026-03-02",
        "reference": "BANK-REF-1",
    }
    return world.api.request("POST", "/billing/payments", json=body, auth=auth or finance(world))


def get(world: Tenancy, path: str, auth: dict[str, str] | None = None) -> Any:
    return world.api.request("GET", path, auth=auth or finance(world))


def today_in(zone: str, before: datetime) -> set[date]:
    """The dates it may have been in `zone` during a request that started at `before`."""
    after = datetime.now(UTC)
    return {before.astimezone(ZoneInfo(zone)).date(), after.astimezone(ZoneInfo(zone)).date()}


# -- invoices ---------------------------------------------------------------------------------


def test_create_invoice_computes_the_total_with_exact_money(world: Tenancy) -> None:
    response = create(world, dueDate="2026-12-31")
    assert response.status_code == 201, response.text
    body = response.json()
    invoice_id = body["invoiceId"]
    assert uuid.UUID(invoice_id)
    assert response.headers["location"] == f"/api/v1/billing/invoices/{invoice_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) > 0
    assert body["status"] == "Draft"
    assert body["number"] is None
    assert body["customerId"] == world.customer
    assert body["currency"] == "USD"
    assert [line["amount"] for line in body["lines"]] == ["0.38", "1500.15"]
    # (the client sends the float 1000.10 as `1000.1`: the same number)
    assert [Decimal(line["unitPrice"]) for line in body["lines"]] == [
        Decimal("0.125"),
        Decimal("1000.10"),
    ]
    assert body["totalAmount"] == "1500.53"
    assert body["paidAmount"] == "0.00"
    assert body["balance"] == "1500.53"
    assert body["issueDate"] is None
    assert body["dueDate"] == "2026-12-31"
    fetched = get(world, f"/billing/invoices/{invoice_id}")
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'

    # Other minor units: JPY has none (1.5 -> 2, half-even), BHD has three (1.0005 -> 1.000).
    yen = create(
        world, currency="JPY", lines=[{"description": "a", "quantity": 3, "unitPrice": 0.5}]
    )
    assert yen.status_code == 201, yen.text
    assert yen.json()["totalAmount"] == "2"
    dinar = create(
        world,
        currency="bhd",
        lines=[
            {"description": "a", "quantity": 1, "unitPrice": "1.0005"},
            {"description": "b", "quantity": 2, "unitPrice": "0.0015"},
        ],
    )
    assert dinar.status_code == 201, dinar.text
    assert dinar.json()["currency"] == "BHD"
    assert [line["amount"] for line in dinar.json()["lines"]] == ["1.000", "0.003"]
    assert dinar.json()["totalAmount"] == "1.003"

    listed = get(world, "/billing/invoices").json()
    assert listed["totalCount"] == 3
    assert listed["invoices"][0]["invoiceId"] == invoice_id
    assert listed["nextCursor"] is None


def test_invalid_invoices_are_400_naming_the_field(world: Tenancy) -> None:
    other_customer = world.post("/customers", {"name": "Initech"}, auth=world.admin)
    assert other_customer.status_code == 201, other_customer.text
    foreign_engagement = world.engagement(customerId=other_customer.json()["customerId"])
    one = {"description": "Work", "quantity": 1, "unitPrice": "10.00"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"lines": []}, "lines"),
        ({"lines": [{**one, "quantity": -1}]}, "lines[0].quantity"),
        ({"lines": [one, {**one, "quantity": "0"}]}, "lines[1].quantity"),
        ({"currency": "ZZZ"}, "currency"),
        ({"lines": [{**one, "unitPrice": "0.0000001"}]}, "lines[0].unitPrice"),
        ({"lines": [{**one, "unitPrice": 1.1234567}]}, "lines[0].unitPrice"),
        ({"lines": [{**one, "unitPrice": "-1"}]}, "lines[0].unitPrice"),
        ({"customerId": str(uuid.uuid4())}, "customerId"),
        ({"engagementId": foreign_engagement["engagementId"]}, "engagementId"),
        ({"engagementId": str(uuid.uuid4())}, "engagementId"),
        ({"colour": "red"}, "colour"),
    ]
    for body, field in cases:
        problem(create(world, **body), 400, field=field)
    # Nothing was created by any of them.
    assert get(world, "/billing/invoices").json()["totalCount"] == 0
    # The engagement of the invoice's own customer is fine.
    own = world.engagement()["engagementId"]
    response = create(world, engagementId=own)
    assert response.status_code == 201, response.text
    assert response.json()["engagementId"] == own


def test_issue_takes_the_next_number_and_dates_the_invoice(world: Tenancy) -> None:
    terms = get(world, f"/tenants/{world.tenant}/settings").json()["paymentTermsDays"]
    first, second = draft(world), draft(world)
    started = datetime.now(UTC)
    response = issue(world, second)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "Issued"
    issued_on = date.fromisoformat(body["issueDate"])
    assert issued_on in today_in("UTC", started)
    assert body["number"] == f"INV-{issued_on.year}-000001"
    assert date.fromisoformat(body["dueDate"]) == issued_on + timedelta(days=terms)
    assert response.headers["etag"] == '"2"'
    assert get(world, f"/billing/invoices/{second}").json() == body

    again = issue(world, first)
    assert again.status_code == 200, again.text
    assert again.json()["number"] == f"INV-{issued_on.year}-000002"

    twice = problem(issue(world, second), 409, code="illegal-transition")
    assert twice["transition"] == {"action": "issue", "from": "Issued"}
    assert get(world, f"/billing/invoices/{second}").json()["number"] == body["number"]
    # A failed issue consumed no number.
    third = issue(world, draft(world))
    assert third.json()["number"] == f"INV-{issued_on.year}-000003"


def test_issue_follows_the_tenants_settings(world: Tenancy) -> None:
    # A zone whose date is not UTC's right now (UTC+14 in UTC's afternoon, UTC-11 in its
    # morning), so an issue date taken in UTC instead of the tenant's zone is caught.
    zone = "Pacific/Kiritimati" if datetime.now(UTC).hour >= 12 else "Pacific/Pago_Pago"
    settings = {
        "currency": "USD",
        "timezone": zone,
        "paymentTermsDays": 14,
        "invoicePrefix": "ACME",
    }
    changed = world.api.request(
        "PUT", f"/tenants/{world.tenant}/settings", json=settings, auth=world.admin
    )
    assert changed.status_code == 200, changed.text
    invoice_id = draft(world)
    far = draft(world, dueDate="2099-01-31")
    started = datetime.now(UTC)
    response = issue(world, invoice_id)
    assert response.status_code == 200, response.text
    body = response.json()
    issued_on = date.fromisoformat(body["issueDate"])
    assert issued_on in today_in(zone, started)
    assert body["number"] == f"ACME-{issued_on.year}-000001"
    assert body["dueDate"] == (issued_on + timedelta(days=14)).isoformat()
    # A draft's own due date after the issue date is kept.
    kept = issue(world, far).json()
    assert kept["number"] == f"ACME-{issued_on.year}-000002"
    assert kept["dueDate"] == "2099-01-31"


def test_issue_honours_if_match(world: Tenancy) -> None:
    invoice_id = draft(world)
    problem(issue(world, invoice_id, headers={"If-Match": '"7"'}), 412)
    assert get(world, f"/billing/invoices/{invoice_id}").json()["status"] == "Draft"
    response = issue(world, invoice_id, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["number"].endswith("-000001")  # the refused issue took no number
    assert response.headers["etag"] == '"2"'
    # Now stale: version 2, and issuing again is refused by the version before the state.
    problem(issue(world, invoice_id, headers={"If-Match": '"1"'}), 412)


def test_void(world: Tenancy) -> None:
    draft_id = draft(world)
    voided = world.api.request(
        "POST",
        f"/billing/invoices/{draft_id}/void",
        json={"reason": "raised in error"},
        auth=finance(world),
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "Void"
    problem(issue(world, draft_id), 409, code="illegal-transition")
    invoice_id = issued(world)
    response = world.api.request(
        "POST", f"/billing/invoices/{invoice_id}/void", auth=finance(world)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "Void"
    assert response.json()["number"].endswith("-000001")  # a voided invoice keeps its number
    problem(
        world.api.request("POST", f"/billing/invoices/{invoice_id}/void", auth=finance(world)),
        409,
        code="illegal-transition",
    )
    problem(pay(world, invoice_id, "1.00"), 409, code="illegal-transition")


# -- payments ---------------------------------------------------------------------------------


def test_payments_partial_then_full_and_never_more_than_the_balance(world: Tenancy) -> None:
    invoice_id = issued(world, "100.00")
    number = get(world, f"/billing/invoices/{invoice_id}").json()["number"]
    first = pay(world, invoice_id, 40)
    assert first.status_code == 201, first.text
    payment = first.json()
    assert payment["invoiceId"] == invoice_id
    assert payment["invoiceNumber"] == number
    assert payment["customerId"] == world.customer
    assert (payment["amount"], payment["currency"]) == ("40.00", "USD")
    assert (payment["method"], payment["receivedOn"]) == ("bank-transfer", "2026-03-02")
    assert payment["reference"] == "BANK-REF-1"
    assert first.headers["location"] == f"/api/v1/billing/payments/{payment['paymentId']}"
    state = get(world, f"/billing/invoices/{invoice_id}").json()
    assert (state["status"], state["paidAmount"], state["balance"]) == (
        "PartiallyPaid",
        "40.00",
        "60.00",
    )

    over = problem(pay(world, invoice_id, "60.01"), 409, code="overpayment")
    assert "60.00" in over["detail"]
    for amount, field in ((0, "amount"), ("-5", "amount"), ("0.004", "amount"), ("x", "amount")):
        problem(pay(world, invoice_id, amount), 400, field=field)
    bad_method = {
        "invoiceId": invoice_id,
        "amount": "1.00",
        "method": "barter",
        "receivedOn": "2026-03-02",
    }
    problem(
        world.api.request("POST", "/billing/payments", json=bad_method, auth=finance(world)),
        400,
        field="method",
    )
    problem(pay(world, str(uuid.uuid4()), "1.00"), 400, field="invoiceId")
    problem(pay(world, draft(world), "1.00"), 409, code="illegal-transition")

    rest = pay(world, invoice_id, "60")
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == "60.00"
    state = get(world, f"/billing/invoices/{invoice_id}").json()
    assert (state["status"], state["paidAmount"], state["balance"]) == ("Paid", "100.00", "0.00")
    problem(pay(world, invoice_id, "0.01"), 409)
    problem(
        world.api.request("POST", f"/billing/invoices/{invoice_id}/void", auth=finance(world)),
        409,
        code="illegal-transition",
    )

    listed = get(world, "/billing/payments").json()
    assert listed["totalCount"] == 2
    assert [p["amount"] for p in listed["payments"]] == ["40.00", "60.00"]
    assert listed["payments"][0] == payment
    assert get(world, f"/billing/payments/{payment['paymentId']}").json() == payment
    other = issued(world, "5.00")
    assert pay(world, other, "5").status_code == 201
    only = get(world, f"/billing/payments?invoiceId={invoice_id}").json()
    assert [p["invoiceId"] for p in only["payments"]] == [invoice_id, invoice_id]
    assert get(world, "/billing/payments").json()["totalCount"] == 3


def test_void_after_a_partial_payment_is_409(world: Tenancy) -> None:
    invoice_id = issued(world, "100.00")
    assert pay(world, invoice_id, "0.01").status_code == 201
    problem(
        world.api.request("POST", f"/billing/invoices/{invoice_id}/void", auth=finance(world)),
        409,
        code="illegal-transition",
    )
    assert get(world, f"/billing/invoices/{invoice_id}").json()["status"] == "PartiallyPaid"


# -- who may do what --------------------------------------------------------------------------


def writes(world: Tenancy, invoice_id: str, auth: dict[str, str]) -> dict[str, Any]:
    """Every billing write, as `auth`."""
    api = world.api
    return {
        "create": create(world, auth=auth),
        "issue": issue(world, invoice_id, auth=auth),
        "void": api.request("POST", f"/billing/invoices/{invoice_id}/void", auth=auth),
        "pay": pay(world, invoice_id, "1.00", auth=auth),
    }


def reads(world: Tenancy, invoice_id: str, auth: dict[str, str]) -> dict[str, Any]:
    return {
        "list": get(world, "/billing/invoices", auth=auth),
        "one": get(world, f"/billing/invoices/{invoice_id}", auth=auth),
        "payments": get(world, "/billing/payments", auth=auth),
    }


def test_role_matrix(world: Tenancy) -> None:
    api = world.api
    invoice_id = draft(world)
    member = api.as_("member", tenant=world.tenant)
    for name, response in {
        **writes(world, invoice_id, member),
        **reads(world, invoice_id, member),
    }.items():
        assert response.status_code == 403, (name, response.text)
        problem(response, 403)

    auditor = api.as_("auditor", tenant=world.tenant)
    for name, response in reads(world, invoice_id, auditor).items():
        assert response.status_code == 200, (name, response.text)
    for name, response in writes(world, invoice_id, auditor).items():
        assert response.status_code == 403, (name, response.text)

    pm = world.pm
    seen = reads(world, invoice_id, pm)
    assert seen["list"].status_code == 200
    assert seen["one"].status_code == 200
    assert seen["payments"].status_code == 403  # payments are finance's
    for name, response in writes(world, invoice_id, pm).items():
        assert response.status_code == 403, (name, response.text)
    # Nobody above changed anything.
    state = get(world, f"/billing/invoices/{invoice_id}").json()
    assert state["status"] == "Draft"
    assert get(world, "/billing/invoices").json()["totalCount"] == 1

    # finance does all of it.
    fin = finance(world)
    assert create(world, auth=fin).status_code == 201
    assert issue(world, invoice_id, auth=fin).status_code == 200
    assert pay(world, invoice_id, "1.00", auth=fin).status_code == 201
    assert all(r.status_code == 200 for r in reads(world, invoice_id, fin).values())


def test_another_tenants_invoices_are_404(world: Tenancy) -> None:
    api = world.api
    invoice_id = draft(world)
    stranger = api.as_("finance", tenant=api.provision()["tenantId"])
    problem(get(world, f"/billing/invoices/{invoice_id}", auth=stranger), 404)
    problem(issue(world, invoice_id, auth=stranger), 404)
    problem(issue(world, invoice_id, auth=stranger, headers={"If-Match": '"9"'}), 404)
    problem(api.request("POST", f"/billing/invoices/{invoice_id}/void", auth=stranger), 404)
    problem(get(world, f"/billing/invoices/{uuid.uuid4()}"), 404)
    assert get(world, "/billing/invoices", auth=stranger).json()["totalCount"] == 0
    # Their customer is not ours either, and neither is our invoice theirs to pay.
    problem(create(world, auth=stranger), 400, field="customerId")
    problem(pay(world, issued(world), "1.00", auth=stranger), 400, field="invoiceId")
    assert get(world, f"/billing/invoices/{invoice_id}").json()["status"] == "Draft"


def test_the_tenant_id_query_parameter(world: Tenancy) -> None:
    api = world.api
    invoice_id = draft(world)
    other = api.provision()["tenantId"]
    fin = finance(world)

    own = get(world, f"/billing/invoices?tenantId={world.tenant}", auth=fin)
    assert own.status_code == 200, own.text
    assert [i["invoiceId"] for i in own.json()["invoices"]] == [invoice_id]
    problem(get(world, f"/billing/invoices?tenantId={other}", auth=fin), 403)
    problem(get(world, f"/billing/invoices/{invoice_id}?tenantId={other}", auth=fin), 403)
    problem(
        api.request(
            "POST",
            f"/billing/invoices?tenantId={other}",
            json={"customerId": world.customer, "currency": "USD", "lines": LINES},
            auth=fin,
        ),
        403,
    )

    platform = api.as_("platform-admin")
    listed = get(world, f"/billing/invoices?tenantId={world.tenant}", auth=platform)
    assert listed.status_code == 200, listed.text
    assert [i["invoiceId"] for i in listed.json()["invoices"]] == [invoice_id]
    assert (
        get(world, f"/billing/invoices?tenantId={other}", auth=platform).json()["totalCount"] == 0
    )
    problem(get(world, "/billing/invoices", auth=platform), 403)  # which tenant?


def test_list_filters_by_status_and_customer(world: Tenancy) -> None:
    draft_id = draft(world)
    issued_id = issued(world)
    for status, expected in (("Draft", draft_id), ("Issued", issued_id)):
        listed = get(world, f"/billing/invoices?status={status}").json()
        assert [i["invoiceId"] for i in listed["invoices"]] == [expected]
    mine = get(world, f"/billing/invoices?customerId={world.customer}").json()
    assert mine["totalCount"] == 2
    assert get(world, f"/billing/invoices?customerId={uuid.uuid4()}").json()["totalCount"] == 0
    problem(get(world, "/billing/invoices?status=Lost"), 400, field="status")


def test_a_completed_milestone_is_billed_and_the_writer_sees_it(world: Tenancy) -> None:
    engagement = world.engagement(squadId=world.squad())["engagementId"]
    added = world.post(
        f"/engagements/{engagement}/milestones",
        {"name": "Go-live", "dueDate": "2026-05-01", "amount": "2500.005"},
    )
    assert added.status_code == 201, added.text
    milestone = added.json()["milestoneId"]
    unpriced = world.post(
        f"/engagements/{engagement}/milestones", {"name": "Kick-off", "dueDate": "2026-01-15"}
    ).json()["milestoneId"]
    assert world.post(f"/engagements/{engagement}/activate").status_code == 200
    for each in (milestone, unpriced):
        done = world.post(f"/engagements/{engagement}/milestones/{each}/complete")
        assert done.status_code == 200, done.text
    # No sleep: the write that completed the milestone settled the policy too.
    listed = get(world, f"/billing/invoices?customerId={world.customer}").json()
    assert listed["totalCount"] == 1, listed
    (invoice,) = listed["invoices"]
    assert invoice["milestoneId"] == milestone
    assert invoice["engagementId"] == engagement
    assert invoice["status"] == "Draft"
    assert invoice["currency"] == "USD"
    assert invoice["totalAmount"] == "2500.00"
    assert invoice["lines"][0]["description"] == "Milestone: Go-live"
    # The invoice is an ordinary draft: finance can issue it.
    assert issue(world, invoice["invoiceId"]).json()["status"] == "Issued"


def test_whole_quantities_are_plain_decimal_strings(world: Tenancy) -> None:
    lines = [
        {"description": "Days", "quantity": 10, "unitPrice": "850.00"},
        {"description": "Licences", "quantity": "100", "unitPrice": "1.5"},
        {"description": "Hours", "quantity": "2.5", "unitPrice": "90"},
    ]
    response = create(world, lines=lines)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["totalAmount"] == "8875.00"
    assert [line["quantity"] for line in body["lines"]] == ["10", "100", "2.5"]
