"""Customer as a state machine: register, replace the details, add contacts (emails unique
within the customer, at most 100), save and reload; plus the country rule, example refusals
naming API fields, and the stored form of every customer event.

Inputs are drawn as (raw, expected) pairs: `expected` is the value the customer must hold after
the command, or BAD when the command must be refused with InvalidValue.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from application.context import EventMeta
from application.event_log import EventLog, MsgspecMapper
from domain.customer import BillingAddress, Customer, Details, countries, country
from domain.errors import InvalidValue, KeyAlreadyClaimed
from tests.unit.support import MACHINE_SETTINGS, META, accepted_characters, memory_log, replay

BAD = object()  # marks an input the domain must refuse
KEEP = object()  # resend the value the customer already has
TENANT = UUID("00000000-0000-4000-8000-000000000002")
START = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
MAX_CONTACTS = 100  # "a customer can have at most 100 contacts"


def pairs(*items: tuple[Any, Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    return st.sampled_from(items)


names = pairs(
    ("Acme", "Acme"),
    (" Globex Corporation ", "Globex Corporation"),
    ("Ünïcödé GmbH", "Ünïcödé GmbH"),
    ("n" * 200, "n" * 200),
    ("", BAD),
    ("   ", BAD),
    ("n" * 201, BAD),
    ("Ac\x00me", BAD),
)
optional_emails = pairs(
    (None, None),
    ("", None),
    ("  ", None),
    ("billing@acme.example", "billing@acme.example"),
    (" ap@globex.example ", "ap@globex.example"),
    ("nope", BAD),
    ("a@b", BAD),
)
phones = pairs(
    (None, None),
    ("", None),
    ("+44 20 7946 0000", "+44 20 7946 0000"),
    (" (555) 123-4567 ", "(555) 123-4567"),
    ("call me", BAD),
    ("12", BAD),
)
currencies = pairs(
    (None, None),
    ("EUR", "EUR"),
    ("usd", "USD"),
    (" jpy ", "JPY"),
    ("ZZZ", BAD),
    ("EURO", BAD),
    ("", BAD),
)
lines1 = pairs(("1 Main Street", "1 Main Street"), (" 2 High St ", "2 High St"), ("", BAD))
lines2 = pairs((None, None), ("", None), ("Suite 5", "Suite 5"), ("l" * 201, BAD))
cities = pairs(("London", "London"), (" Berlin ", "Berlin"), ("c" * 101, BAD), (" ", BAD))
postal_codes = pairs((None, None), ("SW1A 1AA", "SW1A 1AA"), ("p" * 21, BAD))
country_codes = pairs(
    ("GB", "GB"),
    ("gb", "GB"),
    (" de ", "DE"),
    ("AQ", "AQ"),
    ("SS", "SS"),
    ("UK", BAD),  # reserved for the United Kingdom, not assigned: it is GB
    ("EU", BAD),
    ("XK", BAD),  # user-assigned (Kosovo in CLDR), not ISO 3166-1
    ("ZZ", BAD),
    ("GBR", BAD),
    ("", BAD),
)
ADDRESS_POOLS = {
    "line1": lines1,
    "line2": lines2,
    "city": cities,
    "postal_code": postal_codes,
    "country": country_codes,
}
ADDRESS_API_NAMES = {
    "line1": "billingAddress.line1",
    "line2": "billingAddress.line2",
    "city": "billingAddress.city",
    "postal_code": "billingAddress.postalCode",
    "country": "billingAddress.country",
}
DETAIL_API_NAMES = {
    "name": "name",
    "email": "email",
    "phone_number": "phoneNumber",
    "billing_address": "billingAddress",
    "currency": "currency",
}
TEXT_POOLS = {
    "name": names,
    "email": optional_emails,
    "phone_number": phones,
    "currency": currencies,
}
contact_emails = pairs(
    ("ada@acme.example", "ada@acme.example"),
    ("ADA@Acme.Example", "ADA@Acme.Example"),  # the same address as the one above
    (" grace@acme.example ", "grace@acme.example"),
    ("linus@acme.example", "linus@acme.example"),
    ("", BAD),
    ("not-an-email", BAD),
)
contact_names = pairs(("Ada Lovelace", "Ada Lovelace"), (" Grace ", "Grace"), ("", BAD))
roles = pairs(
    (None, None), ("", None), (" Buyer ", "Buyer"), ("r" * 100, "r" * 100), ("r" * 101, BAD)
)


@st.composite
def address_drafts(draw: st.DrawFn) -> tuple[BillingAddress | None, Any, list[str]]:
    """(address to send, address expected or None, API names of bad fields)."""
    if draw(st.booleans()):
        return None, None, []
    raw: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    bad: list[str] = []
    for name, pool in ADDRESS_POOLS.items():
        raw[name], expected[name] = draw(pool)
        if expected[name] is BAD:
            bad.append(ADDRESS_API_NAMES[name])
    return BillingAddress(**raw), None if bad else BillingAddress(**expected), bad


@st.composite
def detail_drafts(draw: st.DrawFn, allow_keep: bool) -> dict[str, Any]:
    """A (raw, expected) pair per text field, or KEEP; an address draft, or KEEP."""
    draft: dict[str, Any] = {}
    for name, pool in TEXT_POOLS.items():
        draft[name] = (KEEP, None) if allow_keep and draw(st.booleans()) else draw(pool)
    draft["billing_address"] = (
        KEEP if allow_keep and draw(st.booleans()) else draw(address_drafts())
    )
    return draft


def resolve(
    draft: dict[str, Any], current: dict[str, Any] | None, pad: bool
) -> tuple[Details, dict[str, Any], list[str]]:
    """The Details to send, the details expected afterwards and the API names of bad fields."""
    raw: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    bad: list[str] = []
    for name in TEXT_POOLS:
        value, outcome = draft[name]
        if value is KEEP:
            assert current is not None
            outcome = value = current[name]
            if pad and value is not None:
                value = f" {value}\t"
        raw[name], expected[name] = value, outcome
        if outcome is BAD:
            bad.append(DETAIL_API_NAMES[name])
    if draft["billing_address"] is KEEP:
        assert current is not None
        raw["billing_address"] = expected["billing_address"] = current["billing_address"]
    else:
        raw["billing_address"], expected["billing_address"], address_bad = draft["billing_address"]
        bad.extend(address_bad)
    return Details(**raw), expected, bad


def state_of(customer: Customer) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(customer).items() if k != "_pending_events"})


@dataclass
class CustomerModel:
    details: dict[str, Any]
    contacts: list[tuple[UUID, str, str, str | None, str | None]] = field(default_factory=list)
    version: int = 1


class CustomerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.customer: Customer | None = None
        self.model: CustomerModel | None = None
        self.saved_events: list[Any] = []
        self.log: EventLog | None = None
        self.clock = START
        self.filler = 0

    def now(self) -> datetime:
        self.clock += timedelta(minutes=7, microseconds=3)
        return self.clock

    def parts(self) -> tuple[Customer, CustomerModel]:
        assert self.customer is not None
        assert self.model is not None
        return self.customer, self.model

    def attempt(
        self,
        command: Callable[[], Any],
        *,
        bad_fields: list[str],
        duplicate: bool = False,
        records: int = 1,
    ) -> Any:
        customer, model = self.parts()
        before = state_of(customer)
        pending_before = list(customer.pending_events)
        if bad_fields or duplicate:
            with pytest.raises((InvalidValue, KeyAlreadyClaimed)) as caught:
                command()
            error = caught.value
            if isinstance(error, KeyAlreadyClaimed):
                assert duplicate, f"unexpected {error}"
                assert not bad_fields, f"{error} before the field errors {bad_fields}"
                assert error.field == "email"
            else:
                assert isinstance(error, InvalidValue)
                assert error.field in bad_fields, (error.field, bad_fields)
            assert state_of(customer) == before
            assert customer.pending_events == pending_before
            return None
        result = command()
        new_events = customer.pending_events[len(pending_before) :]
        assert len(new_events) == records
        assert all(e.tenant_id == TENANT for e in new_events)
        model.version += records
        if not records:
            assert state_of(customer) == before
        return result

    # -- rules -----------------------------------------------------------------------------

    @initialize(draft=detail_drafts(allow_keep=False))
    def register(self, draft: dict[str, Any]) -> None:
        details, expected, bad = resolve(draft, None, pad=False)
        customer_id = uuid4()
        if bad:
            # A refused registration creates nothing; the machine then starts from a valid one.
            with pytest.raises(InvalidValue) as caught:
                Customer.register(
                    customer_id=customer_id, tenant_id=TENANT, details=details, at=START
                )
            assert caught.value.field in bad
            details = Details(
                name="Initech", email=None, phone_number=None, billing_address=None, currency=None
            )
            expected = dict(vars(details))
        self.customer = Customer.register(
            customer_id=customer_id, tenant_id=TENANT, details=details, at=self.now()
        )
        self.model = CustomerModel(details=expected)
        assert self.customer.id == customer_id
        assert self.customer.status == "active"
        assert self.customer.contacts == []
        (created,) = self.customer.pending_events
        assert isinstance(created, Customer.Created)
        assert created.webhook == "customer.created"
        self.log = memory_log()

    @rule(draft=detail_drafts(allow_keep=True), pad=st.booleans())
    def update(self, draft: dict[str, Any], pad: bool) -> None:
        customer, model = self.parts()
        details, expected, bad = resolve(draft, model.details, pad)
        changed = [name for name in DETAIL_API_NAMES if expected[name] != model.details[name]]
        result = self.attempt(
            lambda: customer.update(details=details, at=self.now()),
            bad_fields=bad,
            records=1 if changed else 0,
        )
        if bad:
            return
        assert sorted(result) == sorted(changed)
        if changed:
            event = customer.pending_events[-1]
            assert isinstance(event, Customer.Updated)
            assert event.webhook == "customer.updated"
            assert list(event.changed_fields) == result
            assert Details.of(event) == Details(**expected)  # the full details, not a diff
        model.details = expected

    @rule(
        name=contact_names,
        email=contact_emails,
        phone=phones,
        role=roles,
        data=st.data(),
        reuse=st.booleans(),
    )
    def add_contact(
        self,
        name: tuple[Any, Any],
        email: tuple[Any, Any],
        phone: tuple[Any, Any],
        role: tuple[Any, Any],
        data: st.DataObject,
        reuse: bool,
    ) -> None:
        customer, model = self.parts()
        if reuse and model.contacts:  # an existing contact's email, in other letter case
            taken = data.draw(st.sampled_from([c[2] for c in model.contacts]))
            email = (f" {taken.swapcase()} ", taken.swapcase())
        bad = [
            api
            for api, (_, outcome) in (
                ("name", name),
                ("email", email),
                ("phoneNumber", phone),
                ("role", role),
            )
            if outcome is BAD
        ]
        duplicate = not bad and any(c[2].casefold() == email[1].casefold() for c in model.contacts)
        if not bad and not duplicate and len(model.contacts) >= MAX_CONTACTS:
            bad = ["contacts"]
        contact_id = uuid4()
        added = self.attempt(
            lambda: customer.add_contact(
                contact_id=contact_id,
                name=name[0],
                email=email[0],
                phone_number=phone[0],
                role=role[0],
                at=self.now(),
            ),
            bad_fields=bad,
            duplicate=duplicate,
        )
        if bad or duplicate:
            return
        expected = (contact_id, name[1], email[1], phone[1], role[1])
        assert (added.contact_id, added.name, added.email, added.phone_number, added.role) == (
            expected
        )
        event = customer.pending_events[-1]
        assert isinstance(event, Customer.ContactAdded)
        assert event.webhook == "customer.updated"
        model.contacts.append(expected)

    @rule(count=st.integers(min_value=1, max_value=60))
    def add_many_contacts(self, count: int) -> None:
        """Valid contacts in bulk, so the limit is reached within a run."""
        customer, model = self.parts()
        for _ in range(min(count, MAX_CONTACTS - len(model.contacts))):
            self.filler += 1
            contact_id, email = uuid4(), f"filler.{self.filler}@acme.example"
            self.attempt(
                lambda contact_id=contact_id, email=email: customer.add_contact(
                    contact_id=contact_id,
                    name="Filler",
                    email=email,
                    phone_number=None,
                    role=None,
                    at=self.now(),
                ),
                bad_fields=[],
            )
            model.contacts.append((contact_id, "Filler", email, None, None))

    @rule(continue_with_loaded=st.booleans())
    def save_and_reload(self, continue_with_loaded: bool) -> None:
        customer, _ = self.parts()
        assert self.log is not None
        pending = list(customer.pending_events)
        self.log.record(customer, meta=META)
        self.saved_events.extend(pending)
        loaded = self.log.load(Customer, customer.id)
        assert loaded is not None
        assert state_of(loaded) == state_of(customer)
        if continue_with_loaded:
            self.customer = loaded

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        if self.customer is None:
            return
        customer, model = self.parts()
        assert vars(customer.details()) == model.details
        assert customer.status == "active"
        assert customer.version == model.version
        assert [
            (c.contact_id, c.name, c.email, c.phone_number, c.role) for c in customer.contacts
        ] == model.contacts

    @invariant()
    def contact_emails_are_unique_and_bounded(self) -> None:
        if self.customer is None:
            return
        emails = [c.email.casefold() for c in self.customer.contacts]
        assert len(emails) == len(set(emails))
        assert len(emails) <= MAX_CONTACTS

    @invariant()
    def replay_gives_the_live_state(self) -> None:
        if self.customer is None:
            return
        events = self.saved_events + list(self.customer.pending_events)
        assert [e.originator_version for e in events] == list(range(1, self.customer.version + 1))
        rebuilt = replay(events)
        assert isinstance(rebuilt, Customer)
        assert state_of(rebuilt) == state_of(self.customer)


CustomerMachine.TestCase.settings = MACHINE_SETTINGS
TestCustomerLifecycle = CustomerMachine.TestCase


# -- examples ------------------------------------------------------------------------------


def details(**overrides: Any) -> Details:
    values: dict[str, Any] = {
        "name": "Acme",
        "email": None,
        "phone_number": None,
        "billing_address": None,
        "currency": None,
    }
    values.update(overrides)
    return Details(**values)


def address(**overrides: Any) -> BillingAddress:
    values: dict[str, Any] = {"line1": "1 Main Street", "city": "London", "country": "GB"}
    values.update(overrides)
    return BillingAddress(**values)


def register(**overrides: Any) -> Customer:
    return Customer.register(
        customer_id=uuid4(), tenant_id=TENANT, details=details(**overrides), at=START
    )


def test_detail_fields_are_what_the_machine_models() -> None:
    assert {f.name for f in fields(Details)} == set(DETAIL_API_NAMES)
    assert set(BillingAddress.__struct_fields__) == set(ADDRESS_API_NAMES)


def test_countries_are_the_officially_assigned_iso_3166_codes() -> None:
    codes = countries()
    assert len(codes) == 249  # ISO 3166-1 alpha-2, officially assigned, as of 2024
    assert {"GB", "US", "DE", "SS", "AQ", "CW", "SX", "BQ", "AX"} <= codes
    assert not codes & {"UK", "EU", "EZ", "UN", "XK", "XA", "QO", "ZZ", "AC", "TA", "IC"}
    assert not codes & {"AN", "CS", "YU", "SU", "DD"}  # withdrawn
    assert country("country", " nz ") == "NZ"


@pytest.mark.parametrize(
    ("overrides", "api_field"),
    [
        ({"name": " "}, "name"),
        ({"email": "billing-at-acme"}, "email"),
        ({"phone_number": "ring ring"}, "phoneNumber"),
        ({"currency": "ZZZ"}, "currency"),
        ({"billing_address": address(country="UK")}, "billingAddress.country"),
        ({"billing_address": address(line1="")}, "billingAddress.line1"),
        ({"billing_address": address(city="")}, "billingAddress.city"),
        ({"billing_address": address(postal_code="p" * 21)}, "billingAddress.postalCode"),
    ],
)
def test_register_refuses_bad_values_naming_the_field(
    overrides: dict[str, Any], api_field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        register(**overrides)
    assert caught.value.field == api_field


def test_an_unchanged_put_records_nothing_even_when_padded() -> None:
    customer = register(email="ap@acme.example", billing_address=address(), currency="EUR")
    same = details(
        name=" Acme ",
        email=" ap@acme.example",
        billing_address=address(country="gb", line2=""),
        currency="eur",
    )
    assert customer.update(details=same, at=START) == []
    assert customer.version == 1
    assert len(customer.pending_events) == 1


def test_clearing_optional_details_is_a_change() -> None:
    customer = register(email="ap@acme.example", billing_address=address(), currency="EUR")
    changed = customer.update(details=details(), at=START)
    assert changed == ["email", "billing_address", "currency"]
    assert (customer.email, customer.billing_address, customer.currency) == (None, None, None)


def test_contact_email_duplicates_are_refused_case_insensitively() -> None:
    customer = register()
    customer.add_contact(
        contact_id=uuid4(),
        name="Ada",
        email="ada@acme.example",
        phone_number=None,
        role=None,
        at=START,
    )
    with pytest.raises(KeyAlreadyClaimed) as caught:
        customer.add_contact(
            contact_id=uuid4(),
            name="Ada 2",
            email=" ADA@ACME.example ",
            phone_number=None,
            role=None,
            at=START,
        )
    assert caught.value.field == "email"
    assert len(customer.contacts) == 1


def test_the_hundred_and_first_contact_is_refused() -> None:
    customer = register()
    for n in range(MAX_CONTACTS):
        customer.add_contact(
            contact_id=uuid4(),
            name=f"C{n}",
            email=f"c{n}@acme.example",
            phone_number=None,
            role=None,
            at=START,
        )
    with pytest.raises(InvalidValue) as caught:
        customer.add_contact(
            contact_id=uuid4(),
            name="One too many",
            email="more@acme.example",
            phone_number=None,
            role=None,
            at=START,
        )
    assert caught.value.field == "contacts"
    assert len(customer.contacts) == MAX_CONTACTS


def test_a_contact_id_is_never_reused() -> None:
    customer = register()
    contact_id = uuid4()
    customer.add_contact(
        contact_id=contact_id,
        name="Ada",
        email="ada@acme.example",
        phone_number=None,
        role=None,
        at=START,
    )
    with pytest.raises(ValueError, match="already used"):
        customer.add_contact(
            contact_id=contact_id,
            name="Grace",
            email="grace@acme.example",
            phone_number=None,
            role=None,
            at=START,
        )


def test_events_have_stable_topics() -> None:
    assert Customer.TOPIC == "workledger:Customer"
    assert Customer.Created.TOPIC == "workledger:CustomerCreated"
    assert Customer.Updated.TOPIC == "workledger:CustomerUpdated"
    assert Customer.ContactAdded.TOPIC == "workledger:CustomerContactAdded"


# -- the stored form -----------------------------------------------------------------------

mapper = MsgspecMapper()
moments = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999),
    timezones=st.just(UTC),
)


@st.composite
def valid_details(draw: st.DrawFn) -> Details:
    raw = {
        name: draw(pool.filter(lambda p: p[1] is not BAD))[0] for name, pool in TEXT_POOLS.items()
    }
    text = st.text(accepted_characters, max_size=30)
    billing = draw(
        st.none()
        | st.builds(
            BillingAddress,
            line1=text.filter(str.strip),
            line2=st.none() | text,
            city=text.filter(str.strip),
            postal_code=st.none() | text.map(lambda s: s[:20]),
            country=st.sampled_from(sorted(countries())),
        )
    )
    return Details(**raw, billing_address=billing)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid_details(),
    valid_details(),
    moments,
    st.builds(EventMeta, actor=st.text(max_size=20), request_id=st.text(max_size=20)),
)
def test_every_customer_event_round_trips(
    first: Details, second: Details, at: datetime, meta: EventMeta
) -> None:
    customer = Customer.register(customer_id=uuid4(), tenant_id=TENANT, details=first, at=at)
    customer.update(details=second, at=at)
    customer.add_contact(
        contact_id=uuid4(),
        name="Ada",
        email="ada@acme.example",
        phone_number="+1 555 0100",
        role=None,
        at=at,
    )
    for event in customer.pending_events:
        stored = mapper.to_stored_event(event, meta)
        decoded, decoded_meta = mapper.decode(stored)
        assert type(decoded) is type(event)
        assert vars(decoded) == vars(event)
        for name, value in vars(event).items():
            assert type(getattr(decoded, name)) is type(value), name
        assert decoded_meta == meta
        assert stored.topic == type(event).TOPIC
    assert state_of(replay(list(customer.pending_events))) == state_of(customer)
