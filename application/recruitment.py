"""Recruitment import: a new hire from a recruitment system becomes a person, once.

The hire is recognised by its employee reference inside the tenant. The same hire sent again is
"unchanged" (recruitment systems retry); a different hire reusing a reference is a 409.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

import msgspec

from application.claims import retry_once
from application.commands import Command
from application.context import Context
from application.event_log import EventLog
from application.people import REFERENCE_SCOPE, CreatePerson, PeopleCommands
from application.ports import IdGenerator
from domain.errors import InvalidValue, KeyAlreadyClaimed
from domain.person import Person
from domain.uniqueness import UniqueKey, unique_key_id


class NewHire(Command):
    first_name: str
    last_name: str
    email: str
    employee_reference: str
    job_title: str
    employment_start_date: date
    organisational_unit: str | None = None
    department: str | None = None

    def as_person(self) -> CreatePerson:
        return CreatePerson(
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            employee_reference=self.employee_reference,
            job_title=self.job_title,
            employment_start_date=self.employment_start_date,
            department=self.department,
            organisational_units=[self.organisational_unit] if self.organisational_unit else [],
        )


class ImportHire(Command):
    source_system: str
    new_hire: NewHire


class ImportResult(msgspec.Struct, rename="camel", frozen=True):
    person_id: UUID
    status: str  # "created" | "unchanged"
    position: int


class RecruitmentImport:
    def __init__(self, log: EventLog, people: PeopleCommands, ids: IdGenerator) -> None:
        self._log = log
        self._people = people
        self._ids = ids

    def import_hire(self, ctx: Context, cmd: ImportHire) -> ImportResult:
        ctx.require("recruitment:import")
        if not cmd.source_system.strip():
            raise InvalidValue("sourceSystem", "must not be empty")
        return retry_once(lambda: self._import(ctx, cmd, self._ids.new_id()))

    def _import(self, ctx: Context, cmd: ImportHire, new_id: UUID) -> ImportResult:
        tenant_id = ctx.require_tenant()
        hire = cmd.new_hire
        key = self._log.load(
            UniqueKey, unique_key_id(REFERENCE_SCOPE, hire.employee_reference, tenant_id)
        )
        if key is not None and key.owner_id is not None:
            person = self._log.load(Person, key.owner_id)
            if person is not None and _same_hire(person, hire):
                return ImportResult(
                    person_id=person.id, status="unchanged", position=self._log.head()
                )
            raise KeyAlreadyClaimed("employeeReference", hire.employee_reference)
        written = self._people.hire(ctx, new_id, hire.as_person())
        return ImportResult(person_id=written.id, status="created", position=written.position)


def _same_hire(person: Person, hire: NewHire) -> bool:
    units = [hire.organisational_unit] if hire.organisational_unit else []
    return (
        person.first_name == hire.first_name.strip()
        and person.last_name == hire.last_name.strip()
        and person.email.casefold() == hire.email.strip().casefold()
        and person.job_title == hire.job_title.strip()
        and person.employment_start_date == hire.employment_start_date
        and (not units or units[0].strip() in person.organisational_units)
    )
