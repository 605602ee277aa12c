"""Tenant lifecycle as a state machine: active <-> suspended, either -> closed (terminal).

Every command is tried against a small model of what the tenant should look like. Inputs are
drawn as (raw, expected) pairs where `expected` is what the stored value must be, or BAD when
the input must be refused with InvalidValue.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from application.event_log import EventLog
from domain.errors import IllegalTransition, InvalidValue, TenantNotActive
from domain.tenant import Tenant
from tests.unit.support import MACHINE_SETTINGS, META, memory_log, replay

BAD = object()  # marks an input the domain must refuse
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # refused by domain.values
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

# The API contract's plans; subscription statuses as a billing provider spells them.
PLAN_NAMES = ("starter", "professional", "enterprise")
SUBSCRIPTION_STATES = ("trialing", "active", "past_due", "cancelled")


def trimmed_or_bad(raw: str, max_length: int = 200) -> Any:
    if CONTROL.search(raw):
        return BAD
    text = raw.strip()
    return text if 0 < len(text) <= max_length else BAD


def optional_trimmed(raw: str | None, max_length: int = 200) -> Any:
    if raw is None:
        return None
    text = raw.strip()
    if len(text) > max_length or CONTROL.search(raw):
        return BAD
    return text or None


def pairs(*items: tuple[Any, Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    return st.sampled_from(items)


names = st.one_of(
    pairs(
        ("Acme", "Acme"),
        ("  Globex Ltd ", "Globex Ltd"),
        ("Initech", "Initech"),
        ("", BAD),
        ("   ", BAD),
        ("n" * 200, "n" * 200),
        ("n" * 201, BAD),
    ),
    st.text(max_size=12).map(lambda s: (s, trimmed_or_bad(s))),
)
emails = pairs(
    ("ops@acme.example", "ops@acme.example"),
    (" billing@globex.com ", "billing@globex.com"),
    ("a@b.co", "a@b.co"),
    ("not-an-email", BAD),
    ("a@b", BAD),
    ("", BAD),
    ("a b@c.de", BAD),
)
phones = pairs(
    (None, None),
    ("", None),
    ("   ", None),
    ("+44 20 7946 0958", "+44 20 7946 0958"),
    (" (555) 123-4567 ", "(555) 123-4567"),
    ("call me", BAD),
    ("12", BAD),
)
industries = st.one_of(
    pairs((None, None), ("", None), (" Retail ", "Retail"), ("i" * 201, BAD)),
    st.text(max_size=8).map(lambda s: (s, optional_trimmed(s))),
)
reasons = st.one_of(
    pairs(
        (None, None),
        ("", None),
        ("  late payment ", "late payment"),
        ("r" * 500, "r" * 500),
        ("r" * 501, BAD),
        (" " + "r" * 500 + " ", "r" * 500),
    ),
    st.text(max_size=10).map(lambda s: (s, optional_trimmed(s, 500))),
)
plans = st.one_of(
    st.sampled_from(PLAN_NAMES).map(lambda p: (p, p)),
    pairs(("free", BAD), ("Starter", BAD), ("", BAD), (" starter", BAD)),
)
subscription_states = st.one_of(
    st.sampled_from(SUBSCRIPTION_STATES).map(lambda s: (s, s)),
    pairs(("canceled", BAD), ("paused", BAD), ("", BAD), ("ACTIVE", BAD)),
)
seat_counts = st.one_of(
    st.sampled_from([-1, 0, 1, 2, 999_999, 1_000_000, 1_000_001]),
    st.integers(min_value=-10, max_value=2_000_000),
).map(lambda n: (n, n if 1 <= n <= 1_000_000 else BAD))
renewals = st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
currencies = pairs(
    ("USD", "USD"),
    ("eur", "EUR"),
    (" gbp ", "GBP"),
    ("JpY", "JPY"),
    ("CHF", "CHF"),
    ("XYZ", BAD),
    ("US", BAD),
    ("", BAD),
    ("EURO", BAD),
    ("$", BAD),
)
timezones = pairs(
    ("UTC", "UTC"),
    ("Europe/London", "Europe/London"),
    ("Asia/Kolkata", "Asia/Kolkata"),
    ("America/New_York", "America/New_York"),
    ("Mars/Olympus_Mons", BAD),
    ("", BAD),
    ("London", BAD),
)
terms = st.one_of(
    st.sampled_from([-1, 0, 1, 30, 365, 366]), st.integers(min_value=-50, max_value=500)
).map(lambda n: (n, n if 0 <= n <= 365 else BAD))
prefixes = pairs(
    ("INV", "INV"),
    ("A-1", "A-1"),
    ("2024", "2024"),
    (" inv-eu ", "inv-eu"),
    ("X" * 12, "X" * 12),
    ("X" * 13, BAD),
    ("", BAD),
    ("   ", BAD),
    ("has space", BAD),
    ("a/b", BAD),
    ("INV_1", BAD),
    ("INV.1", BAD),
)
flag_names = st.one_of(
    st.sampled_from(["beta", "newInvoices", "f" * 64, "", "   ", "g" * 65]),
    st.text(alphabet="abcXYZ_-.0", min_size=1, max_size=10),
)
flag_sets = st.dictionaries(flag_names, st.booleans(), max_size=4)


def flags_are_valid(flags: dict[str, bool]) -> bool:
    return all(0 < len(name.strip()) <= 64 for name in flags)


@dataclass
class TenantModel:
    status: str
    name: str
    contact_email: str
    phone_number: str | None
    industry: str | None
    plan: str
    currency: str
    timezone: str
    version: int = 1
    seats: int = 1
    subscription_status: str = "active"
    renews_on: date | None = None
    payment_terms_days: int = 30
    invoice_prefix: str = "INV"
    feature_flags: dict[str, bool] = field(default_factory=dict)


MODEL_FIELDS = [name for name in TenantModel.__dataclass_fields__ if name != "version"]


def state_of(tenant: Tenant) -> dict[str, Any]:
    """Everything the aggregate holds, apart from its not-yet-saved events."""
    state = {k: v for k, v in vars(tenant).items() if k != "_pending_events"}
    return copy.deepcopy(state)


class TenantMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tenant: Tenant | None = None
        self.model: TenantModel | None = None
        self.saved_events: list[Any] = []
        self.log: EventLog | None = None
        self.clock = START
        self.ever_closed = False

    # -- helpers ---------------------------------------------------------------------------

    def now(self) -> datetime:
        self.clock += timedelta(seconds=61, microseconds=7)
        return self.clock

    def attempt(
        self,
        command: Callable[[], Any],
        *,
        illegal: bool,
        bad_fields: list[str],
        records: bool = True,
    ) -> None:
        """Run `command`; check it raised what the model says, or recorded what it says."""
        assert self.tenant is not None
        assert self.model is not None
        before = state_of(self.tenant)
        pending_before = list(self.tenant.pending_events)
        if illegal or bad_fields:
            allowed: tuple[type[Exception], ...] = ()
            if illegal:
                allowed += (IllegalTransition,)
            if bad_fields:
                allowed += (InvalidValue,)
            with pytest.raises(allowed) as caught:
                command()
            error = caught.value
            if isinstance(error, IllegalTransition):
                assert illegal, f"unexpected {error}"
                assert error.aggregate == "tenant"
                assert error.state == self.model.status
            else:
                assert isinstance(error, InvalidValue)
                assert bad_fields, f"unexpected {error}"
                assert error.field in bad_fields, (error.field, bad_fields)
            # A refused command changes nothing and records nothing.
            assert state_of(self.tenant) == before
            assert self.tenant.pending_events == pending_before
            return
        command()
        new_events = self.tenant.pending_events[len(pending_before) :]
        assert self.tenant.pending_events[: len(pending_before)] == pending_before
        if records:
            assert len(new_events) == 1
            self.model.version += 1
        else:
            assert new_events == []
            assert state_of(self.tenant) == before

    # -- rules -----------------------------------------------------------------------------

    @initialize(
        name=names.filter(lambda p: p[1] is not BAD),
        email=emails.filter(lambda p: p[1] is not BAD),
        phone=phones.filter(lambda p: p[1] is not BAD),
        industry=industries.filter(lambda p: p[1] is not BAD),
        plan=st.none() | st.sampled_from(PLAN_NAMES),
        currency=st.none().map(lambda _: (None, "USD"))
        | currencies.filter(lambda p: p[1] is not BAD),
        timezone=st.none().map(lambda _: (None, "UTC"))
        | timezones.filter(lambda p: p[1] is not BAD),
    )
    def provision(
        self,
        name: tuple[str, str],
        email: tuple[str, str],
        phone: tuple[Any, Any],
        industry: tuple[Any, Any],
        plan: str | None,
        currency: tuple[Any, str],
        timezone: tuple[Any, str],
    ) -> None:
        tenant_id = uuid4()
        self.tenant = Tenant.provision(
            tenant_id=tenant_id,
            name=name[0],
            contact_email=email[0],
            phone_number=phone[0],
            industry=industry[0],
            plan=plan,
            currency=currency[0],
            timezone=timezone[0],
            provisioned_by="user:admin",
            at=self.now(),
        )
        self.model = TenantModel(
            status="active",
            name=name[1],
            contact_email=email[1],
            phone_number=phone[1],
            industry=industry[1],
            plan=plan or "starter",
            currency=currency[1],
            timezone=timezone[1],
        )
        assert self.tenant.id == tenant_id
        assert self.tenant.tenant_id == tenant_id
        assert len(self.tenant.pending_events) == 1
        self.log = memory_log()

    @rule(reason=reasons)
    def suspend(self, reason: tuple[Any, Any]) -> None:
        assert self.model is not None
        illegal = self.model.status != "active"
        bad = ["reason"] if reason[1] is BAD else []
        self.attempt(
            lambda: self.tenant.suspend(reason=reason[0], at=self.now()),
            illegal=illegal,
            bad_fields=bad,
        )
        if not illegal and not bad:
            self.model.status = "suspended"

    @rule()
    def reactivate(self) -> None:
        assert self.model is not None
        illegal = self.model.status != "suspended"
        self.attempt(lambda: self.tenant.reactivate(at=self.now()), illegal=illegal, bad_fields=[])
        if not illegal:
            self.model.status = "active"

    @rule(reason=reasons)
    def close(self, reason: tuple[Any, Any]) -> None:
        assert self.model is not None
        illegal = self.model.status == "closed"
        bad = ["reason"] if reason[1] is BAD else []
        self.attempt(
            lambda: self.tenant.close(reason=reason[0], at=self.now()),
            illegal=illegal,
            bad_fields=bad,
        )
        if not illegal and not bad:
            self.model.status = "closed"
            self.ever_closed = True

    @rule(name=names, email=emails, phone=phones, industry=industries, same=st.booleans())
    def update(
        self,
        name: tuple[Any, Any],
        email: tuple[Any, Any],
        phone: tuple[Any, Any],
        industry: tuple[Any, Any],
        same: bool,
    ) -> None:
        model = self.model
        assert model is not None
        if same:  # a PUT of exactly what is there, padded with white space
            name = (f" {model.name} ", model.name)
            email = (f"{model.contact_email}  ", model.contact_email)
            industry = (model.industry, model.industry)
            phone = (model.phone_number, model.phone_number)
        illegal = model.status == "closed"
        inputs = {"name": name, "contactEmail": email, "phoneNumber": phone, "industry": industry}
        bad = [api_name for api_name, (_, expected) in inputs.items() if expected is BAD]
        expected = (name[1], email[1], phone[1], industry[1])
        current = (model.name, model.contact_email, model.phone_number, model.industry)
        self.attempt(
            lambda: self.tenant.update(
                name=name[0],
                contact_email=email[0],
                phone_number=phone[0],
                industry=industry[0],
                at=self.now(),
            ),
            illegal=illegal,
            bad_fields=bad,
            records=expected != current,
        )
        if not illegal and not bad:
            model.name, model.contact_email, model.phone_number, model.industry = expected

    @rule(plan=plans, seats=seat_counts, status=subscription_states, renews_on=renewals)
    def change_subscription(
        self,
        plan: tuple[str, Any],
        seats: tuple[int, Any],
        status: tuple[str, Any],
        renews_on: date | None,
    ) -> None:
        model = self.model
        assert model is not None
        illegal = model.status == "closed"
        inputs = {"plan": plan, "seats": seats, "status": status}
        bad = [api_name for api_name, (_, expected) in inputs.items() if expected is BAD]
        self.attempt(
            lambda: self.tenant.change_subscription(
                plan=plan[0],
                seats=seats[0],
                status=status[0],
                renews_on=renews_on,
                at=self.now(),
            ),
            illegal=illegal,
            bad_fields=bad,
        )
        if not illegal and not bad:
            model.plan, model.seats, model.subscription_status = plan[1], seats[1], status[1]
            model.renews_on = renews_on

    @rule(
        currency=currencies,
        timezone=timezones,
        payment_terms=terms,
        prefix=prefixes,
        flags=flag_sets,
    )
    def change_settings(
        self,
        currency: tuple[str, Any],
        timezone: tuple[str, Any],
        payment_terms: tuple[int, Any],
        prefix: tuple[str, Any],
        flags: dict[str, bool],
    ) -> None:
        model = self.model
        assert model is not None
        illegal = model.status == "closed"
        inputs = {
            "currency": currency,
            "timezone": timezone,
            "paymentTermsDays": payment_terms,
            "invoicePrefix": prefix,
        }
        bad = [api_name for api_name, (_, expected) in inputs.items() if expected is BAD]
        if not flags_are_valid(flags):
            bad.append("featureFlags")
        given_flags = dict(flags)
        self.attempt(
            lambda: self.tenant.change_settings(
                currency=currency[0],
                timezone=timezone[0],
                payment_terms_days=payment_terms[0],
                invoice_prefix=prefix[0],
                feature_flags=given_flags,
                at=self.now(),
            ),
            illegal=illegal,
            bad_fields=bad,
        )
        # The caller's dict is not the tenant's: changing it afterwards changes nothing.
        given_flags["injected-later"] = True
        if not illegal and not bad:
            model.currency, model.timezone = currency[1], timezone[1]
            model.payment_terms_days, model.invoice_prefix = payment_terms[1], prefix[1]
            model.feature_flags = dict(flags)

    @rule(continue_with_loaded=st.booleans())
    def save_and_reload(self, continue_with_loaded: bool) -> None:
        assert self.tenant is not None
        assert self.log is not None
        pending = list(self.tenant.pending_events)
        self.log.record(self.tenant, meta=META)
        assert self.tenant.pending_events == []
        self.saved_events.extend(pending)
        loaded = self.log.load(Tenant, self.tenant.id)
        assert loaded is not None
        assert state_of(loaded) == state_of(self.tenant)
        assert [e.originator_version for e in self.log.history(self.tenant.id)] == list(
            range(1, self.model.version + 1)
        )
        if continue_with_loaded:
            self.tenant = loaded

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        if self.tenant is None:
            return
        assert self.model is not None
        for name in MODEL_FIELDS:
            assert getattr(self.tenant, name) == getattr(self.model, name), name
        assert self.tenant.version == self.model.version

    @invariant()
    def closed_is_terminal(self) -> None:
        if self.tenant is not None and self.ever_closed:
            assert self.tenant.status == "closed"

    @invariant()
    def accepts_writes_only_when_active(self) -> None:
        if self.tenant is None:
            return
        if self.tenant.status == "active":
            self.tenant.ensure_accepts_writes()
        else:
            with pytest.raises(TenantNotActive) as caught:
                self.tenant.ensure_accepts_writes()
            assert caught.value.status == self.tenant.status

    @invariant()
    def replay_gives_the_live_state(self) -> None:
        if self.tenant is None:
            return
        events = self.saved_events + list(self.tenant.pending_events)
        assert [e.originator_version for e in events] == list(range(1, self.tenant.version + 1))
        rebuilt = replay(events)
        assert isinstance(rebuilt, Tenant)
        assert state_of(rebuilt) == state_of(self.tenant)

    @precondition(lambda self: self.tenant is not None)
    @invariant()
    def every_event_names_the_tenant(self) -> None:
        for event in self.saved_events + list(self.tenant.pending_events):
            assert event.tenant_id == self.tenant.id
            assert isinstance(event.tenant_id, UUID)


TenantMachine.TestCase.settings = MACHINE_SETTINGS
TestTenantLifecycle = TenantMachine.TestCase


# -- examples the machine might take long to reach ---------------------------------------------


def provision(**overrides: Any) -> Tenant:
    arguments: dict[str, Any] = {
        "tenant_id": uuid4(),
        "name": "Acme",
        "contact_email": "ops@acme.example",
        "phone_number": None,
        "industry": None,
        "plan": None,
        "currency": None,
        "timezone": None,
        "provisioned_by": "user:admin",
        "at": START,
    }
    arguments.update(overrides)
    return Tenant.provision(**arguments)


def test_defaults_are_starter_usd_utc_active() -> None:
    tenant = provision()
    assert (tenant.status, tenant.plan, tenant.currency, tenant.timezone) == (
        "active",
        "starter",
        "USD",
        "UTC",
    )
    assert tenant.version == 1


@pytest.mark.parametrize(
    ("overrides", "api_field"),
    [
        ({"name": "  "}, "name"),
        ({"contact_email": "nobody"}, "contactEmail"),
        ({"phone_number": "ring ring"}, "phoneNumber"),
        ({"industry": "i" * 201}, "industry"),
        ({"plan": "gold"}, "plan"),
        ({"currency": "XYZ"}, "currency"),
        ({"timezone": "Mars/Base"}, "timezone"),
    ],
)
def test_provision_refuses_bad_values_naming_the_field(
    overrides: dict[str, Any], api_field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        provision(**overrides)
    assert caught.value.field == api_field


def test_closed_tenant_refuses_every_command() -> None:
    tenant = provision()
    tenant.suspend(reason=None, at=START)
    tenant.close(reason="contract ended", at=START)
    version = tenant.version
    commands: list[Callable[[], Any]] = [
        lambda: tenant.suspend(reason=None, at=START),
        lambda: tenant.reactivate(at=START),
        lambda: tenant.close(reason=None, at=START),
        lambda: tenant.update(
            name="New", contact_email="a@b.co", phone_number=None, industry=None, at=START
        ),
        lambda: tenant.change_subscription(
            plan="enterprise", seats=5, status="active", renews_on=None, at=START
        ),
        lambda: tenant.change_settings(
            currency="EUR",
            timezone="UTC",
            payment_terms_days=14,
            invoice_prefix="X",
            feature_flags={},
            at=START,
        ),
    ]
    for command in commands:
        with pytest.raises(IllegalTransition):
            command()
    assert tenant.version == version
    assert tenant.status == "closed"


@pytest.mark.parametrize("flag", [" beta", "beta ", " beta\t"])
def test_feature_flag_names_are_trimmed_or_refused(flag: str) -> None:
    tenant = provision()
    refused_field = None
    try:
        tenant.change_settings(
            currency="USD",
            timezone="UTC",
            payment_terms_days=30,
            invoice_prefix="INV",
            feature_flags={flag: True},
            at=START,
        )
    except InvalidValue as error:
        refused_field = error.field
    if refused_field is None:
        assert tenant.feature_flags == {"beta": True}
    else:
        assert refused_field == "featureFlags"
