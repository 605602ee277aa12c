"""/api/v1/billing: invoices and payments."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from application.billing import (
    BillingCommands,
    BillingQueries,
    CreateInvoice,
    InvoiceFilter,
    RecordPayment,
    VoidInvoice,
)
from application.context import Context
from application.queries import DEFAULT_LIMIT
from application.results import Written
from entrypoints.container import Services
from entrypoints.http.deps import Ctx, Svc, answer, settled
from entrypoints.http.responses import document, if_match, page, raw

Req = Request[Any, Any, Any]
NO_REASON = VoidInvoice()


def _invoice(
    services: Services, ctx: Context, written: Written, status: int = 200
) -> Response[bytes]:
    return answer(
        services,
        written,
        lambda i: services.get(BillingQueries).invoice(ctx, i),
        "/api/v1/billing/invoices",
        status,
    )


def _commands(services: Services) -> BillingCommands:
    return services.get(BillingCommands)


@post("/invoices", sync_to_thread=False, status_code=201)
def create_invoice(data: JSONBody[CreateInvoice], ctx: Ctx, services: Svc) -> Response[bytes]:
    return _invoice(services, ctx, _commands(services).create(ctx, data), 201)


@get("/invoices", sync_to_thread=False)
def list_invoices(
    ctx: Ctx,
    services: Svc,
    status: FromQuery[str | None] = None,
    customer_id: Annotated[UUID | None, QueryParameter(name="customerId")] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    where = InvoiceFilter(status=status or None, customer_id=customer_id)
    return page(
        "invoices", services.get(BillingQueries).invoices(ctx, where, limit=limit, cursor=cursor)
    )


@get("/invoices/{invoice_id:uuid}", sync_to_thread=False)
def get_invoice(invoice_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(BillingQueries).invoice(ctx, invoice_id))


@post("/invoices/{invoice_id:uuid}/issue", sync_to_thread=False, status_code=200)
def issue(invoice_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req) -> Response[bytes]:
    return _invoice(services, ctx, _commands(services).issue(ctx, invoice_id, if_match(request)))


@post("/invoices/{invoice_id:uuid}/void", sync_to_thread=False, status_code=200)
def void(
    invoice_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    request: Req,
    data: JSONBody[VoidInvoice | None] = None,
) -> Response[bytes]:
    written = _commands(services).void(ctx, invoice_id, data or NO_REASON, if_match(request))
    return _invoice(services, ctx, written)


@post("/payments", sync_to_thread=False, status_code=201)
def record_payment(data: JSONBody[RecordPayment], ctx: Ctx, services: Svc) -> Response[Any]:
    written = settled(services, _commands(services).record_payment(ctx, data))
    payment = services.get(BillingQueries).payment(ctx, written.id)
    response = raw(payment.doc, position=written.position, status=201)
    response.headers["Location"] = f"/api/v1/billing/payments/{written.id}"
    return response


@get("/payments/{payment_id:uuid}", sync_to_thread=False)
def get_payment(payment_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return raw(services.get(BillingQueries).payment(ctx, payment_id).doc)


@get("/payments", sync_to_thread=False)
def list_payments(
    ctx: Ctx,
    services: Svc,
    invoice_id: Annotated[UUID | None, QueryParameter(name="invoiceId")] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = services.get(BillingQueries).payments(ctx, invoice_id, limit=limit, cursor=cursor)
    return page("payments", result)


router = Router(
    path="/billing",
    route_handlers=[
        create_invoice,
        list_invoices,
        get_invoice,
        issue,
        void,
        record_payment,
        get_payment,
        list_payments,
    ],
    tags=["billing"],
)
