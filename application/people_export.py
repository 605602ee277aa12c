"""Staff exports for downstream systems: one mapping per profile (hr, finance, lms), as JSON
records or CSV. Pure functions over the people read model's representations."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from application.context import Context
from application.errors import InvalidRequest
from application.queries import PeopleFilter, PeopleReadModel

Record = dict[str, Any]
PROFILES = ("hr", "finance", "lms")
FORMATS = ("json", "csv")


def _hr(person: Record, references: dict[str, str]) -> Record:
    return {
        "employeeNumber": person["employeeReference"],
        "firstName": person["firstName"],
        "lastName": person["lastName"],
        "email": person["email"],
        "startDate": person["employmentStartDate"],
        "endDate": person["employmentEndDate"],
        "position": person["jobTitle"],
        "department": person["department"],
        # HR systems key people by employee number, so the manager is named by theirs.
        "manager": references.get(person["lineManagerId"] or ""),
        "status": person["status"],
    }


def _finance(person: Record, references: dict[str, str]) -> Record:
    return {
        "payrollId": person["employeeReference"],
        "firstName": person["firstName"],
        "lastName": person["lastName"],
        "costCentres": [person["costCentre"]] if person["costCentre"] else [],
        "payrollStatus": "active" if person["status"] == "active" else "terminated",
        "endDate": person["employmentEndDate"],
    }


def _lms(person: Record, references: dict[str, str]) -> Record:
    return {
        "learnerId": person["employeeReference"],
        "firstName": person["firstName"],
        "lastName": person["lastName"],
        "email": person["email"],
        "jobRole": person["jobTitle"],
        "groups": list(person["organisationalUnits"]),
        "active": person["status"] == "active",
    }


MAPPERS: dict[str, Callable[[Record, dict[str, str]], Record]] = {
    "hr": _hr,
    "finance": _finance,
    "lms": _lms,
}


class PeopleExport:
    def __init__(self, people: PeopleReadModel) -> None:
        self._people = people

    def records(self, ctx: Context, profile: str, include_inactive: bool) -> list[Record]:
        ctx.require("person:read")
        if profile not in MAPPERS:
            raise InvalidRequest("profile", f"must be one of {', '.join(PROFILES)}")
        tenant_id = ctx.require_tenant()
        everyone = list(self._all(tenant_id))
        references = {p["personId"]: p["employeeReference"] for p in everyone}
        mapper = MAPPERS[profile]
        return [
            mapper(p, references) for p in everyone if include_inactive or p["status"] == "active"
        ]

    def _all(self, tenant_id: Any) -> Iterator[Record]:
        after = 0
        while True:
            page = self._people.list(
                tenant_id, PeopleFilter(include_inactive=True), limit=200, after=after
            )
            yield from (msgspec.json.decode(item) for item in page.items)
            if page.next_after is None:
                return
            after = page.next_after


def to_csv(records: list[Record]) -> str:
    """CSV with a header row; lists are joined with ';' and cells that a spreadsheet would run
    as formulas are quoted with a leading apostrophe."""
    if not records:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _cell(v) for k, v in record.items()})
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
