"""GET /api/v1/billing/invoices/{id}/download (API.md "Billing"): the invoice as a PDF
attachment named after its number, for every role that may read invoices, tenant-scoped. Both
stores.

The app is wired in this module (the renderer, the use case and the route) until
entrypoints/container.py and entrypoints/http/app.py know about invoice downloads.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from adapters.pdf import FpdfInvoiceRenderer
from tests.api.problems import problem
from tests.api.world import Tenancy
from tests.conftest import Api
from tests.unit.test_invoice_pdf import content_text, flat

LINES = [
    {
        "description": "Onboarding portal, sprint 4 (Zoë Łukasiewicz)",
        "quantity": 10,
        "unitPrice": "950",
    },
    {"description": "Hosting", "quantity": "1.5", "unitPrice": "0.125"},  # 0.1875 -> 0.19
]


@pytest.fixture
def client(world: Tenancy) -> Api:
    """The world's API client (the shared app, invoice downloads included)."""
    return world.api


# -- helpers ------------------------------------------------------------------------------


def finance(world: Tenancy) -> dict[str, str]:
    return world.api.as_("finance", tenant=world.tenant, sub="fin")


def draft(client: Api, world: Tenancy) -> dict[str, Any]:
    body = {"customerId": world.customer, "currency": "EUR", "lines": LINES}
    response = client.request("POST", "/billing/invoices", json=body, auth=finance(world))
    assert response.status_code == 201, response.text
    return dict(response.json())


def issued(client: Api, world: Tenancy) -> dict[str, Any]:
    invoice_id = draft(client, world)["invoiceId"]
    response = client.request("POST", f"/billing/invoices/{invoice_id}/issue", auth=finance(world))
    assert response.status_code == 200, response.text
    return dict(response.json())


def download(client: Api, invoice_id: str, auth: dict[str, str], **kw: Any) -> Any:
    return client.request("GET", f"/billing/invoices/{invoice_id}/download", auth=auth, **kw)


# -- tests --------------------------------------------------------------------------------


def test_an_issued_invoice_downloads_as_a_pdf_named_after_its_number(
    client: Api, world: Tenancy
) -> None:
    invoice = issued(client, world)
    number = invoice["number"]
    assert number.startswith("INV-")
    assert number.endswith("-000001")

    response = download(client, invoice["invoiceId"], finance(world))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'attachment; filename="{number}.pdf"'
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-request-id"]
    assert response.content.startswith(b"%PDF-")
    text = flat(content_text(response.content))
    assert number in text
    assert "Globex" in text  # world's customer
    assert ("Zoë Łukasiewicz" if FpdfInvoiceRenderer().unicode else "Zoë Lukasiewicz") in text
    assert "9,500.00" in text  # 10 x 950
    assert "0.19" in text  # 1.5 x 0.125, half-even
    assert "EUR 9,500.19" in text  # total and balance due


def test_a_draft_downloads_named_after_its_id(client: Api, world: Tenancy) -> None:
    invoice = draft(client, world)
    response = download(client, invoice["invoiceId"], finance(world))
    assert response.status_code == 200, response.text
    short = uuid.UUID(invoice["invoiceId"]).hex[:8]
    assert response.headers["content-disposition"] == f'attachment; filename="draft-{short}.pdf"'
    assert "Draft: not a request for payment" in flat(content_text(response.content))


def test_the_pdf_shows_payments_made(client: Api, world: Tenancy) -> None:
    invoice = issued(client, world)
    body = {
        "invoiceId": invoice["invoiceId"],
        "amount": "500.00",
        "method": "bank-transfer",
        "receivedOn": "2026-03-02",
    }
    paid = client.request("POST", "/billing/payments", json=body, auth=finance(world))
    assert paid.status_code == 201, paid.text
    text = flat(content_text(download(client, invoice["invoiceId"], finance(world)).content))
    assert "EUR 500.00" in text
    assert "EUR 9,000.19" in text  # the balance due
    assert "PARTIALLY PAID" in text


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("finance", 200),
        ("auditor", 200),
        ("customer-admin", 200),
        ("project-manager", 200),
        ("member", 403),
        ("squad-lead", 403),
    ],
)
def test_who_may_download(client: Api, world: Tenancy, role: str, status: int) -> None:
    invoice_id = issued(client, world)["invoiceId"]
    response = download(client, invoice_id, world.api.as_(role, tenant=world.tenant))
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.content.startswith(b"%PDF-")
    else:
        problem(response, 403, "forbidden")


def test_another_tenants_invoice_is_not_found(client: Api, world: Tenancy) -> None:
    invoice_id = issued(client, world)["invoiceId"]
    other = client.provision()["tenantId"]
    for role in ("finance", "customer-admin", "auditor"):
        problem(download(client, invoice_id, client.as_(role, tenant=other)), 404, "not-found")


def test_an_unknown_invoice_is_not_found(client: Api, world: Tenancy) -> None:
    problem(download(client, str(uuid.uuid4()), finance(world)), 404, "not-found")


def test_a_platform_admin_names_the_tenant(client: Api, world: Tenancy) -> None:
    invoice_id = issued(client, world)["invoiceId"]
    platform = client.as_("platform-admin")
    problem(download(client, invoice_id, platform), 403, "forbidden")
    named = download(client, invoice_id, platform, params={"tenantId": world.tenant})
    assert named.status_code == 200, named.text
    assert named.content.startswith(b"%PDF-")


def test_without_a_token_it_is_401(client: Api, world: Tenancy) -> None:
    invoice_id = issued(client, world)["invoiceId"]
    problem(download(client, invoice_id, {}), 401)
