"""Black-box tests of /api/v1/people: staff records, uniqueness inside a tenant, partial updates,
lifecycle, units, filters and paging, photos, roles and tenant isolation (API.md, "People")."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.api.problems import problem
from tests.conftest import Api

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def person_body(**fields: Any) -> dict[str, Any]:
    n = uuid.uuid4().hex[:8]
    return {
        "firstName": "Grace",
        "lastName": "Hopper",
        "email": f"grace.{n}@example.com",
        "employeeReference": f"R-{n}",
        "jobTitle": "Engineer",
        "employmentStartDate": "2026-01-05",
        **fields,
    }


def admin_of(api: Api, tenant_id: str, sub: str = "hr-admin") -> dict[str, str]:
    return api.as_("customer-admin", tenant=tenant_id, sub=sub)


def people_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["personId"] for p in response.json()["people"]]


# -- creating ---------------------------------------------------------------------------------


def test_create_returns_201_with_the_person(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    manager = api.hire(tenant_id)
    body = person_body(
        employmentEndDate="2027-12-31",
        lineManagerId=manager["personId"],
        department="Engineering",
        costCentre="CC-100",
        organisationalUnits=["Platform", "Guild: Python"],
    )

    response = api.request("POST", "/people", json=body, auth=admin_of(api, tenant_id))

    assert response.status_code == 201, response.text
    person = response.json()
    person_id = person["personId"]
    assert str(uuid.UUID(person_id)) == person_id
    assert response.headers["location"] == f"/api/v1/people/{person_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) >= 1
    for key, value in body.items():
        assert person[key] == value, key
    assert person["status"] == "active"
    assert INSTANT.match(person["createdAt"])
    assert person["updatedAt"] == person["createdAt"]

    fetched = api.request("GET", f"/people/{person_id}", auth=api.as_("member", tenant=tenant_id))
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert fetched.json() == person


def test_duplicate_reference_or_email_in_a_tenant_is_409_but_fine_elsewhere(api: Api) -> None:
    tenant_a = api.provision()["tenantId"]
    tenant_b = api.provision()["tenantId"]
    first = api.hire(tenant_a, email="Ada@Example.com", employeeReference="EMP-001")
    auth_a = admin_of(api, tenant_a)

    same_reference = person_body(employeeReference="emp-001")
    problem(
        api.request("POST", "/people", json=same_reference, auth=auth_a),
        409,
        code="duplicate",
        field="employeeReference",
    )
    same_email = person_body(email="ADA@example.COM")
    problem(
        api.request("POST", "/people", json=same_email, auth=auth_a),
        409,
        code="duplicate",
        field="email",
    )
    assert people_ids(api.request("GET", "/people", auth=auth_a)) == [first["personId"]]

    elsewhere = person_body(email="ada@example.com", employeeReference="EMP-001")
    response = api.request("POST", "/people", json=elsewhere, auth=admin_of(api, tenant_b))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"employmentStartDate": "2026-03-01", "employmentEndDate": "2026-02-28"},
            "employmentEndDate",
        ),
        ({"email": "nobody-at-example.com"}, "email"),
        ({"firstName": "  "}, "firstName"),
        ({"employmentStartDate": "2026-13-01"}, "employmentStartDate"),
        ({"organisationalUnits": ["a/b"]}, "organisationalUnits"),
    ],
)
def test_create_with_invalid_field_is_400_naming_it(
    sqlite_api: Api, fields: dict[str, Any], field: str
) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    response = sqlite_api.request(
        "POST", "/people", json=person_body(**fields), auth=admin_of(sqlite_api, tenant_id)
    )
    problem(response, 400, field=field)


def test_unknown_line_manager_is_400(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    other_tenant = sqlite_api.provision()["tenantId"]
    foreign = sqlite_api.hire(other_tenant)
    auth = admin_of(sqlite_api, tenant_id)

    for manager_id in (str(uuid.uuid4()), foreign["personId"]):
        body = person_body(lineManagerId=manager_id)
        response = sqlite_api.request("POST", "/people", json=body, auth=auth)
        problem(response, 400, field="lineManagerId")
    assert sqlite_api.request("GET", "/people", auth=auth).json()["totalCount"] == 0


# -- partial updates --------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields_and_null_clears(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    person = api.hire(tenant_id, department="Engineering", costCentre="CC-1")
    path = f"/people/{person['personId']}"

    response = api.request(
        "PATCH",
        path,
        json={"jobTitle": "Staff Engineer", "department": None},
        auth=admin_of(api, tenant_id),
    )

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert int(response.headers["x-log-position"]) >= 1
    patched = response.json()
    expected = {**person, "jobTitle": "Staff Engineer", "department": None}
    assert {k: v for k, v in patched.items() if k != "updatedAt"} == {
        k: v for k, v in expected.items() if k != "updatedAt"
    }
    assert patched["costCentre"] == "CC-1"
    assert patched["updatedAt"] >= person["updatedAt"]
    fetched = api.request("GET", path, auth=admin_of(api, tenant_id))
    assert fetched.json() == patched
    assert fetched.headers["etag"] == '"2"'


def test_changing_email_frees_the_old_one(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    first = api.hire(tenant_id, email="old@example.com")

    moved = api.request(
        "PATCH", f"/people/{first['personId']}", json={"email": "new@example.com"}, auth=auth
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["email"] == "new@example.com"

    second = api.request("POST", "/people", json=person_body(email="OLD@example.com"), auth=auth)
    assert second.status_code == 201, second.text
    taken = api.request("POST", "/people", json=person_body(email="New@Example.com"), auth=auth)
    problem(taken, 409, code="duplicate", field="email")
    steal = api.request(
        "PATCH",
        f"/people/{second.json()['personId']}",
        json={"email": "NEW@example.com"},
        auth=auth,
    )
    problem(steal, 409, field="email")
    kept = api.request("GET", f"/people/{second.json()['personId']}", auth=auth)
    assert kept.json()["email"] == "OLD@example.com"


def test_patch_validates_and_honours_if_match(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    person = sqlite_api.hire(tenant_id)
    path = f"/people/{person['personId']}"
    auth = admin_of(sqlite_api, tenant_id)

    problem(
        sqlite_api.request("PATCH", path, json={"employmentEndDate": "2025-01-01"}, auth=auth),
        400,
        field="employmentEndDate",
    )
    problem(
        sqlite_api.request("PATCH", path, json={"lineManagerId": person["personId"]}, auth=auth),
        400,
        field="lineManagerId",
    )
    problem(
        sqlite_api.request(
            "PATCH", path, json={"jobTitle": "X"}, headers={"If-Match": '"9"'}, auth=auth
        ),
        412,
    )
    assert sqlite_api.request("GET", path, auth=auth).json() == person
    ok = sqlite_api.request(
        "PATCH", path, json={"jobTitle": "X"}, headers={"If-Match": '"1"'}, auth=auth
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["jobTitle"] == "X"


# -- lifecycle --------------------------------------------------------------------------------


def test_deactivate_and_reactivate_with_illegal_repeats(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    person = api.hire(tenant_id)
    other = api.hire(tenant_id)
    path = f"/people/{person['personId']}"
    leaving = {"employmentEndDate": "2026-06-30", "reason": "moved abroad"}

    gone = api.request("POST", f"{path}/deactivate", json=leaving, auth=auth)
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "inactive"
    assert gone.json()["employmentEndDate"] == "2026-06-30"
    problem(
        api.request("POST", f"{path}/deactivate", json=leaving, auth=auth),
        409,
        code="illegal-transition",
    )
    assert people_ids(api.request("GET", "/people", auth=auth)) == [other["personId"]]
    everyone = api.request("GET", "/people?includeInactive=true", auth=auth)
    assert people_ids(everyone) == [person["personId"], other["personId"]]

    back = api.request("POST", f"{path}/reactivate", auth=auth)
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "active"
    assert back.json()["employmentEndDate"] is None
    problem(api.request("POST", f"{path}/reactivate", auth=auth), 409, code="illegal-transition")
    problem(
        api.request("POST", f"/people/{other['personId']}/reactivate", auth=auth),
        409,
        code="illegal-transition",
    )
    listed = api.request("GET", "/people", auth=auth)
    assert people_ids(listed) == [person["personId"], other["personId"]]


def test_deactivate_needs_an_end_date_not_before_the_start(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    auth = admin_of(sqlite_api, tenant_id)
    path = f"/people/{sqlite_api.hire(tenant_id)['personId']}/deactivate"
    problem(
        sqlite_api.request("POST", path, json={"employmentEndDate": "2025-12-31"}, auth=auth),
        400,
        field="employmentEndDate",
    )
    problem(
        sqlite_api.request("POST", path, json={"reason": "no date"}, auth=auth),
        400,
        field="employmentEndDate",
    )


# -- units, filters, paging -------------------------------------------------------------------


def test_units_assign_remove_and_filter(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    alice = api.hire(tenant_id, organisationalUnits=["Data"])
    bob = api.hire(tenant_id)
    path = f"/people/{bob['personId']}/units"

    added = api.request("POST", path, json={"unit": "Platform Team"}, auth=auth)
    assert added.status_code == 200, added.text
    assert added.json()["organisationalUnits"] == ["Platform Team"]
    added = api.request("POST", path, json={"unit": "Data"}, auth=auth)
    assert added.json()["organisationalUnits"] == ["Platform Team", "Data"]

    assert people_ids(
        api.request("GET", "/people", params={"unit": "Platform Team"}, auth=auth)
    ) == [bob["personId"]]
    data = api.request("GET", "/people", params={"unit": "Data"}, auth=auth)
    assert people_ids(data) == [alice["personId"], bob["personId"]]
    assert data.json()["totalCount"] == 2

    removed = api.request("DELETE", f"{path}/Platform%20Team", auth=auth)
    assert removed.status_code == 200, removed.text
    assert removed.json()["organisationalUnits"] == ["Data"]
    platform = api.request("GET", "/people", params={"unit": "Platform Team"}, auth=auth)
    assert people_ids(platform) == []
    assert platform.json()["totalCount"] == 0
    assert api.request("GET", f"/people/{bob['personId']}", auth=auth).json()[
        "organisationalUnits"
    ] == ["Data"]


def test_include_inactive_and_q_filters(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    ada = api.hire(tenant_id, firstName="Ada", lastName="Lovelace", email="ada@engines.example")
    grace = api.hire(tenant_id, firstName="Grace", lastName="Hopper", email="grace@navy.example")
    alan = api.hire(tenant_id, firstName="Alan", lastName="Turing", employeeReference="BLETCH-1")
    deactivated = api.request(
        "POST",
        f"/people/{alan['personId']}/deactivate",
        json={"employmentEndDate": "2026-02-01"},
        auth=auth,
    )
    assert deactivated.status_code == 200

    def query(**params: Any) -> list[str]:
        return people_ids(api.request("GET", "/people", params=params, auth=auth))

    assert query() == [ada["personId"], grace["personId"]]
    assert query(includeInactive="false") == [ada["personId"], grace["personId"]]
    assert query(includeInactive="true") == [ada["personId"], grace["personId"], alan["personId"]]
    assert query(q="hopper") == [grace["personId"]]
    assert query(q="LOVE") == [ada["personId"]]
    assert query(q="navy.example") == [grace["personId"]]
    assert query(q="bletch") == []
    assert query(q="bletch", includeInactive="true") == [alan["personId"]]
    nobody = api.request("GET", "/people", params={"q": "zzz%"}, auth=auth)
    assert people_ids(nobody) == []
    assert nobody.json() == {"people": [], "totalCount": 0, "nextCursor": None}


def test_pagination_walks_all_pages_in_a_stable_order(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = api.as_("member", tenant=tenant_id)
    hired = [api.hire(tenant_id)["personId"] for _ in range(5)]

    def walk() -> tuple[list[str], int]:
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            response = api.request("GET", "/people", params=params, auth=auth)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"people", "totalCount", "nextCursor"}
            assert body["totalCount"] == 5
            assert len(body["people"]) == (2 if pages < 2 else 1)
            seen += [p["personId"] for p in body["people"]]
            pages += 1
            cursor = body["nextCursor"]
            if cursor is None:
                return seen, pages

    assert walk() == (hired, 3)
    assert walk() == (hired, 3)
    everything = api.request("GET", "/people", params={"limit": 200}, auth=auth).json()
    assert [p["personId"] for p in everything["people"]] == hired
    assert everything["nextCursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-5", "limit"),
        ("cursor=garbage!!", "cursor"),
        ("cursor=YjoxMA", "cursor"),  # base64 of "b:10": well-formed base64, not ours
    ],
)
def test_bad_paging_parameters_are_400(sqlite_api: Api, query: str, field: str) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    response = sqlite_api.request(
        "GET", f"/people?{query}", auth=sqlite_api.as_("member", tenant=tenant_id)
    )
    problem(response, 400, field=field)


def test_bad_include_inactive_names_the_api_parameter(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    response = sqlite_api.request(
        "GET", "/people?includeInactive=maybe", auth=sqlite_api.as_("member", tenant=tenant_id)
    )
    problem(response, 400, field="includeInactive")


def test_unit_changes_honour_if_match(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    auth = admin_of(sqlite_api, tenant_id)
    person = sqlite_api.hire(tenant_id, organisationalUnits=["Data"])
    path = f"/people/{person['personId']}"
    stale = {"If-Match": '"99"'}

    problem(
        sqlite_api.request(
            "POST", f"{path}/units", json={"unit": "Platform"}, headers=stale, auth=auth
        ),
        412,
    )
    problem(sqlite_api.request("DELETE", f"{path}/units/Data", headers=stale, auth=auth), 412)
    assert sqlite_api.request("GET", path, auth=auth).json()["organisationalUnits"] == ["Data"]


# -- photos -----------------------------------------------------------------------------------


def test_photo_upload_then_approve(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    auth = admin_of(sqlite_api, tenant_id)
    path = f"/people/{sqlite_api.hire(tenant_id)['personId']}/photo"

    uploaded = sqlite_api.request(
        "PUT", path, content=PNG, headers={"Content-Type": "image/png"}, auth=auth
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["photo"]["status"] == "pending"
    approved = sqlite_api.request("POST", f"{path}/approve", auth=auth)
    assert approved.status_code == 200, approved.text
    assert approved.json()["photo"]["status"] == "approved"
    assert INSTANT.match(approved.json()["photo"]["approvedAt"])
    problem(
        sqlite_api.request("POST", f"{path}/approve", auth=auth), 409, code="illegal-transition"
    )


def test_photo_with_a_non_image_content_type_is_415(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    path = f"/people/{sqlite_api.hire(tenant_id)['personId']}/photo"
    response = sqlite_api.request(
        "PUT",
        path,
        content=b"just some text",
        headers={"Content-Type": "text/plain"},
        auth=admin_of(sqlite_api, tenant_id),
    )
    problem(response, 415)


def test_approving_without_a_pending_photo_is_409(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    person = sqlite_api.hire(tenant_id)
    response = sqlite_api.request(
        "POST", f"/people/{person['personId']}/photo/approve", auth=admin_of(sqlite_api, tenant_id)
    )
    problem(response, 409, code="illegal-transition")


# -- roles and tenants ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "auditor", "squad-lead", "finance", "project-manager"])
def test_roles_without_person_write_can_read_but_not_write(sqlite_api: Api, role: str) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    person = sqlite_api.hire(tenant_id)
    path = f"/people/{person['personId']}"
    auth = sqlite_api.as_(role, tenant=tenant_id)

    assert people_ids(sqlite_api.request("GET", "/people", auth=auth)) == [person["personId"]]
    assert sqlite_api.request("GET", path, auth=auth).json() == person

    writes = [
        ("POST", "/people", person_body()),
        ("PATCH", path, {"jobTitle": "Hacker"}),
        ("POST", f"{path}/deactivate", {"employmentEndDate": "2026-06-30"}),
        ("POST", f"{path}/units", {"unit": "Skunkworks"}),
    ]
    for method, url, body in writes:
        problem(sqlite_api.request(method, url, json=body, auth=auth), 403, code="forbidden")
    problem(sqlite_api.request("DELETE", f"{path}/units/Data", auth=auth), 403)
    assert sqlite_api.request("GET", path, auth=auth).json() == person


def test_another_tenants_person_is_not_found(api: Api) -> None:
    tenant_a = api.provision()["tenantId"]
    tenant_b = api.provision()["tenantId"]
    person = api.hire(tenant_a)
    api.hire(tenant_b)
    path = f"/people/{person['personId']}"

    for auth in (admin_of(api, tenant_b), api.as_("member", tenant=tenant_b)):
        problem(api.request("GET", path, auth=auth), 404, code="not-found")
    b_admin = admin_of(api, tenant_b)
    attempts = [
        ("PATCH", path, {"jobTitle": "Poached"}),
        ("POST", f"{path}/deactivate", {"employmentEndDate": "2026-06-30"}),
        ("POST", f"{path}/units", {"unit": "B-team"}),
    ]
    for method, url, body in attempts:
        problem(api.request(method, url, json=body, auth=b_admin), 404, code="not-found")
    problem(api.request("POST", f"{path}/reactivate", auth=b_admin), 404)
    problem(api.request("POST", f"{path}/photo/approve", auth=b_admin), 404)
    assert person["personId"] not in people_ids(
        api.request("GET", "/people?includeInactive=true", auth=b_admin)
    )

    unchanged = api.request("GET", path, auth=admin_of(api, tenant_a))
    assert unchanged.json() == person
    assert unchanged.headers["etag"] == '"1"'


def test_tenant_id_parameter(sqlite_api: Api) -> None:
    tenant_a = sqlite_api.provision()["tenantId"]
    tenant_b = sqlite_api.provision()["tenantId"]
    person = sqlite_api.hire(tenant_a)
    platform = sqlite_api.as_("platform-admin")

    listed = sqlite_api.request("GET", "/people", params={"tenantId": tenant_a}, auth=platform)
    assert people_ids(listed) == [person["personId"]]
    one = sqlite_api.request(
        "GET", f"/people/{person['personId']}", params={"tenantId": tenant_a}, auth=platform
    )
    assert one.status_code == 200
    assert one.json() == person
    other = sqlite_api.request(
        "GET", f"/people/{person['personId']}", params={"tenantId": tenant_b}, auth=platform
    )
    problem(other, 404)

    member_a = sqlite_api.as_("member", tenant=tenant_a)
    problem(
        sqlite_api.request("GET", "/people", params={"tenantId": tenant_b}, auth=member_a),
        403,
        code="forbidden",
    )
    own = sqlite_api.request("GET", "/people", params={"tenantId": tenant_a}, auth=member_a)
    assert people_ids(own) == [person["personId"]]
    admin_a = admin_of(sqlite_api, tenant_a)
    sneaky = sqlite_api.request(
        "POST", "/people", params={"tenantId": tenant_b}, json=person_body(), auth=admin_a
    )
    problem(sneaky, 403)
    b_people = sqlite_api.request("GET", "/people", params={"tenantId": tenant_b}, auth=platform)
    assert people_ids(b_people) == []
