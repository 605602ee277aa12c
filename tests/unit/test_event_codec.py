"""The stored form of events: MsgspecMapper must give back exactly the event it was given,
with its types, and stored topics must be the stable `workledger:` names."""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import TopicError, get_topic, resolve_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.context import EventMeta
from application.event_log import EventLog, MsgspecMapper
from domain.person import Person, Profile
from domain.tenant import Tenant
from domain.uniqueness import UniqueKey
from tests.unit.support import BIDI_CONTROLS, accepted_characters

mapper = MsgspecMapper()
codec_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def trimmed_text(max_size: int) -> st.SearchStrategy[str]:
    """Any text without surrounding white space (the domain trims), non-ASCII included, without
    the control characters the domain refuses."""
    printable = accepted_characters
    return st.text(printable, min_size=1, max_size=max_size).map(str.strip).filter(bool)


no_space_or_at = st.characters(
    blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs"), blacklist_characters="@" + BIDI_CONTROLS
)
email_parts = st.text(no_space_or_at, min_size=1, max_size=12).filter(lambda s: not s.isspace())
emails = st.builds(
    lambda local, host, tld: f"{local}@{host}.{tld}",
    email_parts,
    email_parts,
    email_parts.filter(lambda s: "." not in s),
)
moments = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999),
    timezones=st.just(UTC),
)
start_dates = st.dates(max_value=date(9000, 1, 1))
optional_text = st.none() | trimmed_text(30)
metas = st.builds(EventMeta, actor=st.text(max_size=30), request_id=st.text(max_size=30))
units = st.lists(trimmed_text(20).filter(lambda s: "/" not in s), max_size=4, unique=True)
flags = st.dictionaries(trimmed_text(20), st.booleans(), max_size=5)


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    start = draw(start_dates)
    end_days = draw(st.none() | st.integers(min_value=0, max_value=5000))
    return Profile(
        first_name=draw(trimmed_text(30)),
        last_name=draw(trimmed_text(30)),
        email=draw(emails),
        employee_reference=draw(trimmed_text(20)),
        job_title=draw(trimmed_text(40)),
        employment_start_date=start,
        employment_end_date=None if end_days is None else start + timedelta(days=end_days),
        line_manager_id=draw(st.none() | st.uuids()),
        department=draw(optional_text),
        cost_centre=draw(optional_text),
    )


def round_trip(event: Any, meta: EventMeta | None) -> tuple[Any, EventMeta, StoredEvent]:
    stored = mapper.to_stored_event(event, meta)
    decoded, decoded_meta = mapper.decode(stored)
    return decoded, decoded_meta, stored


def assert_same_event(decoded: Any, event: Any) -> None:
    assert type(decoded) is type(event)
    assert decoded == event
    assert vars(decoded) == vars(event)
    for name, value in vars(event).items():
        assert type(getattr(decoded, name)) is type(value), name
    assert decoded.timestamp.tzinfo is not None
    assert decoded.timestamp.utcoffset() == timedelta(0)
    assert decoded.timestamp.microsecond == event.timestamp.microsecond


@codec_settings
@given(profiles(), units, st.uuids(), st.uuids(), moments, metas)
def test_person_created_round_trips(
    profile: Profile,
    unit_names: list[str],
    person_id: UUID,
    tenant_id: UUID,
    at: datetime,
    meta: EventMeta,
) -> None:
    person = Person.hire(
        person_id=person_id, tenant_id=tenant_id, profile=profile, units=unit_names, at=at
    )
    (created,) = person.pending_events
    decoded, decoded_meta, stored = round_trip(created, meta)
    assert_same_event(decoded, created)
    assert decoded_meta == meta
    assert stored.topic == "workledger:PersonCreated"
    assert type(decoded.employment_start_date) is date
    assert isinstance(decoded.tenant_id, UUID)
    assert decoded.timestamp == at
    # And the aggregate rebuilt from the decoded event is the one that was hired.
    rebuilt = decoded.mutate(None)
    assert rebuilt.profile() == person.profile()
    assert rebuilt.organisational_units == person.organisational_units


@codec_settings
@given(profiles(), profiles(), st.uuids(), moments, moments, metas)
def test_person_updated_round_trips(
    first: Profile,
    second: Profile,
    tenant_id: UUID,
    hired_at: datetime,
    updated_at: datetime,
    meta: EventMeta,
) -> None:
    person = Person.hire(
        person_id=uuid4(), tenant_id=tenant_id, profile=first, units=[], at=hired_at
    )
    changed = person.update(profile=second, at=updated_at)
    if not changed:
        assert len(person.pending_events) == 1
        return
    updated = person.pending_events[-1]
    decoded, decoded_meta, stored = round_trip(updated, meta)
    assert_same_event(decoded, updated)
    assert decoded_meta == meta
    assert list(decoded.changed_fields) == changed
    assert stored.topic == "workledger:PersonUpdated"
    assert stored.originator_version == 2


@codec_settings
@given(
    st.sampled_from(["USD", "eur", "JPY", "GBP"]),
    st.sampled_from(["UTC", "Europe/London", "Asia/Kathmandu", "America/St_Johns"]),
    st.integers(min_value=0, max_value=365),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,11}\Z"),
    flags,
    moments,
    metas,
)
def test_tenant_settings_changed_round_trips(
    currency: str,
    timezone: str,
    terms: int,
    prefix: str,
    feature_flags: dict[str, bool],
    at: datetime,
    meta: EventMeta,
) -> None:
    tenant = Tenant.provision(
        tenant_id=uuid4(),
        name="Acme",
        contact_email="ops@acme.example",
        phone_number=None,
        industry=None,
        plan=None,
        currency=None,
        timezone=None,
        provisioned_by="user:x",
        at=at,
    )
    tenant.change_settings(
        currency=currency,
        timezone=timezone,
        payment_terms_days=terms,
        invoice_prefix=prefix,
        feature_flags=feature_flags,
        at=at,
    )
    event = tenant.pending_events[-1]
    decoded, decoded_meta, stored = round_trip(event, meta)
    assert_same_event(decoded, event)
    assert decoded.feature_flags == feature_flags
    assert all(type(v) is bool for v in decoded.feature_flags.values())
    assert decoded_meta == meta
    assert stored.topic == "workledger:TenantSettingsChanged"


@codec_settings
@given(st.none() | st.dates(), st.integers(min_value=1, max_value=1_000_000), moments)
def test_tenant_subscription_changed_keeps_dates_and_nulls(
    renews_on: date | None, seats: int, at: datetime
) -> None:
    tenant = Tenant.provision(
        tenant_id=uuid4(),
        name="Acme",
        contact_email="ops@acme.example",
        phone_number="+1 555 0100",
        industry=None,
        plan="enterprise",
        currency=None,
        timezone=None,
        provisioned_by="user:x",
        at=at,
    )
    tenant.change_subscription(
        plan="professional", seats=seats, status="past_due", renews_on=renews_on, at=at
    )
    for event in tenant.pending_events:
        decoded, _, _ = round_trip(event, None)
        assert_same_event(decoded, event)
    decoded, _, _ = round_trip(tenant.pending_events[-1], None)
    if renews_on is None:
        assert decoded.renews_on is None
    else:
        assert type(decoded.renews_on) is date


def test_event_without_meta_still_decodes() -> None:
    tenant = Tenant.provision(
        tenant_id=uuid4(),
        name="Acme",
        contact_email="ops@acme.example",
        phone_number=None,
        industry=None,
        plan=None,
        currency=None,
        timezone=None,
        provisioned_by="user:x",
        at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    decoded, meta, _ = round_trip(tenant.pending_events[0], None)
    assert decoded == tenant.pending_events[0]
    assert isinstance(meta, EventMeta)


def test_unknown_topic_is_refused() -> None:
    tenant = Tenant.provision(
        tenant_id=uuid4(),
        name="Acme",
        contact_email="ops@acme.example",
        phone_number=None,
        industry=None,
        plan=None,
        currency=None,
        timezone=None,
        provisioned_by="user:x",
        at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    stored = mapper.to_stored_event(tenant.pending_events[0], None)
    for topic in ("workledger:NoSuchEvent", "domain.tenant:Tenant.Vanished"):
        bogus = StoredEvent(
            originator_id=stored.originator_id,
            originator_version=1,
            topic=topic,
            state=stored.state,
        )
        with pytest.raises(TopicError):
            mapper.decode(bogus)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profiles(), profiles(), units, moments, metas)
def test_generated_events_round_trip_through_the_sqlite_log(
    first: Profile, second: Profile, unit_names: list[str], at: datetime, meta: EventMeta
) -> None:
    log = EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    person = Person.hire(
        person_id=uuid4(), tenant_id=uuid4(), profile=first, units=unit_names, at=at
    )
    person.update(profile=second, at=at)
    events = list(person.pending_events)
    log.record(person, meta=meta)
    recorded = log.read(0, 10)
    assert [r.event for r in recorded] == events
    assert all(r.meta == meta for r in recorded)
    loaded = log.load(Person, person.id)
    assert loaded is not None
    assert loaded.profile() == person.profile()
    assert loaded.organisational_units == person.organisational_units


def test_events_round_trip_through_the_sqlite_log() -> None:
    log = EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    at = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    person = Person.hire(
        person_id=uuid4(),
        tenant_id=uuid4(),
        profile=Profile(
            "Zoë",
            "Ñúñez",
            "zoë@exämple.de",
            "E-1 \u2603",
            "Ingénieur",
            date(2024, 2, 29),
            None,
            uuid4(),
            'R&D "quoted"',
            None,
        ),
        units=["Sales", "日本"],
        at=at,
    )
    person.update(
        profile=Profile(
            "Zoë",
            "Ñúñez",
            "zoë@exämple.de",
            "E-1 \u2603",
            "Ingénieur",
            date(2024, 2, 29),
            date(2025, 1, 1),
            None,
            None,
            "CC\n1",
        ),
        at=at + timedelta(microseconds=1),
    )
    events = list(person.pending_events)
    meta = EventMeta(actor="apikey:\u00e9", request_id="r-\u2028-1")
    position = log.record(person, meta=meta)
    recorded = log.read(0, 10)
    assert position == recorded[-1].position
    assert [r.event for r in recorded] == events
    assert all(r.meta == meta for r in recorded)
    assert [r.topic for r in recorded] == ["workledger:PersonCreated", "workledger:PersonUpdated"]
    loaded = log.load(Person, person.id)
    assert loaded is not None
    assert loaded.profile() == person.profile()


# -- stable topics ---------------------------------------------------------------------------


def event_classes(aggregate: type[Aggregate]) -> list[type[Any]]:
    return [
        cls
        for _, cls in inspect.getmembers(aggregate, inspect.isclass)
        if issubclass(cls, Aggregate.Event)
        and cls.__qualname__.startswith(aggregate.__name__)
        and cls.__name__ != "Event"
    ]


ALL_EVENT_CLASSES = [cls for agg in (Tenant, Person, UniqueKey) for cls in event_classes(agg)]


def test_the_aggregates_have_events() -> None:
    names = {cls.__qualname__ for cls in ALL_EVENT_CLASSES}
    assert {
        "Tenant.Created",
        "Tenant.SettingsChanged",
        "Person.Created",
        "Person.Updated",
        "Person.UnitRemoved",
        "UniqueKey.Released",
    } <= names


@pytest.mark.parametrize("cls", ALL_EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_stored_topic_is_the_stable_name(cls: type[Any]) -> None:
    aggregate_name, _, event_name = cls.__qualname__.partition(".")
    expected = f"workledger:{aggregate_name}{event_name}"
    assert cls.__dict__.get("TOPIC") == expected
    assert get_topic(cls) == expected
    assert resolve_topic(expected) is cls


@pytest.mark.parametrize("aggregate", [Tenant, Person, UniqueKey], ids=lambda a: a.__name__)
def test_aggregate_topic_is_the_stable_name(aggregate: type[Aggregate]) -> None:
    assert resolve_topic(f"workledger:{aggregate.__name__}") is aggregate


def test_topics_written_to_the_store_are_stable_names() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    tenant = Tenant.provision(
        tenant_id=uuid4(),
        name="Acme",
        contact_email="ops@acme.example",
        phone_number=None,
        industry=None,
        plan=None,
        currency=None,
        timezone=None,
        provisioned_by="user:x",
        at=at,
    )
    tenant.suspend(reason=None, at=at)
    tenant.reactivate(at=at)
    tenant.close(reason=None, at=at)
    key = UniqueKey.claim_new(
        scope="tenant.name",
        value="Acme",
        owner_id=tenant.id,
        tenant_id=tenant.id,
        platform_wide=True,
        at=at,
    )
    key.release(owner_id=tenant.id, at=at)
    for event in [*tenant.pending_events, *key.pending_events]:
        stored = mapper.to_stored_event(event, None)
        assert stored.topic.startswith("workledger:")
        assert "domain" not in stored.topic
        assert stored.topic == f"workledger:{type(event).__qualname__.replace('.', '')}"
        if hasattr(event, "originator_topic"):  # Created events name the aggregate class too
            assert event.originator_topic == f"workledger:{type(event).__qualname__.split('.')[0]}"
            assert b"workledger:" in stored.state
            assert b"domain." not in stored.state
