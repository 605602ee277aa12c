"""/api/v1/customers: the organisations a tenant sells to, and their contacts."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, Router, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from application.customers import (
    AddContact,
    CreateCustomer,
    CustomerCommands,
    CustomerFilter,
    CustomerQueries,
    UpdateCustomer,
)
from application.queries import DEFAULT_LIMIT
from application.results import Written
from entrypoints.http.deps import Ctx, Svc, answer, settled
from entrypoints.http.responses import document, if_match, page

Req = Request[Any, Any, Any]


def _customer(services: Svc, ctx: Ctx, written: Written, status: int = 200) -> Response[bytes]:
    return answer(
        services,
        written,
        lambda i: services.get(CustomerQueries).get(ctx, i),
        "/api/v1/customers",
        status,
    )


def _commands(services: Svc) -> CustomerCommands:
    return services.get(CustomerCommands)


@post("/", sync_to_thread=False, status_code=201)
def create(data: JSONBody[CreateCustomer], ctx: Ctx, services: Svc) -> Response[bytes]:
    return _customer(services, ctx, _commands(services).create(ctx, data), 201)


@get("/", sync_to_thread=False)
def list_customers(
    ctx: Ctx,
    services: Svc,
    q: FromQuery[str | None] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    where = CustomerFilter(q=q or None)
    result = services.get(CustomerQueries).list(ctx, where, limit=limit, cursor=cursor)
    return page("customers", result)


@get("/{customer_id:uuid}", sync_to_thread=False)
def get_customer(customer_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(CustomerQueries).get(ctx, customer_id))


@put("/{customer_id:uuid}", sync_to_thread=False)
def replace_customer(
    customer_id: FromPath[UUID],
    data: JSONBody[UpdateCustomer],
    ctx: Ctx,
    services: Svc,
    request: Req,
) -> Response[bytes]:
    written = _commands(services).update(ctx, customer_id, data, if_match(request))
    return _customer(services, ctx, written)


@get("/{customer_id:uuid}/contacts", sync_to_thread=False)
def list_contacts(
    customer_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = services.get(CustomerQueries).contacts(ctx, customer_id, limit=limit, cursor=cursor)
    return page("contacts", result)


@post("/{customer_id:uuid}/contacts", sync_to_thread=False, status_code=201)
def add_contact(
    customer_id: FromPath[UUID], data: JSONBody[AddContact], ctx: Ctx, services: Svc
) -> Response[bytes]:
    added = _commands(services).add_contact(ctx, customer_id, data)
    written = settled(services, added.customer)
    doc = services.get(CustomerQueries).contact(ctx, customer_id, added.contact_id)
    location = f"/api/v1/customers/{customer_id}/contacts/{added.contact_id}"
    return document(doc, status=201, written=written, location=location)


@get("/{customer_id:uuid}/contacts/{contact_id:uuid}", sync_to_thread=False)
def get_contact(
    customer_id: FromPath[UUID], contact_id: FromPath[UUID], ctx: Ctx, services: Svc
) -> Response[bytes]:
    """Not listed in API.md, but where a new contact's Location points."""
    return document(services.get(CustomerQueries).contact(ctx, customer_id, contact_id))


router = Router(
    path="/customers",
    route_handlers=[
        create,
        list_customers,
        get_customer,
        replace_customer,
        list_contacts,
        add_contact,
        get_contact,
    ],
    tags=["customers"],
)
