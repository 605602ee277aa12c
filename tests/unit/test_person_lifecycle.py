"""Person lifecycle as a state machine: hire, profile updates, deactivate/reactivate, photo
upload and approval, organisational units.

Inputs are drawn as (raw, expected) pairs: `expected` is the value the record must hold after
the command, or BAD when the command must be refused with InvalidValue.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from application.event_log import EventLog
from domain.errors import IllegalTransition, InvalidValue
from domain.person import Person, Profile
from tests.unit.support import MACHINE_SETTINGS, META, memory_log, replay

BAD = object()  # marks an input the domain must refuse
KEEP = object()  # resend the value the person already has
SELF = object()  # stands for the person's own id (not known before hire)
TENANT = UUID("00000000-0000-4000-8000-000000000001")
MANAGER = UUID("00000000-0000-4000-8000-0000000000aa")
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
MAX_UNITS = 50  # "a person can be in at most 50 units"


def pairs(*items: tuple[Any, Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    return st.sampled_from(items)


def good(strategy: st.SearchStrategy[tuple[Any, Any]]) -> st.SearchStrategy[tuple[Any, Any]]:
    return strategy.filter(lambda p: p[1] is not BAD)


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # refused by domain.values


def unit_or_bad(raw: str) -> Any:
    if CONTROL.search(raw):
        return BAD
    text = raw.strip()
    return text if 0 < len(text) <= 100 and "/" not in text else BAD


first_names = pairs(
    ("Ada", "Ada"),
    (" Grace ", "Grace"),
    ("Zoë", "Zoë"),
    ("f" * 100, "f" * 100),
    ("", BAD),
    ("  ", BAD),
    ("f" * 101, BAD),
)
last_names = pairs(
    ("Lovelace", "Lovelace"),
    ("Hopper\t", "Hopper"),
    ("l" * 100, "l" * 100),
    ("", BAD),
    ("l" * 101, BAD),
)
emails = pairs(
    ("ada@example.com", "ada@example.com"),
    (" grace@navy.example ", "grace@navy.example"),
    ("a@b.co", "a@b.co"),
    ("nope", BAD),
    ("a@b", BAD),
    ("", BAD),
)
references = pairs(
    ("E-001", "E-001"),
    (" E-002 ", "E-002"),
    ("r" * 64, "r" * 64),
    ("r" * 65, BAD),
    ("", BAD),
    ("  ", BAD),
)
job_titles = pairs(
    ("Engineer", "Engineer"),
    (" Analyst ", "Analyst"),
    ("j" * 200, "j" * 200),
    ("j" * 201, BAD),
    ("", BAD),
)
departments = pairs(
    (None, None),
    ("", None),
    ("   ", None),
    (" Finance ", "Finance"),
    ("d" * 200, "d" * 200),
    ("d" * 201, BAD),
)
cost_centres = pairs(
    (None, None),
    ("", None),
    ("CC-1", "CC-1"),
    (" CC-2 ", "CC-2"),
    ("c" * 64, "c" * 64),
    ("c" * 65, BAD),
)
start_dates = st.sampled_from([date(2020, 1, 1), date(2023, 6, 15), date(2024, 2, 29)])
end_offsets = st.none() | st.sampled_from([-400, -1, 0, 1, 30, 365])
managers = st.sampled_from([None, MANAGER, SELF])
units = st.one_of(
    pairs(
        ("Sales", "Sales"),
        (" Sales ", "Sales"),
        ("Ops", "Ops"),
        ("R&D", "R&D"),
        ("Field Service", "Field Service"),
        ("u" * 100, "u" * 100),
        ("", BAD),
        ("  ", BAD),
        ("a/b", BAD),
        ("/", BAD),
        ("u" * 101, BAD),
    ),
    st.text(max_size=6).map(lambda s: (s, unit_or_bad(s))),
)
reasons = pairs(
    (None, None),
    ("", None),
    (" moved abroad ", "moved abroad"),
    ("r" * 500, "r" * 500),
    ("r" * 501, BAD),
)
content_types = pairs(
    ("image/png", "image/png"),
    ("image/jpeg", "image/jpeg"),
    ("image/webp", "image/webp"),
    ("image/gif", BAD),
    ("IMAGE/PNG", BAD),
    ("text/plain", BAD),
    ("", BAD),
)
photo_sizes = st.sampled_from([-1, 0, 1, 2_000_000]).map(lambda n: (n, n if n > 0 else BAD))
digests = st.binary(max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())

PROFILE_API_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "employee_reference": "employeeReference",
    "job_title": "jobTitle",
    "employment_start_date": "employmentStartDate",
    "employment_end_date": "employmentEndDate",
    "line_manager_id": "lineManagerId",
    "department": "department",
    "cost_centre": "costCentre",
}
TEXT_POOLS = {
    "first_name": first_names,
    "last_name": last_names,
    "email": emails,
    "employee_reference": references,
    "job_title": job_titles,
    "department": departments,
    "cost_centre": cost_centres,
}


@dataclass
class PersonModel:
    profile: dict[str, Any]
    units: list[str]
    status: str = "active"
    photo: str | None = None
    pending_photo: str | None = None
    version: int = 1


def state_of(person: Person) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(person).items() if k != "_pending_events"})


@st.composite
def profile_drafts(draw: st.DrawFn, allow_keep: bool) -> dict[str, tuple[Any, Any]]:
    """A (raw, expected) pair for every Profile field, or KEEP to resend the current value."""
    draft: dict[str, tuple[Any, Any]] = {}
    for name, pool in TEXT_POOLS.items():
        keep = allow_keep and draw(st.booleans())
        draft[name] = (KEEP, None) if keep else draw(pool)
    keep = allow_keep and draw(st.booleans())
    draft["employment_start_date"] = (KEEP, None) if keep else (d := draw(start_dates), d)
    offset = draw(end_offsets) if not (allow_keep and draw(st.booleans())) else KEEP
    draft["employment_end_date"] = (offset, None)  # resolved against the start date later
    manager = draw(managers) if not (allow_keep and draw(st.booleans())) else KEEP
    draft["line_manager_id"] = (manager, None)
    return draft


class PersonMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.person: Person | None = None
        self.model: PersonModel | None = None
        self.saved_events: list[Any] = []
        self.log: EventLog | None = None
        self.clock = START

    def now(self) -> datetime:
        self.clock += timedelta(minutes=3, microseconds=1)
        return self.clock

    def resolve(
        self,
        draft: dict[str, tuple[Any, Any]],
        person_id: UUID,
        pad: bool,
        current: dict[str, Any] | None,
    ) -> tuple[Profile, dict[str, Any], list[str]]:
        """The Profile to send, the profile expected afterwards and the API names of bad fields."""
        raw: dict[str, Any] = {}
        expected: dict[str, Any] = {}
        bad: list[str] = []
        for name in TEXT_POOLS:
            value, outcome = draft[name]
            if value is KEEP:
                assert current is not None
                kept = current[name]
                value = f" {kept}\t" if pad and kept is not None else kept
                outcome = kept
            raw[name], expected[name] = value, outcome
            if outcome is BAD:
                bad.append(PROFILE_API_NAMES[name])
        start, _ = draft["employment_start_date"]
        if start is KEEP:
            assert current is not None
            start = current["employment_start_date"]
        raw["employment_start_date"] = expected["employment_start_date"] = start
        offset, _ = draft["employment_end_date"]
        if offset is KEEP:
            assert current is not None
            end = current["employment_end_date"]
        else:
            end = None if offset is None else start + timedelta(days=offset)
        raw["employment_end_date"] = expected["employment_end_date"] = end
        if end is not None and end < start:
            bad.append("employmentEndDate")
        manager, _ = draft["line_manager_id"]
        if manager is KEEP:
            assert current is not None
            manager = current["line_manager_id"]
        elif manager is SELF:
            manager = person_id
        raw["line_manager_id"] = expected["line_manager_id"] = manager
        if manager == person_id:
            bad.append("lineManagerId")
        return Profile(**raw), expected, bad

    def attempt(
        self,
        command: Callable[[], Any],
        *,
        illegal: bool,
        bad_fields: list[str],
        records: bool = True,
    ) -> Any:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        before = state_of(person)
        pending_before = list(person.pending_events)
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
                assert error.aggregate.startswith("person")
            else:
                assert isinstance(error, InvalidValue)
                assert error.field in bad_fields, (error.field, bad_fields)
            assert state_of(person) == before
            assert person.pending_events == pending_before
            return None
        result = command()
        new_events = person.pending_events[len(pending_before) :]
        if records:
            assert len(new_events) == 1
            model.version += 1
        else:
            assert new_events == []
            assert state_of(person) == before
        return result

    # -- rules -----------------------------------------------------------------------------

    @initialize(
        draft=profile_drafts(allow_keep=False),
        unit_names=st.one_of(
            st.lists(good(units), max_size=5, unique_by=lambda p: p[1]),
            st.integers(min_value=MAX_UNITS - 3, max_value=MAX_UNITS).map(
                lambda n: [(f" Unit {i}", f"Unit {i}") for i in range(n)]
            ),
        ),
    )
    def hire(self, draft: dict[str, tuple[Any, Any]], unit_names: list[tuple[str, str]]) -> None:
        person_id = uuid4()
        # Only valid hires start a machine; refusals at hire are covered by example tests.
        for name in TEXT_POOLS:
            if draft[name][1] is BAD:
                draft[name] = (
                    (f"valid {name}", f"valid {name}")
                    if name != "email"
                    else ("x@y.example", "x@y.example")
                )
        if draft["line_manager_id"][0] is SELF:
            draft["line_manager_id"] = (None, None)
        if draft["employment_end_date"][0] is not None and draft["employment_end_date"][0] < 0:
            draft["employment_end_date"] = (None, None)
        profile, expected, bad = self.resolve(draft, person_id, pad=False, current=None)
        assert bad == []
        self.person = Person.hire(
            person_id=person_id,
            tenant_id=TENANT,
            profile=profile,
            units=[raw for raw, _ in unit_names],
            at=self.now(),
        )
        self.model = PersonModel(profile=expected, units=[norm for _, norm in unit_names])
        assert self.person.id == person_id
        assert self.person.status == "active"
        self.log = memory_log()

    @rule(draft=profile_drafts(allow_keep=True), pad=st.booleans())
    def update(self, draft: dict[str, tuple[Any, Any]], pad: bool) -> None:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        profile, expected, bad = self.resolve(draft, person.id, pad, model.profile)
        changed = {name for name in PROFILE_API_NAMES if expected.get(name) != model.profile[name]}
        if not bad and model.status == "inactive" and expected["employment_end_date"] is None:
            bad.append("employmentEndDate")  # an inactive person needs an end date
        result = self.attempt(
            lambda: person.update(profile=profile, at=self.now()),
            illegal=False,
            bad_fields=bad,
            records=bool(changed),
        )
        if bad:
            return
        assert sorted(result) == sorted(changed)
        assert len(result) == len(set(result))
        if changed:
            event = person.pending_events[-1]
            assert isinstance(event, Person.Updated)
            assert list(event.changed_fields) == list(result)
        model.profile = expected

    @rule(offset=st.sampled_from([-30, -1, 0, 1, 90]), reason=reasons)
    def deactivate(self, offset: int, reason: tuple[Any, Any]) -> None:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        end = model.profile["employment_start_date"] + timedelta(days=offset)
        bad = (["employmentEndDate"] if offset < 0 else []) + (
            ["reason"] if reason[1] is BAD else []
        )
        illegal = model.status != "active"
        self.attempt(
            lambda: person.deactivate(employment_end_date=end, reason=reason[0], at=self.now()),
            illegal=illegal,
            bad_fields=bad,
        )
        if not illegal and not bad:
            model.status = "inactive"
            model.profile["employment_end_date"] = end

    @rule()
    def reactivate(self) -> None:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        illegal = model.status != "inactive"
        self.attempt(lambda: person.reactivate(at=self.now()), illegal=illegal, bad_fields=[])
        if not illegal:
            model.status = "active"
            model.profile["employment_end_date"] = None

    @rule(digest=digests, content_type=content_types, size=photo_sizes)
    def upload_photo(
        self, digest: str, content_type: tuple[str, Any], size: tuple[int, Any]
    ) -> None:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        bad = (["Content-Type"] if content_type[1] is BAD else []) + (
            ["photo"] if size[1] is BAD else []
        )
        self.attempt(
            lambda: person.upload_photo(
                sha256=digest, content_type=content_type[0], size_bytes=size[0], at=self.now()
            ),
            illegal=False,
            bad_fields=bad,
        )
        if not bad:
            model.pending_photo = digest

    @rule()
    def approve_photo(self) -> None:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        illegal = model.pending_photo is None
        self.attempt(lambda: person.approve_photo(at=self.now()), illegal=illegal, bad_fields=[])
        if not illegal:
            model.photo, model.pending_photo = model.pending_photo, None

    @rule(unit=units)
    def assign_unit(self, unit: tuple[str, Any]) -> None:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        raw, name = unit
        if name is BAD:
            self.attempt(
                lambda: person.assign_unit(unit=raw, at=self.now()),
                illegal=False,
                bad_fields=["unit"],
            )
            return
        if name in model.units:
            result = self.attempt(
                lambda: person.assign_unit(unit=raw, at=self.now()),
                illegal=False,
                bad_fields=[],
                records=False,
            )
            assert result is False
            return
        if len(model.units) >= MAX_UNITS:
            self.attempt(
                lambda: person.assign_unit(unit=raw, at=self.now()),
                illegal=False,
                bad_fields=["unit"],
            )
            return
        result = self.attempt(
            lambda: person.assign_unit(unit=raw, at=self.now()), illegal=False, bad_fields=[]
        )
        assert result is True
        model.units.append(name)

    @rule(data=st.data(), known=st.booleans())
    def remove_unit(self, data: st.DataObject, known: bool) -> None:
        person, model = self.person, self.model
        assert person is not None
        assert model is not None
        if known and model.units:
            name = data.draw(st.sampled_from(model.units))
        else:
            name = data.draw(st.sampled_from(["Nowhere", "Sales", "Ops", "R&D"]))
        present = name in model.units
        result = self.attempt(
            lambda: person.remove_unit(unit=name, at=self.now()),
            illegal=False,
            bad_fields=[],
            records=present,
        )
        assert result is present
        if present:
            model.units.remove(name)

    @rule(continue_with_loaded=st.booleans())
    def save_and_reload(self, continue_with_loaded: bool) -> None:
        assert self.person is not None
        assert self.log is not None
        pending = list(self.person.pending_events)
        self.log.record(self.person, meta=META)
        self.saved_events.extend(pending)
        loaded = self.log.load(Person, self.person.id)
        assert loaded is not None
        assert state_of(loaded) == state_of(self.person)
        if continue_with_loaded:
            self.person = loaded

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        if self.person is None:
            return
        model = self.model
        assert model is not None
        assert vars(self.person.profile()) == model.profile
        for name in PROFILE_API_NAMES:
            assert getattr(self.person, name) == model.profile[name], name
        assert self.person.status == model.status
        assert self.person.photo == model.photo
        assert self.person.pending_photo == model.pending_photo
        assert self.person.version == model.version

    @invariant()
    def units_never_repeat(self) -> None:
        if self.person is None:
            return
        assert self.model is not None
        units_now = list(self.person.organisational_units)
        assert len(units_now) == len(set(units_now))
        assert units_now == self.model.units
        assert len(units_now) <= MAX_UNITS

    @invariant()
    def end_date_never_before_start(self) -> None:
        if self.person is None:
            return
        end = self.person.employment_end_date
        assert end is None or end >= self.person.employment_start_date
        if self.person.status == "inactive":
            assert end is not None

    @invariant()
    def replay_gives_the_live_state(self) -> None:
        if self.person is None:
            return
        events = self.saved_events + list(self.person.pending_events)
        assert [e.originator_version for e in events] == list(range(1, self.person.version + 1))
        assert all(e.tenant_id == TENANT for e in events)
        rebuilt = replay(events)
        assert isinstance(rebuilt, Person)
        assert state_of(rebuilt) == state_of(self.person)


PersonMachine.TestCase.settings = MACHINE_SETTINGS
TestPersonLifecycle = PersonMachine.TestCase


# -- examples ------------------------------------------------------------------------------


def a_profile(**overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "employee_reference": "E-1",
        "job_title": "Engineer",
        "employment_start_date": date(2024, 1, 8),
        "employment_end_date": None,
        "line_manager_id": None,
        "department": None,
        "cost_centre": None,
    }
    values.update(overrides)
    return Profile(**values)


def hire(units: list[str] | None = None, **overrides: Any) -> Person:
    return Person.hire(
        person_id=overrides.pop("person_id", uuid4()),
        tenant_id=TENANT,
        profile=a_profile(**overrides),
        units=units or [],
        at=START,
    )


def test_profile_fields_are_what_the_machine_models() -> None:
    assert {f.name for f in fields(Profile)} == set(PROFILE_API_NAMES)


@pytest.mark.parametrize(
    ("units", "overrides", "api_field"),
    [
        (["Sales", " Sales "], {}, "organisationalUnits"),
        (["a/b"], {}, "organisationalUnits"),
        ([""], {}, "organisationalUnits"),
        ([], {"employment_end_date": date(2024, 1, 7)}, "employmentEndDate"),
        ([], {"first_name": " "}, "firstName"),
        ([], {"email": "ada"}, "email"),
        ([], {"employee_reference": "r" * 65}, "employeeReference"),
        ([], {"cost_centre": "c" * 65}, "costCentre"),
    ],
)
def test_hire_refuses_bad_values_naming_the_field(
    units: list[str], overrides: dict[str, Any], api_field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        hire(units, **overrides)
    assert caught.value.field == api_field


def test_hire_refuses_own_line_manager() -> None:
    person_id = uuid4()
    with pytest.raises(InvalidValue) as caught:
        hire(person_id=person_id, line_manager_id=person_id)
    assert caught.value.field == "lineManagerId"


def test_update_refuses_own_line_manager() -> None:
    person = hire()
    with pytest.raises(InvalidValue) as caught:
        person.update(profile=a_profile(line_manager_id=person.id), at=START)
    assert caught.value.field == "lineManagerId"
    assert person.version == 1


def test_inactive_person_keeps_an_end_date() -> None:
    person = hire()
    person.deactivate(employment_end_date=date(2024, 6, 30), reason=None, at=START)
    with pytest.raises(InvalidValue) as caught:
        person.update(profile=a_profile(employment_end_date=None), at=START)
    assert caught.value.field == "employmentEndDate"
    assert person.employment_end_date == date(2024, 6, 30)
    changed = person.update(
        profile=a_profile(employment_end_date=date(2024, 7, 31), job_title="Senior Engineer"),
        at=START,
    )
    assert sorted(changed) == ["employment_end_date", "job_title"]


def test_deactivate_twice_and_reactivate_active_are_illegal() -> None:
    person = hire()
    with pytest.raises(IllegalTransition):
        person.reactivate(at=START)
    person.deactivate(employment_end_date=date(2024, 6, 30), reason="left", at=START)
    with pytest.raises(IllegalTransition):
        person.deactivate(employment_end_date=date(2024, 7, 30), reason=None, at=START)
    assert person.employment_end_date == date(2024, 6, 30)
    assert person.version == 2


def test_hire_applies_the_unit_limit() -> None:
    with pytest.raises(InvalidValue) as caught:
        hire([f"Unit {i}" for i in range(MAX_UNITS + 1)])
    assert caught.value.field == "organisationalUnits"


def test_remove_unit_normalises_like_assign_unit() -> None:
    person = hire()
    assert person.assign_unit(unit=" Sales ", at=START) is True
    assert person.remove_unit(unit=" Sales ", at=START) is True
    assert person.organisational_units == []
