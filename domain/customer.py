"""Customer: an organisation a tenant sells its services to, with its billing details and the
people to talk to there (contacts).

A customer is created active and stays so (the API has no way to end one yet). Its details are
replaced as a whole; contacts are only ever added, each with an email address unique within the
customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

import msgspec
from babel import Locale
from eventsourcing.domain import Aggregate

from domain import values
from domain.errors import InvalidValue, KeyAlreadyClaimed
from domain.events import TenantEvent
from domain.uniqueness import normalise_key

ACTIVE = "active"
MAX_CONTACTS = 100

# CLDR (via Babel) names every ISO 3166-1 alpha-2 country, plus codes that are not countries:
# the ranges ISO 3166 leaves to users (AA, QM-QZ, XA-XZ, ZZ: CLDR uses QO, XA, XB, XK, ZZ) and
# the "exceptionally reserved" codes (AC, CP, CQ, DG, EA, EU, EZ, IC, TA, UN). The ranges and
# that list are fixed by the standard itself; the countries come from CLDR, so a new country
# arrives with a Babel upgrade.
_EXCEPTIONALLY_RESERVED = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "TA", "UN"})


def _user_assigned(code: str) -> bool:
    return code in ("AA", "ZZ") or (code[0] == "Q" and code[1] >= "M") or code[0] == "X"


@cache
def countries() -> frozenset[str]:
    """The officially assigned ISO 3166-1 alpha-2 country codes."""
    return frozenset(
        code
        for code in Locale("en").territories
        if isinstance(code, str)
        and len(code) == 2
        and code.isalpha()
        and not _user_assigned(code)
        and code not in _EXCEPTIONALLY_RESERVED
    )


def country(field: str, value: str) -> str:
    """An ISO 3166-1 alpha-2 country code, upper-cased."""
    code = value.strip().upper()
    if code not in countries():
        raise InvalidValue(field, f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


class BillingAddress(msgspec.Struct, frozen=True, rename="camel"):
    """Where invoices go. Stored inside events as it is shown to clients (camelCase keys), so
    the audit trail's event data reads like the resource."""

    line1: str
    city: str
    country: str
    line2: str | None = None
    postal_code: str | None = None

    def validated(self) -> BillingAddress:
        return BillingAddress(
            line1=values.required_text("billingAddress.line1", self.line1),
            line2=values.optional_text("billingAddress.line2", self.line2),
            city=values.required_text("billingAddress.city", self.city, 100),
            postal_code=values.optional_text("billingAddress.postalCode", self.postal_code, 20),
            country=country("billingAddress.country", self.country),
        )


@dataclass(frozen=True)
class Details:
    """The editable facts of a customer, validated as a whole (a PUT replaces all of them)."""

    name: str
    email: str | None
    phone_number: str | None
    billing_address: BillingAddress | None
    currency: str | None

    @classmethod
    def of(cls, source: object) -> Details:
        """The detail fields of anything that has them as attributes (a customer, an event)."""
        return cls(**{name: getattr(source, name) for name in cls.__dataclass_fields__})

    def validated(self) -> Details:
        email = values.optional_text("email", self.email, 254)  # blank means none, like phones
        return Details(
            name=values.required_text("name", self.name),
            email=None if email is None else values.email("email", email),
            phone_number=values.phone_number("phoneNumber", self.phone_number),
            billing_address=(
                None if self.billing_address is None else self.billing_address.validated()
            ),
            currency=None if self.currency is None else values.currency("currency", self.currency),
        )


@dataclass(frozen=True)
class Contact:
    """A person to talk to at the customer."""

    contact_id: UUID
    name: str
    email: str
    phone_number: str | None
    role: str | None


class Customer(Aggregate):
    TOPIC = "workledger:Customer"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:CustomerCreated"
        webhook = "customer.created"
        name: str
        email: str | None
        phone_number: str | None
        billing_address: BillingAddress | None
        currency: str | None

    class Updated(Event):
        """Carries all the details after the change, and which fields changed."""

        TOPIC = "workledger:CustomerUpdated"
        webhook = "customer.updated"
        name: str
        email: str | None
        phone_number: str | None
        billing_address: BillingAddress | None
        currency: str | None
        changed_fields: list[str]

        def apply(self, aggregate: Customer) -> None:
            for name in Details.__dataclass_fields__:
                setattr(aggregate, name, getattr(self, name))

    class ContactAdded(Event):
        TOPIC = "workledger:CustomerContactAdded"
        webhook = "customer.updated"
        contact_id: UUID
        name: str
        email: str
        phone_number: str | None
        role: str | None

        def apply(self, aggregate: Customer) -> None:
            aggregate.contacts.append(
                Contact(
                    contact_id=self.contact_id,
                    name=self.name,
                    email=self.email,
                    phone_number=self.phone_number,
                    role=self.role,
                )
            )

    def __init__(
        self,
        tenant_id: UUID,
        name: str,
        email: str | None,
        phone_number: str | None,
        billing_address: BillingAddress | None,
        currency: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.email = email
        self.phone_number = phone_number
        self.billing_address = billing_address
        self.currency = currency
        self.status = ACTIVE
        self.contacts: list[Contact] = []

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def register(
        cls, *, customer_id: UUID, tenant_id: UUID, details: Details, at: datetime
    ) -> Customer:
        """A new, active customer with no contacts."""
        checked = details.validated()
        return cls._create(
            cls.Created, id=customer_id, tenant_id=tenant_id, timestamp=at, **vars(checked)
        )

    def update(self, *, details: Details, at: datetime) -> list[str]:
        """Replace the details; records only real changes and returns the changed field names."""
        checked = details.validated()
        current = self.details()
        changed = [name for name, value in vars(checked).items() if getattr(current, name) != value]
        if not changed:
            return []  # a PUT of what is already there records nothing
        self.trigger_event(
            self.Updated,
            tenant_id=self.tenant_id,
            timestamp=at,
            changed_fields=changed,
            **vars(checked),
        )
        return changed

    def add_contact(
        self,
        *,
        contact_id: UUID,
        name: str,
        email: str,
        phone_number: str | None,
        role: str | None,
        at: datetime,
    ) -> Contact:
        """Add a contact. Its email must not be another contact's (compared case-insensitively)."""
        checked_name = values.required_text("name", name)
        checked_email = values.email("email", email)
        checked_phone = values.phone_number("phoneNumber", phone_number)
        checked_role = values.optional_text("role", role, 100)
        key = normalise_key(checked_email)
        if any(normalise_key(c.email) == key for c in self.contacts):
            raise KeyAlreadyClaimed("email", checked_email)
        if len(self.contacts) >= MAX_CONTACTS:
            raise InvalidValue("contacts", f"a customer can have at most {MAX_CONTACTS} contacts")
        if any(c.contact_id == contact_id for c in self.contacts):
            raise ValueError(f"contact id {contact_id} is already used")  # a caller's bug
        self.trigger_event(
            self.ContactAdded,
            tenant_id=self.tenant_id,
            timestamp=at,
            contact_id=contact_id,
            name=checked_name,
            email=checked_email,
            phone_number=checked_phone,
            role=checked_role,
        )
        return self.contacts[-1]

    # -- queries --------------------------------------------------------------------------

    def details(self) -> Details:
        return Details.of(self)

    def contact(self, contact_id: UUID) -> Contact | None:
        return next((c for c in self.contacts if c.contact_id == contact_id), None)
