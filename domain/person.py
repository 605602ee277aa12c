"""Person: a staff record inside a tenant, from hire to leaving (and back).

Lifecycle: active -> inactive (deactivate, with an employment end date) -> active (reactivate).
A photo is uploaded, then approved; only the approved photo is the person's official one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import values
from domain.errors import IllegalTransition, InvalidValue
from domain.events import TenantEvent

ACTIVE, INACTIVE = "active", "inactive"
PHOTO_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_UNITS = 50


@dataclass(frozen=True)
class Profile:
    """The editable facts of a staff record, validated as a whole."""

    first_name: str
    last_name: str
    email: str
    employee_reference: str
    job_title: str
    employment_start_date: date
    employment_end_date: date | None
    line_manager_id: UUID | None
    department: str | None
    cost_centre: str | None

    @classmethod
    def of(cls, source: object) -> Profile:
        """The profile fields of anything that has them as attributes (a command, a person)."""
        return cls(**{name: getattr(source, name) for name in cls.__dataclass_fields__})

    def validated(self, person_id: UUID | None = None) -> Profile:
        if person_id is not None and self.line_manager_id == person_id:
            raise InvalidValue("lineManagerId", "a person cannot be their own line manager")
        return Profile(
            first_name=values.required_text("firstName", self.first_name, 100),
            last_name=values.required_text("lastName", self.last_name, 100),
            email=values.email("email", self.email),
            employee_reference=values.required_text(
                "employeeReference", self.employee_reference, 64
            ),
            job_title=values.required_text("jobTitle", self.job_title),
            employment_start_date=self.employment_start_date,
            employment_end_date=values.date_not_before(
                "employmentEndDate", self.employment_end_date, self.employment_start_date
            ),
            line_manager_id=self.line_manager_id,
            department=values.optional_text("department", self.department),
            cost_centre=values.optional_text("costCentre", self.cost_centre, 64),
        )


class Person(Aggregate):
    TOPIC = "workledger:Person"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:PersonCreated"
        webhook = "person.created"
        first_name: str
        last_name: str
        email: str
        employee_reference: str
        job_title: str
        employment_start_date: date
        employment_end_date: date | None
        line_manager_id: UUID | None
        department: str | None
        cost_centre: str | None
        organisational_units: list[str]

    class Updated(Event):
        """Carries the whole profile after the change, and which fields changed."""

        TOPIC = "workledger:PersonUpdated"

        webhook = "person.updated"
        first_name: str
        last_name: str
        email: str
        employee_reference: str
        job_title: str
        employment_start_date: date
        employment_end_date: date | None
        line_manager_id: UUID | None
        department: str | None
        cost_centre: str | None
        changed_fields: list[str]

        def apply(self, aggregate: Person) -> None:
            aggregate._set_profile(self)

    class Deactivated(Event):
        TOPIC = "workledger:PersonDeactivated"
        webhook = "person.deactivated"
        employment_end_date: date
        reason: str | None

        def apply(self, aggregate: Person) -> None:
            aggregate.status = INACTIVE
            aggregate.employment_end_date = self.employment_end_date

    class Reactivated(Event):
        TOPIC = "workledger:PersonReactivated"
        webhook = "person.reactivated"

        def apply(self, aggregate: Person) -> None:
            aggregate.status = ACTIVE
            aggregate.employment_end_date = None

    class PhotoUploaded(Event):
        TOPIC = "workledger:PersonPhotoUploaded"
        sha256: str
        content_type: str
        size_bytes: int

        def apply(self, aggregate: Person) -> None:
            aggregate.pending_photo = self.sha256

    class PhotoApproved(Event):
        TOPIC = "workledger:PersonPhotoApproved"
        webhook = "person.photo.approved"
        sha256: str

        def apply(self, aggregate: Person) -> None:
            aggregate.photo = self.sha256
            aggregate.pending_photo = None

    class UnitAssigned(Event):
        TOPIC = "workledger:PersonUnitAssigned"
        webhook = "person.unit.assigned"
        unit: str

        def apply(self, aggregate: Person) -> None:
            aggregate.organisational_units.append(self.unit)

    class UnitRemoved(Event):
        TOPIC = "workledger:PersonUnitRemoved"
        webhook = "person.unit.removed"
        unit: str

        def apply(self, aggregate: Person) -> None:
            aggregate.organisational_units.remove(self.unit)

    def __init__(
        self,
        tenant_id: UUID,
        first_name: str,
        last_name: str,
        email: str,
        employee_reference: str,
        job_title: str,
        employment_start_date: date,
        employment_end_date: date | None,
        line_manager_id: UUID | None,
        department: str | None,
        cost_centre: str | None,
        organisational_units: list[str],
    ) -> None:
        self.tenant_id = tenant_id
        self.first_name = first_name
        self.last_name = last_name
        self.email = email
        self.employee_reference = employee_reference
        self.job_title = job_title
        self.employment_start_date = employment_start_date
        self.employment_end_date = employment_end_date
        self.line_manager_id = line_manager_id
        self.department = department
        self.cost_centre = cost_centre
        self.organisational_units = list(organisational_units)
        self.status = ACTIVE
        self.photo: str | None = None
        self.pending_photo: str | None = None

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def hire(
        cls,
        *,
        person_id: UUID,
        tenant_id: UUID,
        profile: Profile,
        units: list[str],
        at: datetime,
    ) -> Person:
        """A new, active staff record."""
        checked = profile.validated(person_id)
        unit_names = [values.unit_name("organisationalUnits", u) for u in units]
        if len(set(unit_names)) != len(unit_names):
            raise InvalidValue("organisationalUnits", "must not repeat a unit")
        if len(unit_names) > MAX_UNITS:
            raise InvalidValue(
                "organisationalUnits", f"a person can be in at most {MAX_UNITS} units"
            )
        return cls._create(
            cls.Created,
            id=person_id,
            tenant_id=tenant_id,
            timestamp=at,
            organisational_units=unit_names,
            **vars(checked),
        )

    def update(self, *, profile: Profile, at: datetime) -> list[str]:
        """Replace the profile; records only real changes and returns the changed field names."""
        checked = profile.validated(self.id)
        current = self.profile()
        changed = [name for name, value in vars(checked).items() if getattr(current, name) != value]
        if not changed:
            return []
        if (
            "employment_end_date" in changed
            and self.status == INACTIVE
            and checked.employment_end_date is None
        ):
            raise InvalidValue("employmentEndDate", "an inactive person needs an end date")
        self.trigger_event(
            self.Updated,
            tenant_id=self.tenant_id,
            timestamp=at,
            changed_fields=changed,
            **vars(checked),
        )
        return changed

    def deactivate(self, *, employment_end_date: date, reason: str | None, at: datetime) -> None:
        if self.status != ACTIVE:
            raise IllegalTransition("person", "deactivate", self.status)
        values.date_not_before("employmentEndDate", employment_end_date, self.employment_start_date)
        self.trigger_event(
            self.Deactivated,
            tenant_id=self.tenant_id,
            timestamp=at,
            employment_end_date=employment_end_date,
            reason=values.optional_text("reason", reason, 500),
        )

    def reactivate(self, *, at: datetime) -> None:
        if self.status != INACTIVE:
            raise IllegalTransition("person", "reactivate", self.status)
        self.trigger_event(self.Reactivated, tenant_id=self.tenant_id, timestamp=at)

    def upload_photo(
        self, *, sha256: str, content_type: str, size_bytes: int, at: datetime
    ) -> None:
        values.one_of("Content-Type", content_type, PHOTO_TYPES)
        if size_bytes <= 0:
            raise InvalidValue("photo", "must not be empty")
        self.trigger_event(
            self.PhotoUploaded,
            tenant_id=self.tenant_id,
            timestamp=at,
            sha256=sha256,
            content_type=content_type,
            size_bytes=size_bytes,
        )

    def approve_photo(self, *, at: datetime) -> None:
        if self.pending_photo is None:
            raise IllegalTransition("person photo", "approve", "not awaiting approval")
        self.trigger_event(
            self.PhotoApproved, tenant_id=self.tenant_id, timestamp=at, sha256=self.pending_photo
        )

    def assign_unit(self, *, unit: str, at: datetime) -> bool:
        """Idempotent: assigning a unit the person is already in records nothing."""
        name = values.unit_name("unit", unit)
        if name in self.organisational_units:
            return False
        if len(self.organisational_units) >= MAX_UNITS:
            raise InvalidValue("unit", f"a person can be in at most {MAX_UNITS} units")
        self.trigger_event(self.UnitAssigned, tenant_id=self.tenant_id, timestamp=at, unit=name)
        return True

    def remove_unit(self, *, unit: str, at: datetime) -> bool:
        """Idempotent: removing a unit the person is not in records nothing."""
        name = unit.strip()  # the same normalisation assign_unit applies
        if name not in self.organisational_units:
            return False
        self.trigger_event(self.UnitRemoved, tenant_id=self.tenant_id, timestamp=at, unit=name)
        return True

    # -- queries --------------------------------------------------------------------------

    def profile(self) -> Profile:
        return Profile.of(self)

    def _set_profile(self, event: Person.Updated) -> None:
        for name in Profile.__dataclass_fields__:
            setattr(self, name, getattr(event, name))
