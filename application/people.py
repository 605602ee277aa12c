"""People use cases: staff records inside a tenant, their units and photos."""

from __future__ import annotations

import hashlib
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate
from msgspec import UNSET, UnsetType

from application.claims import change_claim, claim, optimistically, retry_once
from application.commands import Command
from application.context import Context
from application.errors import InvalidRequest, NotFound
from application.event_log import EventLog
from application.ports import BlobStore, Clock, IdGenerator
from application.results import Written
from application.tenancy import active_tenant
from domain.person import Person, Profile
from domain.tenant import Tenant

EMAIL_SCOPE = "person.email"
REFERENCE_SCOPE = "person.employeeReference"
MAX_PHOTO_BYTES = 5 * 1024 * 1024


class CreatePerson(Command):
    first_name: str
    last_name: str
    email: str
    employee_reference: str
    job_title: str
    employment_start_date: date
    employment_end_date: date | None = None
    line_manager_id: UUID | None = None
    department: str | None = None
    cost_centre: str | None = None
    organisational_units: list[str] = []

    def profile(self) -> Profile:
        return Profile.of(self)


class PatchPerson(Command):
    """A partial update: absent fields keep their value; `null` clears an optional one."""

    first_name: str | UnsetType = UNSET
    last_name: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    employee_reference: str | UnsetType = UNSET
    job_title: str | UnsetType = UNSET
    employment_start_date: date | UnsetType = UNSET
    employment_end_date: date | UnsetType | None = UNSET
    line_manager_id: UUID | UnsetType | None = UNSET
    department: str | UnsetType | None = UNSET
    cost_centre: str | UnsetType | None = UNSET

    def applied_to(self, profile: Profile) -> Profile:
        given = {
            name: value
            for name in Profile.__dataclass_fields__
            if (value := getattr(self, name)) is not UNSET
        }
        return Profile(**{**vars(profile), **given})


class DeactivatePerson(Command):
    employment_end_date: date
    reason: str | None = None


class AssignUnit(Command):
    unit: str


class PeopleCommands:
    def __init__(self, log: EventLog, clock: Clock, ids: IdGenerator, blobs: BlobStore) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids
        self._blobs = blobs

    def create(self, ctx: Context, cmd: CreatePerson) -> Written:
        ctx.require("person:write")
        return optimistically(
            lambda assume_new: self.hire(ctx, self._ids.new_id(), cmd, assume_new=assume_new)
        )

    def hire(
        self, ctx: Context, person_id: UUID, cmd: CreatePerson, *, assume_new: bool = False
    ) -> Written:
        """Create a person with a given id (the recruitment import chooses its own)."""
        tenant = active_tenant(self._log, ctx)
        now = self._clock.now()
        profile = cmd.profile()
        self._check_line_manager(tenant.id, profile.line_manager_id)
        person = Person.hire(
            person_id=person_id,
            tenant_id=tenant.id,
            profile=profile,
            units=cmd.organisational_units,
            at=now,
        )
        keys = [
            claim(
                self._log,
                assume_new=assume_new,
                scope=scope,
                value=value,
                owner_id=person.id,
                tenant_id=tenant.id,
                platform_wide=False,
                at=now,
            )
            for scope, value in (
                (EMAIL_SCOPE, person.email),
                (REFERENCE_SCOPE, person.employee_reference),
            )
        ]
        position = self._log.record(person, *keys, meta=ctx.meta)
        return Written(id=person.id, version=person.version, position=position, created=True)

    def patch(
        self, ctx: Context, person_id: UUID, cmd: PatchPerson, if_match: int | None
    ) -> Written:
        ctx.require("person:write")

        def run() -> Written:
            tenant, person = self._person(ctx, person_id, if_match)
            before = person.profile()
            after = cmd.applied_to(before)
            if after.line_manager_id != before.line_manager_id:
                self._check_line_manager(tenant.id, after.line_manager_id)
            now = self._clock.now()
            person.update(profile=after, at=now)
            keys = [
                *change_claim(
                    self._log,
                    scope=EMAIL_SCOPE,
                    old=before.email,
                    new=person.email,
                    owner_id=person.id,
                    tenant_id=tenant.id,
                    platform_wide=False,
                    at=now,
                ),
                *change_claim(
                    self._log,
                    scope=REFERENCE_SCOPE,
                    old=before.employee_reference,
                    new=person.employee_reference,
                    owner_id=person.id,
                    tenant_id=tenant.id,
                    platform_wide=False,
                    at=now,
                ),
            ]
            return self._save(ctx, person, *keys)

        return retry_once(run)

    def deactivate(
        self, ctx: Context, person_id: UUID, cmd: DeactivatePerson, if_match: int | None
    ) -> Written:
        ctx.require("person:write")
        _, person = self._person(ctx, person_id, if_match)
        person.deactivate(
            employment_end_date=cmd.employment_end_date, reason=cmd.reason, at=self._clock.now()
        )
        return self._save(ctx, person)

    def reactivate(self, ctx: Context, person_id: UUID, if_match: int | None) -> Written:
        ctx.require("person:write")
        _, person = self._person(ctx, person_id, if_match)
        person.reactivate(at=self._clock.now())
        return self._save(ctx, person)

    def assign_unit(
        self, ctx: Context, person_id: UUID, cmd: AssignUnit, if_match: int | None
    ) -> Written:
        ctx.require("person:write")
        _, person = self._person(ctx, person_id, if_match)
        person.assign_unit(unit=cmd.unit, at=self._clock.now())
        return self._save(ctx, person)

    def remove_unit(
        self, ctx: Context, person_id: UUID, unit: str, if_match: int | None
    ) -> Written:
        ctx.require("person:write")
        _, person = self._person(ctx, person_id, if_match)
        person.remove_unit(unit=unit, at=self._clock.now())
        return self._save(ctx, person)

    def upload_photo(
        self, ctx: Context, person_id: UUID, content_type: str, data: bytes, if_match: int | None
    ) -> Written:
        ctx.require("person:write")
        tenant, person = self._person(ctx, person_id, if_match)
        sha256 = hashlib.sha256(data).hexdigest()
        person.upload_photo(
            sha256=sha256, content_type=content_type, size_bytes=len(data), at=self._clock.now()
        )
        # The bytes go first: an event must never point at a photo that is not stored. A photo
        # stored for an event that then fails to save is harmless (content-addressed, reusable).
        self._blobs.put(tenant.id, sha256, content_type, data)
        return self._save(ctx, person)

    def approve_photo(self, ctx: Context, person_id: UUID, if_match: int | None) -> Written:
        ctx.require("person:write")
        _, person = self._person(ctx, person_id, if_match)
        person.approve_photo(at=self._clock.now())
        return self._save(ctx, person)

    # -- helpers --------------------------------------------------------------------------

    def _person(self, ctx: Context, person_id: UUID, if_match: int | None) -> tuple[Tenant, Person]:
        tenant = active_tenant(self._log, ctx)
        person = self._log.load(Person, person_id)
        if person is None or person.tenant_id != tenant.id:
            raise NotFound("person", person_id)
        self._log.check_version(person, if_match)
        return tenant, person

    def _check_line_manager(self, tenant_id: UUID, manager_id: UUID | None) -> None:
        if manager_id is None:
            return
        manager = self._log.load(Person, manager_id)
        if manager is None or manager.tenant_id != tenant_id:
            raise InvalidRequest("lineManagerId", "no person with this id in the tenant")

    def _save(self, ctx: Context, person: Person, *others: Aggregate) -> Written:
        position = self._log.record(person, *others, meta=ctx.meta)
        return Written(id=person.id, version=person.version, position=position)
