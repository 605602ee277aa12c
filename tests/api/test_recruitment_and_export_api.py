"""Recruitment import (created once, then unchanged) and staff exports per profile."""

from __future__ import annotations

import csv
import io

from tests.conftest import Api

HIRE = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "email": "grace@navy.example",
    "employeeReference": "R-100",
    "jobTitle": "Rear Admiral",
    "employmentStartDate": "2026-03-01",
    "organisationalUnit": "cobol",
    "department": "Engineering",
}


def test_the_same_hire_twice_is_created_then_unchanged(api: Api) -> None:
    tenant = api.provision()["tenantId"]
    admin = api.as_("customer-admin", tenant=tenant)
    body = {"sourceSystem": "greenhouse", "newHire": HIRE}
    first = api.request("POST", "/recruitment/import", json=body, auth=admin)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "created"
    again = api.request("POST", "/recruitment/import", json=body, auth=admin)
    assert again.status_code == 200
    assert again.json() == {"personId": first.json()["personId"], "status": "unchanged"}
    person = api.request("GET", f"/people/{first.json()['personId']}", auth=admin).json()
    assert person["organisationalUnits"] == ["cobol"]
    other = {**body, "newHire": {**HIRE, "firstName": "Someone", "email": "else@navy.example"}}
    clash = api.request("POST", "/recruitment/import", json=other, auth=admin)
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["field"] == "employeeReference"


def test_import_needs_the_recruitment_permission_and_valid_input(sqlite_api: Api) -> None:
    api = sqlite_api
    tenant = api.provision()["tenantId"]
    body = {"sourceSystem": "greenhouse", "newHire": HIRE}
    member = api.request(
        "POST", "/recruitment/import", json=body, auth=api.as_("member", tenant=tenant)
    )
    assert member.status_code == 403
    bad = api.request(
        "POST",
        "/recruitment/import",
        json={"sourceSystem": " ", "newHire": HIRE},
        auth=api.as_("customer-admin", tenant=tenant),
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "sourceSystem"


def test_exports_map_fields_per_profile(api: Api) -> None:
    tenant = api.provision()["tenantId"]
    admin = api.as_("customer-admin", tenant=tenant)
    boss = api.hire(tenant, employeeReference="B-1", costCentre="CC-1")
    api.hire(
        tenant,
        employeeReference="W-2",
        lineManagerId=boss["personId"],
        organisationalUnits=["eng", "ops"],
        jobTitle="=cmd()",
    )
    deactivated = api.request(
        "POST",
        f"/people/{boss['personId']}/deactivate",
        json={"employmentEndDate": "2026-06-30"},
        auth=admin,
    )
    assert deactivated.status_code == 200
    hr = api.request("GET", "/people/export?profile=hr", auth=admin).json()
    assert [r["employeeNumber"] for r in hr["people"]] == ["W-2"]
    assert hr["people"][0]["manager"] == "B-1"  # an inactive manager is still named
    finance = api.request(
        "GET", "/people/export?profile=finance&includeInactive=true", auth=admin
    ).json()
    assert [(r["payrollId"], r["payrollStatus"], r["costCentres"]) for r in finance["people"]] == [
        ("B-1", "terminated", ["CC-1"]),
        ("W-2", "active", []),
    ]
    lms = api.request("GET", "/people/export?profile=lms&format=csv", auth=admin)
    assert lms.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(lms.text)))
    assert rows[0]["learnerId"] == "W-2"
    assert rows[0]["groups"] == "eng;ops"
    assert rows[0]["jobRole"] == "'=cmd()"  # formula injection is neutralised


def test_export_rejects_unknown_profile_and_format(sqlite_api: Api) -> None:
    api = sqlite_api
    tenant = api.provision()["tenantId"]
    admin = api.as_("customer-admin", tenant=tenant)
    for query, field in (("profile=payroll", "profile"), ("format=xml", "format")):
        response = api.request("GET", f"/people/export?{query}", auth=admin)
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == field
