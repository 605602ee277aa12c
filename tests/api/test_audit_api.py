"""Black-box tests of /api/v1/audit: the tenant's event log with who did what under which
request, filters, per-aggregate history and point-in-time state (API.md, "Audit and history")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.problems import problem
from tests.conftest import Api

EVENT_KEYS = {
    "position",
    "eventId",
    "type",
    "aggregateType",
    "aggregateId",
    "version",
    "occurredAt",
    "actor",
    "requestId",
    "data",
}


class Story:
    """A tenant (created by platform-admin `root`), a person hired by `alice` under request id
    `req-hire-1`, renamed by `bob` under `req-patch-1`, and a second person hired by alice."""

    def __init__(self, api: Api) -> None:
        self.api = api
        created = api.request(
            "POST",
            "/tenants",
            json={"name": "Audited Co", "contactEmail": "audit@example.com"},
            auth=api.as_("platform-admin", sub="root"),
            headers={"X-Request-Id": "req-tenant-1"},
        )
        assert created.status_code == 201, created.text
        self.tenant = created.json()
        self.tenant_id = self.tenant["tenantId"]
        alice = api.as_("customer-admin", tenant=self.tenant_id, sub="alice")
        bob = api.as_("customer-admin", tenant=self.tenant_id, sub="bob")
        body = {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "employeeReference": "E-1",
            "jobTitle": "Analyst",
            "employmentStartDate": "2026-01-05",
            "department": "Engines",
        }
        hired = api.request(
            "POST", "/people", json=body, auth=alice, headers={"X-Request-Id": "req-hire-1"}
        )
        assert hired.status_code == 201, hired.text
        self.created = hired.json()
        self.person_id = self.created["personId"]
        patched = api.request(
            "PATCH",
            f"/people/{self.person_id}",
            json={"lastName": "King", "department": None},
            auth=bob,
            headers={"X-Request-Id": "req-patch-1"},
        )
        assert patched.status_code == 200, patched.text
        self.patched = patched.json()
        self.other = api.hire(self.tenant_id)

    def auditor(self) -> dict[str, str]:
        return self.api.as_("auditor", tenant=self.tenant_id, sub="carol")

    def events(self, auth: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
        response = self.api.request(
            "GET", "/audit/events", params=params, auth=auth or self.auditor()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"events", "totalCount", "nextCursor"}
        assert body["totalCount"] == len(body["events"])
        return list(body["events"])


def by_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


def test_auditor_and_customer_admin_read_the_tenants_events(api: Api) -> None:
    story = Story(api)

    for auth in (story.auditor(), api.as_("customer-admin", tenant=story.tenant_id)):
        events = story.events(auth)
        assert all(set(e) == EVENT_KEYS for e in events)
        positions = [e["position"] for e in events]
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)
        assert len({e["eventId"] for e in events}) == len(events)
        types = [e["type"] for e in events]
        assert types == ["TenantCreated", "PersonCreated", "PersonUpdated", "PersonCreated"]

    events = story.events()
    tenant_created, hired, renamed, _ = events
    assert tenant_created["aggregateId"] == story.tenant_id
    assert tenant_created["aggregateType"] == "Tenant"
    assert tenant_created["actor"] == "user:root"
    assert tenant_created["requestId"] == "req-tenant-1"
    assert hired["aggregateId"] == story.person_id
    assert hired["aggregateType"] == "Person"
    assert hired["version"] == 1
    assert hired["actor"] == "user:alice"
    assert hired["requestId"] == "req-hire-1"
    assert hired["data"]["lastName"] == "Lovelace"
    assert hired["occurredAt"] == story.created["createdAt"]
    assert renamed["aggregateId"] == story.person_id
    assert renamed["version"] == 2
    assert renamed["actor"] == "user:bob"
    assert renamed["requestId"] == "req-patch-1"
    assert renamed["data"]["lastName"] == "King"


def test_events_without_a_client_request_id_carry_the_generated_one(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    hired = sqlite_api.request(
        "POST",
        "/people",
        json={
            "firstName": "Alan",
            "lastName": "Turing",
            "email": "alan@example.com",
            "employeeReference": "B-1",
            "jobTitle": "Cryptanalyst",
            "employmentStartDate": "2026-01-05",
        },
        auth=sqlite_api.as_("customer-admin", tenant=tenant_id, sub="dave"),
    )
    assert hired.status_code == 201
    response = sqlite_api.request(
        "GET",
        "/audit/events",
        params={"aggregateId": hired.json()["personId"]},
        auth=sqlite_api.as_("auditor", tenant=tenant_id),
    )
    [event] = response.json()["events"]
    assert event["requestId"] == hired.headers["x-request-id"]
    assert event["actor"] == "user:dave"


def test_event_filters(api: Api) -> None:
    story = Story(api)
    everything = story.events()

    person = story.events(aggregateId=story.person_id)
    assert [(e["type"], e["version"]) for e in person] == [
        ("PersonCreated", 1),
        ("PersonUpdated", 2),
    ]
    created = story.events(type="PersonCreated")
    assert [e["aggregateId"] for e in created] == [story.person_id, story.other["personId"]]
    assert [e["requestId"] for e in story.events(actor="user:bob")] == ["req-patch-1"]
    assert [e["type"] for e in story.events(actor="user:root")] == ["TenantCreated"]
    assert story.events(actor="user:nobody") == []
    assert story.events(type="PersonCreated", actor="user:alice") == created[:1]

    # Time window: from is inclusive; a window in the past or the future is empty.
    renamed = by_type(everything, "PersonUpdated")[0]
    since = story.events(**{"from": renamed["occurredAt"]})
    assert renamed in since
    assert all(e["occurredAt"] >= renamed["occurredAt"] for e in since)
    assert everything[0] not in since or everything[0]["occurredAt"] == renamed["occurredAt"]
    assert story.events(**{"from": "2000-01-01T00:00:00Z"}) == everything
    assert story.events(to="2100-01-01T00:00:00Z") == everything
    assert story.events(to="2000-01-01T00:00:00Z") == []
    assert story.events(**{"from": "2100-01-01T00:00:00Z"}) == []
    window = story.events(**{"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
    assert window == everything


def test_events_page_through_with_a_cursor(api: Api) -> None:
    story = Story(api)
    everything = story.events()
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = api.request("GET", "/audit/events", params=params, auth=story.auditor())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["totalCount"] == len(everything)
        seen += body["events"]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == everything


@pytest.mark.parametrize(
    "role", ["member", "project-manager", "squad-lead", "finance", "partner-admin"]
)
def test_roles_without_audit_read_get_403(sqlite_api: Api, role: str) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    person_id = sqlite_api.hire(tenant_id)["personId"]
    tenant = None if role == "partner-admin" else tenant_id
    auth = sqlite_api.as_(role, tenant=tenant)
    for path in (
        "/audit/events",
        f"/audit/streams/{person_id}",
        f"/audit/streams/{person_id}/state?version=1",
    ):
        problem(sqlite_api.request("GET", path, auth=auth), 403, code="forbidden")


def test_another_tenants_aggregates_are_not_found(api: Api) -> None:
    story = Story(api)
    other_tenant = api.provision("Other Co")["tenantId"]
    api.hire(other_tenant)
    auth = api.as_("auditor", tenant=other_tenant)

    for path in (
        f"/audit/streams/{story.person_id}",
        f"/audit/streams/{story.person_id}/state?version=1",
        f"/audit/streams/{story.tenant_id}",
        f"/audit/streams/{story.tenant_id}/state?version=1",
    ):
        problem(api.request("GET", path, auth=auth), 404, code="not-found")
    theirs = api.request("GET", "/audit/events", auth=auth).json()["events"]
    assert {e["aggregateId"] for e in theirs}.isdisjoint({story.person_id, story.tenant_id})
    filtered = api.request(
        "GET", "/audit/events", params={"aggregateId": story.person_id}, auth=auth
    )
    assert filtered.json()["events"] == []
    assert filtered.json()["totalCount"] == 0


def test_stream_is_the_aggregates_full_history(api: Api) -> None:
    story = Story(api)
    response = api.request("GET", f"/audit/streams/{story.person_id}", auth=story.auditor())
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [(e["type"], e["version"]) for e in events] == [
        ("PersonCreated", 1),
        ("PersonUpdated", 2),
    ]
    assert events == story.events(aggregateId=story.person_id)
    problem(api.request("GET", f"/audit/streams/{uuid.uuid4()}", auth=story.auditor()), 404)


def test_state_at_a_version_is_the_representation_then(api: Api) -> None:
    story = Story(api)
    path = f"/audit/streams/{story.person_id}/state"

    first = api.request("GET", path, params={"version": 1}, auth=story.auditor())
    assert first.status_code == 200, first.text
    assert first.json() == {
        "aggregateId": story.person_id,
        "aggregateType": "Person",
        "version": 1,
        "state": story.created,
    }
    second = api.request("GET", path, params={"version": 2}, auth=story.auditor())
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2
    assert second.json()["state"] == story.patched
    assert second.json()["state"]["lastName"] == "King"
    assert second.json()["state"]["department"] is None
    current = api.request("GET", f"/people/{story.person_id}", auth=story.auditor())
    assert second.json()["state"] == current.json()

    tenant = api.request(
        "GET",
        f"/audit/streams/{story.tenant_id}/state",
        params={"version": 1},
        auth=story.auditor(),
    )
    assert tenant.status_code == 200, tenant.text
    assert tenant.json()["aggregateType"] == "Tenant"
    assert tenant.json()["state"] == story.tenant


def test_state_version_bounds(api: Api) -> None:
    story = Story(api)
    path = f"/audit/streams/{story.person_id}/state"
    auth = story.auditor()

    problem(api.request("GET", path, params={"version": 3}, auth=auth), 404, code="not-found")
    problem(api.request("GET", path, params={"version": 0}, auth=auth), 400, field="version")
    problem(api.request("GET", path, params={"version": -1}, auth=auth), 400, field="version")
    problem(api.request("GET", path, params={"version": "two"}, auth=auth), 400, field="version")
    problem(api.request("GET", path, auth=auth), 400)
    problem(
        api.request(
            "GET", f"/audit/streams/{uuid.uuid4()}/state", params={"version": 1}, auth=auth
        ),
        404,
    )


def test_a_huge_version_is_not_a_500(api: Api, request: pytest.FixtureRequest) -> None:
    tenant_id = api.provision()["tenantId"]
    person_id = api.hire(tenant_id)["personId"]
    response = api.request(
        "GET",
        f"/audit/streams/{person_id}/state",
        params={"version": "99999999999999999999"},
        auth=api.as_("auditor", tenant=tenant_id),
    )
    assert response.status_code in (400, 404), response.text
    problem(response, response.status_code)


def test_missing_version_names_the_parameter(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    person_id = sqlite_api.hire(tenant_id)["personId"]
    response = sqlite_api.request(
        "GET",
        f"/audit/streams/{person_id}/state",
        auth=sqlite_api.as_("auditor", tenant=tenant_id),
    )
    problem(response, 400, field="version")


def test_bad_from_names_the_api_parameter(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    response = sqlite_api.request(
        "GET",
        "/audit/events",
        params={"from": "yesterday"},
        auth=sqlite_api.as_("auditor", tenant=tenant_id),
    )
    problem(response, 400, field="from")


def test_changed_fields_use_api_field_names(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    person_id = sqlite_api.hire(tenant_id)["personId"]
    patched = sqlite_api.request(
        "PATCH",
        f"/people/{person_id}",
        json={"jobTitle": "Lead", "costCentre": "CC-9"},
        auth=sqlite_api.as_("customer-admin", tenant=tenant_id),
    )
    assert patched.status_code == 200
    events = sqlite_api.request(
        "GET",
        "/audit/events",
        params={"aggregateId": person_id, "type": "PersonUpdated"},
        auth=sqlite_api.as_("auditor", tenant=tenant_id),
    ).json()["events"]
    assert sorted(events[0]["data"]["changedFields"]) == ["costCentre", "jobTitle"]
