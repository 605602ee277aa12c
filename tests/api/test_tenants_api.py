"""Black-box tests of /api/v1/tenants: provisioning (one and bulk), visibility, updates with
If-Match, lifecycle, suspended tenants, subscription and settings (API.md, "Tenants")."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.api.problems import problem
from tests.conftest import Api

TENANT_KEYS = {
    "tenantId",
    "name",
    "contactEmail",
    "phoneNumber",
    "industry",
    "status",
    "plan",
    "createdAt",
    "updatedAt",
}
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
SETTINGS = {
    "currency": "EUR",
    "timezone": "Europe/London",
    "paymentTermsDays": 14,
    "invoicePrefix": "ACME",
    "featureFlags": {"beta": True, "legacyExport": False},
}


def admin(api: Api) -> dict[str, str]:
    return api.as_("platform-admin", sub="root")


def create(api: Api, auth: dict[str, str], name: str, **fields: Any) -> Any:
    return api.request(
        "POST",
        "/tenants",
        json={"name": name, "contactEmail": "ops@example.com", **fields},
        auth=auth,
    )


def ids(page: dict[str, Any]) -> list[str]:
    return [t["tenantId"] for t in page["tenants"]]


# -- creating ---------------------------------------------------------------------------------


def test_create_returns_201_with_location_etag_log_position_and_representation(api: Api) -> None:
    response = create(
        api,
        api.as_("partner-admin", sub="partner-1"),
        "Acme Ltd",
        phoneNumber="+44 20 7946 0000",
        industry="Consulting",
        plan="professional",
        currency="EUR",
        timezone="Europe/London",
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == TENANT_KEYS
    tenant_id = body["tenantId"]
    assert str(uuid.UUID(tenant_id)) == tenant_id
    assert response.headers["location"] == f"/api/v1/tenants/{tenant_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) >= 1
    assert body == {
        "tenantId": tenant_id,
        "name": "Acme Ltd",
        "contactEmail": "ops@example.com",
        "phoneNumber": "+44 20 7946 0000",
        "industry": "Consulting",
        "status": "active",
        "plan": "professional",
        "createdAt": body["createdAt"],
        "updatedAt": body["createdAt"],
    }
    assert INSTANT.match(body["createdAt"])

    fetched = api.request(
        "GET", response.headers["location"].removeprefix("/api/v1"), auth=admin(api)
    )
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert fetched.json() == body

    settings = api.request("GET", f"/tenants/{tenant_id}/settings", auth=admin(api))
    assert settings.status_code == 200
    assert settings.json()["currency"] == "EUR"
    assert settings.json()["timezone"] == "Europe/London"


def test_create_applies_documented_defaults(sqlite_api: Api) -> None:
    body = sqlite_api.provision("Defaults Inc")
    assert body["plan"] == "starter"
    assert body["status"] == "active"
    assert body["phoneNumber"] is None
    assert body["industry"] is None
    member = sqlite_api.as_("member", tenant=body["tenantId"])

    settings = sqlite_api.request("GET", f"/tenants/{body['tenantId']}/settings", auth=member)
    assert settings.status_code == 200
    assert settings.json()["currency"] == "USD"
    assert settings.json()["timezone"] == "UTC"
    assert set(settings.json()) == {
        "currency",
        "timezone",
        "paymentTermsDays",
        "invoicePrefix",
        "featureFlags",
    }
    subscription = sqlite_api.request(
        "GET", f"/tenants/{body['tenantId']}/subscription", auth=member
    )
    assert subscription.status_code == 200
    assert set(subscription.json()) == {"plan", "seats", "status", "renewsOn"}
    assert subscription.json()["plan"] == "starter"


def test_duplicate_name_is_409_case_insensitively(api: Api) -> None:
    first = create(api, admin(api), "Acme Ltd")
    assert first.status_code == 201

    again = create(api, admin(api), "  ACME ltd ")
    problem(again, 409, code="duplicate", field="name")

    listed = api.request("GET", "/tenants", auth=admin(api)).json()
    assert ids(listed) == [first.json()["tenantId"]]
    assert listed["totalCount"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"contactEmail": "not-an-email"}, "contactEmail"),
        ({"name": "   "}, "name"),
        ({"plan": "platinum"}, "plan"),
        ({"currency": "XYZ"}, "currency"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"phoneNumber": "call me maybe"}, "phoneNumber"),
    ],
)
def test_create_with_invalid_field_is_400_naming_it(
    sqlite_api: Api, fields: dict[str, Any], field: str
) -> None:
    body = {"name": "Valid Name", "contactEmail": "ops@example.com", **fields}
    response = sqlite_api.request("POST", "/tenants", json=body, auth=admin(sqlite_api))
    problem(response, 400, field=field)


@pytest.mark.parametrize("role", ["customer-admin", "member", "auditor", "finance"])
def test_tenant_roles_cannot_provision(sqlite_api: Api, role: str) -> None:
    response = create(sqlite_api, sqlite_api.as_(role, tenant=uuid.uuid4()), "Nope Ltd")
    problem(response, 403, code="forbidden")


# -- bulk -------------------------------------------------------------------------------------


def test_bulk_reports_each_item_and_a_bad_item_fails_alone(api: Api) -> None:
    existing = api.provision("Existing Co")
    body = {
        "tenants": [
            {"name": "Bulk One", "contactEmail": "one@example.com"},
            {"name": "Bulk Bad", "contactEmail": "not-an-email"},
            {"name": "existing co", "contactEmail": "dup@example.com"},
            {"name": "Bulk Two", "contactEmail": "two@example.com", "plan": "enterprise"},
            {"name": "BULK ONE", "contactEmail": "again@example.com"},
        ]
    }

    response = api.request("POST", "/tenants/bulk", json=body, auth=admin(api))

    assert response.status_code == 207, response.text
    assert int(response.headers["x-log-position"]) >= 1
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == [201, 400, 409, 201, 409]
    assert results[1]["error"]["errors"][0]["field"] == "contactEmail"
    assert results[2]["error"]["code"] == "duplicate"
    assert results[4]["error"]["code"] == "duplicate"
    assert "tenantId" not in results[1]
    created = [results[0]["tenantId"], results[3]["tenantId"]]

    # The good items exist (read-your-writes), the bad ones do not.
    for tenant_id in created:
        fetched = api.request("GET", f"/tenants/{tenant_id}", auth=admin(api))
        assert fetched.status_code == 200
    listed = api.request("GET", "/tenants", auth=admin(api)).json()
    assert ids(listed) == [existing["tenantId"], *created]
    assert [t["name"] for t in listed["tenants"]] == ["Existing Co", "Bulk One", "Bulk Two"]


def test_bulk_item_missing_a_field_fails_alone(sqlite_api: Api) -> None:
    body = {
        "tenants": [
            {"name": "Complete Co", "contactEmail": "one@example.com"},
            {"name": "No Email Co"},
        ]
    }
    response = sqlite_api.request("POST", "/tenants/bulk", json=body, auth=admin(sqlite_api))
    assert response.status_code == 207, response.text
    assert [r["status"] for r in response.json()["results"]] == [201, 400]


def test_bulk_needs_tenant_create(sqlite_api: Api) -> None:
    body = {"tenants": [{"name": "X Co", "contactEmail": "x@example.com"}]}
    auth = sqlite_api.as_("customer-admin", tenant=uuid.uuid4())
    problem(sqlite_api.request("POST", "/tenants/bulk", json=body, auth=auth), 403)


# -- visibility -------------------------------------------------------------------------------


def test_list_and_get_visibility_by_role(api: Api) -> None:
    partner_1 = api.as_("partner-admin", sub="partner-1")
    partner_2 = api.as_("partner-admin", sub="partner-2")
    own = create(api, admin(api), "Platform Own").json()["tenantId"]
    p1_a = create(api, partner_1, "P1 Alpha").json()["tenantId"]
    p1_b = create(api, partner_1, "P1 Beta").json()["tenantId"]
    p2_a = create(api, partner_2, "P2 Alpha").json()["tenantId"]

    everything = api.request("GET", "/tenants", auth=admin(api)).json()
    assert ids(everything) == [own, p1_a, p1_b, p2_a]
    assert everything["totalCount"] == 4

    mine = api.request("GET", "/tenants", auth=partner_1).json()
    assert ids(mine) == [p1_a, p1_b]
    assert mine["totalCount"] == 2
    assert ids(api.request("GET", "/tenants", auth=partner_2).json()) == [p2_a]

    member = api.as_("member", tenant=p1_a)
    only_own = api.request("GET", "/tenants", auth=member).json()
    assert ids(only_own) == [p1_a]
    assert only_own["totalCount"] == 1

    # Another tenant's id is "not found", never "forbidden".
    assert api.request("GET", f"/tenants/{p1_a}", auth=member).status_code == 200
    for path in (f"/tenants/{p1_b}", f"/tenants/{p1_b}/settings", f"/tenants/{p1_b}/subscription"):
        problem(api.request("GET", path, auth=member), 404, code="not-found")
    problem(api.request("GET", f"/tenants/{p2_a}", auth=partner_1), 404)
    problem(api.request("POST", f"/tenants/{p2_a}/suspend", auth=partner_1), 404)
    assert api.request("GET", f"/tenants/{p2_a}", auth=admin(api)).json()["status"] == "active"
    problem(api.request("GET", f"/tenants/{uuid.uuid4()}", auth=admin(api)), 404)


def test_list_pages_walk_every_tenant_in_creation_order(api: Api) -> None:
    created = [api.provision(f"Paged {i}")["tenantId"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.request("GET", "/tenants", params=params, auth=admin(api))
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["totalCount"] == 5
        assert len(body["tenants"]) <= 2
        seen += ids(body)
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == created
    assert pages == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "cursor=not-a-cursor"])
def test_list_rejects_bad_paging_parameters(sqlite_api: Api, query: str) -> None:
    response = sqlite_api.request("GET", f"/tenants?{query}", auth=admin(sqlite_api))
    problem(response, 400, field=query.split("=")[0])


# -- updates ----------------------------------------------------------------------------------


def test_put_with_if_match(api: Api) -> None:
    tenant = api.provision("Before Ltd")
    path = f"/tenants/{tenant['tenantId']}"
    new = {"name": "After Ltd", "contactEmail": "new@example.com", "industry": "Retail"}

    stale = api.request("PUT", path, json=new, headers={"If-Match": '"7"'}, auth=admin(api))
    problem(stale, 412, code="precondition-failed")
    unchanged = api.request("GET", path, auth=admin(api))
    assert unchanged.headers["etag"] == '"1"'
    assert unchanged.json() == tenant

    ok = api.request("PUT", path, json=new, headers={"If-Match": '"1"'}, auth=admin(api))
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] == '"2"'
    assert int(ok.headers["x-log-position"]) >= 1
    body = ok.json()
    assert body["name"] == "After Ltd"
    assert body["contactEmail"] == "new@example.com"
    assert body["industry"] == "Retail"
    assert body["createdAt"] == tenant["createdAt"]

    fetched = api.request("GET", path, auth=admin(api))
    assert fetched.headers["etag"] == '"2"'
    assert fetched.json() == body

    again = api.request("PUT", path, json=new, headers={"If-Match": '"1"'}, auth=admin(api))
    problem(again, 412)


def test_rename_checks_and_frees_names(api: Api) -> None:
    first = api.provision("First Co")
    api.provision("Second Co")
    path = f"/tenants/{first['tenantId']}"

    taken = api.request(
        "PUT", path, json={"name": "SECOND co", "contactEmail": "a@example.com"}, auth=admin(api)
    )
    problem(taken, 409, code="duplicate", field="name")

    renamed = api.request(
        "PUT", path, json={"name": "Renamed Co", "contactEmail": "a@example.com"}, auth=admin(api)
    )
    assert renamed.status_code == 200, renamed.text
    # The old name is free again.
    assert create(api, admin(api), "first co").status_code == 201
    problem(create(api, admin(api), "renamed CO"), 409, field="name")


def test_customer_admin_may_update_own_tenant_but_not_another(sqlite_api: Api) -> None:
    own = sqlite_api.provision("Own Co")
    other = sqlite_api.provision("Other Co")
    auth = sqlite_api.as_("customer-admin", tenant=own["tenantId"])
    body = {"name": "Own Co Renamed", "contactEmail": "own@example.com"}

    ok = sqlite_api.request("PUT", f"/tenants/{own['tenantId']}", json=body, auth=auth)
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "Own Co Renamed"
    body = {"name": "Hijacked", "contactEmail": "own@example.com"}
    problem(sqlite_api.request("PUT", f"/tenants/{other['tenantId']}", json=body, auth=auth), 404)
    member = sqlite_api.as_("member", tenant=own["tenantId"])
    problem(sqlite_api.request("PUT", f"/tenants/{own['tenantId']}", json=body, auth=member), 403)


# -- lifecycle --------------------------------------------------------------------------------


def test_lifecycle_transitions_and_illegal_ones(api: Api) -> None:
    tenant_id = api.provision("Cycle Co")["tenantId"]
    path = f"/tenants/{tenant_id}"
    auth = admin(api)

    def status_after(method: str, suffix: str, expected: int) -> Any:
        response = api.request(method, path + suffix, auth=auth)
        if expected >= 400:
            body = problem(response, expected, code="illegal-transition")
            return body
        assert response.status_code == expected, response.text
        assert int(response.headers["x-log-position"]) >= 1
        return response.json()["status"]

    status_after("POST", "/reactivate", 409)
    assert status_after("POST", "/suspend", 200) == "suspended"
    status_after("POST", "/suspend", 409)
    assert status_after("POST", "/reactivate", 200) == "active"
    assert status_after("POST", "/suspend", 200) == "suspended"
    assert status_after("DELETE", "", 200) == "closed"
    status_after("DELETE", "", 409)
    status_after("POST", "/reactivate", 409)
    status_after("POST", "/suspend", 409)
    closed_put = api.request(
        "PUT", path, json={"name": "Zombie", "contactEmail": "z@example.com"}, auth=auth
    )
    problem(closed_put, 409, code="illegal-transition")

    # History is kept: the closed tenant can still be read, at version 1 + 4 transitions.
    fetched = api.request("GET", path, auth=auth)
    assert fetched.status_code == 200
    assert fetched.json()["status"] == "closed"
    assert fetched.json()["name"] == "Cycle Co"
    assert fetched.headers["etag"] == '"5"'


def test_suspend_accepts_a_reason_and_if_match(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision("Reason Co")["tenantId"]
    path = f"/tenants/{tenant_id}/suspend"
    auth = admin(sqlite_api)

    stale = sqlite_api.request(
        "POST", path, json={"reason": "unpaid"}, headers={"If-Match": '"3"'}, auth=auth
    )
    problem(stale, 412)
    ok = sqlite_api.request(
        "POST", path, json={"reason": "unpaid"}, headers={"If-Match": '"1"'}, auth=auth
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "suspended"
    assert ok.headers["etag"] == '"2"'


def test_suspended_tenant_users_cannot_write_but_can_read(api: Api) -> None:
    tenant_id = api.provision("Paused Co")["tenantId"]
    person = api.hire(tenant_id)
    customer_admin = api.as_("customer-admin", tenant=tenant_id)
    suspended = api.request("POST", f"/tenants/{tenant_id}/suspend", auth=admin(api))
    assert suspended.status_code == 200

    new_person = {
        "firstName": "Grace",
        "lastName": "Hopper",
        "email": "grace@example.com",
        "employeeReference": "E-GH",
        "jobTitle": "Admiral",
        "employmentStartDate": "2026-01-05",
    }
    problem(api.request("POST", "/people", json=new_person, auth=customer_admin), 403)
    put_settings = api.request(
        "PUT", f"/tenants/{tenant_id}/settings", json=SETTINGS, auth=customer_admin
    )
    problem(put_settings, 403)
    patch = api.request(
        "PATCH", f"/people/{person['personId']}", json={"jobTitle": "X"}, auth=customer_admin
    )
    problem(patch, 403)

    # Reads still work, and nothing changed.
    tenant = api.request("GET", f"/tenants/{tenant_id}", auth=customer_admin)
    assert tenant.status_code == 200
    assert tenant.json()["status"] == "suspended"
    settings = api.request("GET", f"/tenants/{tenant_id}/settings", auth=customer_admin)
    assert settings.status_code == 200
    assert settings.json()["currency"] == "USD"
    people = api.request("GET", "/people", auth=customer_admin)
    assert people.status_code == 200
    assert [p["personId"] for p in people.json()["people"]] == [person["personId"]]
    one = api.request("GET", f"/people/{person['personId']}", auth=customer_admin)
    assert one.json()["jobTitle"] == person["jobTitle"]

    # Reactivated, its users may write again.
    assert api.request("POST", f"/tenants/{tenant_id}/reactivate", auth=admin(api)).is_success
    assert api.request("POST", "/people", json=new_person, auth=customer_admin).status_code == 201


# -- subscription and settings ----------------------------------------------------------------


def test_subscription_read_and_write(api: Api) -> None:
    tenant_id = api.provision("Subscribed Co")["tenantId"]
    path = f"/tenants/{tenant_id}/subscription"
    member = api.as_("member", tenant=tenant_id)
    customer_admin = api.as_("customer-admin", tenant=tenant_id)

    initial = api.request("GET", path, auth=member)
    assert initial.status_code == 200
    assert initial.json() == {"plan": "starter", "seats": 1, "status": "active", "renewsOn": None}

    new = {"plan": "enterprise", "seats": 25, "status": "active", "renewsOn": "2027-01-31"}
    problem(api.request("PUT", path, json=new, auth=member), 403)
    written = api.request("PUT", path, json=new, auth=customer_admin)
    assert written.status_code == 200, written.text
    assert written.json() == new
    assert int(written.headers["x-log-position"]) >= 1

    assert api.request("GET", path, auth=member).json() == new
    assert api.request("GET", f"/tenants/{tenant_id}", auth=member).json()["plan"] == "enterprise"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"plan": "gold"}, "plan"), ({"seats": 0}, "seats"), ({"status": "paused"}, "status")],
)
def test_subscription_rejects_invalid_values(
    sqlite_api: Api, change: dict[str, Any], field: str
) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    body = {"plan": "starter", "seats": 3, "status": "active", **change}
    response = sqlite_api.request(
        "PUT",
        f"/tenants/{tenant_id}/subscription",
        json=body,
        auth=sqlite_api.as_("customer-admin", tenant=tenant_id),
    )
    problem(response, 400, field=field)


def test_settings_read_and_write(api: Api) -> None:
    tenant_id = api.provision("Settled Co")["tenantId"]
    path = f"/tenants/{tenant_id}/settings"
    member = api.as_("member", tenant=tenant_id)
    auditor = api.as_("auditor", tenant=tenant_id)
    customer_admin = api.as_("customer-admin", tenant=tenant_id)

    before = api.request("GET", path, auth=member)
    assert before.status_code == 200
    assert before.json() == {
        "currency": "USD",
        "timezone": "UTC",
        "paymentTermsDays": 30,
        "invoicePrefix": "INV",
        "featureFlags": {},
    }

    problem(api.request("PUT", path, json=SETTINGS, auth=member), 403, code="forbidden")
    problem(api.request("PUT", path, json=SETTINGS, auth=auditor), 403)
    assert api.request("GET", path, auth=member).json() == before.json()

    written = api.request("PUT", path, json=SETTINGS, auth=customer_admin)
    assert written.status_code == 200, written.text
    assert written.json() == SETTINGS
    assert int(written.headers["x-log-position"]) >= 1
    assert api.request("GET", path, auth=member).json() == SETTINGS
    assert api.request("GET", path, auth=auditor).json() == SETTINGS


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "XYZ"}, "currency"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"paymentTermsDays": -1}, "paymentTermsDays"),
        ({"invoicePrefix": "INV/2026"}, "invoicePrefix"),
    ],
)
def test_settings_reject_invalid_values(
    sqlite_api: Api, change: dict[str, Any], field: str
) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    path = f"/tenants/{tenant_id}/settings"
    auth = sqlite_api.as_("customer-admin", tenant=tenant_id)
    response = sqlite_api.request("PUT", path, json={**SETTINGS, **change}, auth=auth)
    problem(response, 400, field=field)
    assert sqlite_api.request("GET", path, auth=auth).json()["currency"] == "USD"


def test_customer_admin_cannot_touch_another_tenants_settings(sqlite_api: Api) -> None:
    own = sqlite_api.provision()["tenantId"]
    other = sqlite_api.provision()["tenantId"]
    auth = sqlite_api.as_("customer-admin", tenant=own)
    problem(sqlite_api.request("PUT", f"/tenants/{other}/settings", json=SETTINGS, auth=auth), 404)
    problem(sqlite_api.request("GET", f"/tenants/{other}/subscription", auth=auth), 404)
