"""Customer use cases: the organisations a tenant sells to, their details and contacts; the
read port and query service for them; and `require_customer`, for use cases that refer to a
customer by id (engagements, invoices)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from application.claims import change_claim, claim, optimistically, retry_once
from application.commands import Command
from application.context import Context
from application.errors import InvalidRequest, NotFound
from application.event_log import EventLog
from application.ports import Clock, IdGenerator
from application.queries import Document, Page, check_limit, decode_cursor
from application.results import Written
from application.tenancy import active_tenant
from domain.customer import BillingAddress, Customer, Details
from domain.tenant import Tenant

NAME_SCOPE = "customer.name"


class AddressBody(Command):
    line1: str
    city: str
    country: str
    line2: str | None = None
    postal_code: str | None = None

    def address(self) -> BillingAddress:
        return BillingAddress(**msgspec.structs.asdict(self))


class CreateCustomer(Command):
    name: str
    email: str | None = None
    phone_number: str | None = None
    billing_address: AddressBody | None = None
    currency: str | None = None

    def details(self) -> Details:
        return _details(self)


class UpdateCustomer(Command):
    """A full replacement (PUT): an absent optional field is cleared, as `null` is."""

    name: str
    email: str | None = None
    phone_number: str | None = None
    billing_address: AddressBody | None = None
    currency: str | None = None

    def details(self) -> Details:
        return _details(self)


def _details(body: CreateCustomer | UpdateCustomer) -> Details:
    return Details(
        name=body.name,
        email=body.email,
        phone_number=body.phone_number,
        billing_address=None if body.billing_address is None else body.billing_address.address(),
        currency=body.currency,
    )


class AddContact(Command):
    name: str
    email: str
    phone_number: str | None = None
    role: str | None = None


class ContactWritten(msgspec.Struct, frozen=True):
    """A contact was added: the customer's write, and the new contact's id."""

    customer: Written
    contact_id: UUID


def require_customer(
    log: EventLog, tenant_id: UUID, customer_id: UUID, field: str = "customerId"
) -> Customer:
    """The customer a command refers to by id; a 400 naming `field` when the tenant has none
    with that id (another tenant's customer included, so its existence never leaks)."""
    customer = log.load(Customer, customer_id)
    if customer is None or customer.tenant_id != tenant_id:
        raise InvalidRequest(field, "no customer with this id in the tenant")
    return customer


class CustomerCommands:
    def __init__(self, log: EventLog, clock: Clock, ids: IdGenerator) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids

    def create(self, ctx: Context, cmd: CreateCustomer) -> Written:
        ctx.require("customer:write")
        return optimistically(lambda assume_new: self._create(ctx, cmd, assume_new))

    def _create(self, ctx: Context, cmd: CreateCustomer, assume_new: bool) -> Written:
        tenant = active_tenant(self._log, ctx)
        now = self._clock.now()
        customer = Customer.register(
            customer_id=self._ids.new_id(), tenant_id=tenant.id, details=cmd.details(), at=now
        )
        key = claim(
            self._log,
            assume_new=assume_new,
            scope=NAME_SCOPE,
            value=customer.name,
            owner_id=customer.id,
            tenant_id=tenant.id,
            platform_wide=False,
            at=now,
        )
        position = self._log.record(customer, key, meta=ctx.meta)
        return Written(id=customer.id, version=customer.version, position=position, created=True)

    def update(
        self, ctx: Context, customer_id: UUID, cmd: UpdateCustomer, if_match: int | None
    ) -> Written:
        ctx.require("customer:write")

        def run() -> Written:
            tenant, customer = self._customer(ctx, customer_id, if_match)
            old_name = customer.name
            now = self._clock.now()
            customer.update(details=cmd.details(), at=now)
            keys = change_claim(
                self._log,
                scope=NAME_SCOPE,
                old=old_name,
                new=customer.name,
                owner_id=customer.id,
                tenant_id=tenant.id,
                platform_wide=False,
                at=now,
            )
            return self._save(ctx, customer, *keys)

        return retry_once(run)

    def add_contact(self, ctx: Context, customer_id: UUID, cmd: AddContact) -> ContactWritten:
        ctx.require("customer:write")
        contact_id = self._ids.new_id()

        def run() -> ContactWritten:
            # Contact emails are unique inside the customer, so the aggregate's own version
            # guards them: a concurrent add loses the race and its rerun sees the winner's email.
            _, customer = self._customer(ctx, customer_id, None)
            customer.add_contact(
                contact_id=contact_id,
                name=cmd.name,
                email=cmd.email,
                phone_number=cmd.phone_number,
                role=cmd.role,
                at=self._clock.now(),
            )
            return ContactWritten(customer=self._save(ctx, customer), contact_id=contact_id)

        return retry_once(run)

    # -- helpers --------------------------------------------------------------------------

    def _customer(
        self, ctx: Context, customer_id: UUID, if_match: int | None
    ) -> tuple[Tenant, Customer]:
        tenant = active_tenant(self._log, ctx)
        customer = self._log.load(Customer, customer_id)
        if customer is None or customer.tenant_id != tenant.id:
            raise NotFound("customer", customer_id)
        # Checked after visibility, so a version mismatch never reveals another tenant's customer.
        self._log.check_version(customer, if_match)
        return tenant, customer

    def _save(self, ctx: Context, customer: Customer, *others: Aggregate) -> Written:
        position = self._log.record(customer, *others, meta=ctx.meta)
        return Written(id=customer.id, version=customer.version, position=position)


# -- the read side --------------------------------------------------------------------------


class CustomerFilter(msgspec.Struct, frozen=True):
    q: str | None = None  # a case-insensitive part of the name


class CustomerReadModel(Protocol):
    def get(self, tenant_id: UUID, customer_id: UUID) -> Document | None: ...

    def list(self, tenant_id: UUID, where: CustomerFilter, *, limit: int, after: int) -> Page: ...

    def contacts(self, tenant_id: UUID, customer_id: UUID, *, limit: int, after: int) -> Page:
        """The customer's contacts in the order they were added (an empty page for none)."""
        ...

    def contact(self, tenant_id: UUID, customer_id: UUID, contact_id: UUID) -> Document | None:
        """A contact's representation; its version is the customer's when it was added."""
        ...


class CustomerQueries:
    def __init__(self, customers: CustomerReadModel) -> None:
        self._customers = customers

    def get(self, ctx: Context, customer_id: UUID) -> Document:
        ctx.require("customer:read")
        document = self._customers.get(ctx.require_tenant(), customer_id)
        if document is None:
            raise NotFound("customer", customer_id)
        return document

    def list(self, ctx: Context, where: CustomerFilter, *, limit: int, cursor: str | None) -> Page:
        ctx.require("customer:read")
        return self._customers.list(
            ctx.require_tenant(), where, limit=check_limit(limit), after=decode_cursor(cursor)
        )

    def contacts(self, ctx: Context, customer_id: UUID, *, limit: int, cursor: str | None) -> Page:
        self.get(ctx, customer_id)  # a customer with no contacts is an empty list, none a 404
        return self._customers.contacts(
            ctx.require_tenant(), customer_id, limit=check_limit(limit), after=decode_cursor(cursor)
        )

    def contact(self, ctx: Context, customer_id: UUID, contact_id: UUID) -> Document:
        ctx.require("customer:read")
        document = self._customers.contact(ctx.require_tenant(), customer_id, contact_id)
        if document is None:
            raise NotFound("contact", contact_id)
        return document
