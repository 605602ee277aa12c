"""Black-box tests of the API-wide conventions (API.md, "Conventions", "Authentication and
authorization", "Operations"): credentials, request ids, content types, body validation,
problem+json, /me, health, metrics, OpenAPI and read-your-writes."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from tests.api.problems import problem
from tests.conftest import Api

TENANT = {"name": "Convention Co", "contactEmail": "ops@example.com"}


def admin(api: Api) -> dict[str, str]:
    return api.as_("platform-admin")


# -- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/me"),
        ("GET", "/tenants"),
        ("POST", "/tenants"),
        ("GET", f"/tenants/{uuid.UUID(int=1)}"),
        ("GET", "/people"),
        ("PATCH", f"/people/{uuid.UUID(int=1)}"),
        ("GET", "/audit/events"),
    ],
)
def test_no_token_is_401(sqlite_api: Api, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": {"jobTitle": "x"}} if method in {"POST", "PATCH"} else {}
    response = sqlite_api.request(method, path, **kwargs)
    problem(response, 401, code="unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="workledger"'


def _foreign_token(api: Api) -> str:
    """A well-formed token with the right issuer and audience, signed with another secret."""
    claims = jwt.decode(api.token("platform-admin"), options={"verify_signature": False})
    return jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")


def _expired_token(api: Api) -> str:
    return api.services.tokens.mint(
        subject="late",
        roles=["platform-admin"],
        tenant_id=None,
        ttl_seconds=60,
        now=datetime.now(UTC) - timedelta(hours=2),
    )


@pytest.mark.parametrize(
    "header",
    [
        lambda api: "Bearer garbage",
        lambda api: "Bearer ",
        lambda api: "Basic dXNlcjpwYXNz",
        lambda api: "Bearer " + _foreign_token(api),
        lambda api: "Bearer " + _expired_token(api),
        lambda api: "Bearer " + api.token("platform-admin")[:-4] + "AAAA",
    ],
    ids=["garbage", "empty", "basic", "wrong-secret", "expired", "tampered"],
)
def test_bad_credentials_are_401(sqlite_api: Api, header: Any) -> None:
    response = sqlite_api.request("GET", "/tenants", headers={"Authorization": header(sqlite_api)})
    problem(response, 401, code="unauthenticated")


@pytest.mark.parametrize(
    "body",
    [b'{"name": "\xff"}', b'{"name": "Caf\xe9"}', b'{"name": "x", "contactEmail": "\xc3"}'],
    ids=["ff", "latin-1", "truncated"],
)
def test_a_body_that_is_not_utf8_is_400_and_changes_nothing(sqlite_api: Api, body: bytes) -> None:
    head = sqlite_api.services.log.head()
    response = sqlite_api.request(
        "POST",
        "/tenants",
        content=body,
        headers={"Content-Type": "application/json"},
        auth=admin(sqlite_api),
    )
    problem(response, 400, code="invalid-input")
    assert sqlite_api.services.log.head() == head


def test_me_describes_a_jwt_caller(sqlite_api: Api) -> None:
    tenant_id = str(uuid.uuid4())
    response = sqlite_api.request(
        "GET", "/me", auth=sqlite_api.as_("customer-admin", tenant=tenant_id, sub="alice")
    )
    assert response.status_code == 200, response.text
    me = response.json()
    assert set(me) == {"subject", "tenantId", "roles", "permissions", "authMethod", "apiKeyId"}
    assert me["subject"] == "alice"
    assert me["tenantId"] == tenant_id
    assert me["roles"] == ["customer-admin"]
    assert me["authMethod"] == "jwt"
    assert me["apiKeyId"] is None
    assert {"person:read", "person:write", "audit:read", "tenant:read"} <= set(me["permissions"])
    assert "tenant:create" not in me["permissions"]

    member = sqlite_api.request("GET", "/me", auth=sqlite_api.as_("member", tenant=tenant_id))
    assert "person:read" in member.json()["permissions"]
    assert "person:write" not in member.json()["permissions"]
    assert "audit:read" not in member.json()["permissions"]

    auditor = sqlite_api.request("GET", "/me", auth=sqlite_api.as_("auditor", tenant=tenant_id))
    permissions = auditor.json()["permissions"]
    assert "audit:read" in permissions
    assert all(p.endswith(":read") for p in permissions)

    platform = sqlite_api.request("GET", "/me", auth=sqlite_api.as_("platform-admin", sub="ops"))
    assert platform.json()["tenantId"] is None
    assert platform.json()["subject"] == "ops"
    assert "tenant:create" in platform.json()["permissions"]


# -- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "auth", "status"),
    [
        ("GET", "/tenants", True, 200),
        ("GET", "/tenants", False, 401),
        ("GET", f"/tenants/{uuid.UUID(int=7)}", True, 404),
        ("GET", "/tenants?limit=0", True, 400),
        ("GET", "/people", True, 403),
    ],
)
def test_request_id_is_echoed_and_generated(
    sqlite_api: Api, method: str, path: str, auth: bool, status: int
) -> None:
    credentials = admin(sqlite_api) if auth else None
    sent = sqlite_api.request(
        method, path, auth=credentials, headers={"X-Request-Id": "client-req-42"}
    )
    assert sent.status_code == status, sent.text
    assert sent.headers["x-request-id"] == "client-req-42"

    first = sqlite_api.request(method, path, auth=credentials)
    second = sqlite_api.request(method, path, auth=credentials)
    assert first.status_code == status
    assert first.headers["x-request-id"]
    assert second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_request_id_on_writes_and_rejected_bodies(sqlite_api: Api) -> None:
    headers = {"X-Request-Id": "write-1"}
    created = sqlite_api.request(
        "POST", "/tenants", json=TENANT, headers=headers, auth=admin(sqlite_api)
    )
    assert created.status_code == 201
    assert created.headers["x-request-id"] == "write-1"
    unsupported = sqlite_api.request(
        "POST",
        "/tenants",
        content=b"name=x",
        headers={**headers, "Content-Type": "text/plain"},
        auth=admin(sqlite_api),
    )
    assert unsupported.status_code == 415
    assert unsupported.headers["x-request-id"] == "write-1"
    generated = sqlite_api.request(
        "POST",
        "/tenants",
        content=b"name=x",
        headers={"Content-Type": "text/plain"},
        auth=admin(sqlite_api),
    )
    assert generated.headers["x-request-id"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/no-such-thing"), ("DELETE", "/people")])
def test_request_id_on_routing_errors(sqlite_api: Api, method: str, path: str) -> None:
    response = sqlite_api.request(
        method, path, auth=admin(sqlite_api), headers={"X-Request-Id": "route-1"}
    )
    assert response.status_code in (404, 405)
    assert response.headers.get("x-request-id") == "route-1"


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_non_json_body_is_415(sqlite_api: Api, content_type: str) -> None:
    response = sqlite_api.request(
        "POST",
        "/tenants",
        content=b'{"name": "Sneaky", "contactEmail": "s@example.com"}',
        headers={"Content-Type": content_type},
        auth=admin(sqlite_api),
    )
    problem(response, 415)
    assert sqlite_api.request("GET", "/tenants", auth=admin(sqlite_api)).json()["totalCount"] == 0


def test_json_with_charset_is_accepted(sqlite_api: Api) -> None:
    response = sqlite_api.request(
        "POST",
        "/tenants",
        content=b'{"name": "Charset Co", "contactEmail": "c@example.com"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
        auth=admin(sqlite_api),
    )
    assert response.status_code == 201, response.text


def test_unknown_body_field_is_400_naming_it(sqlite_api: Api) -> None:
    response = sqlite_api.request(
        "POST", "/tenants", json={**TENANT, "favouriteColour": "teal"}, auth=admin(sqlite_api)
    )
    problem(response, 400, field="favouriteColour")
    tenant_id = sqlite_api.provision()["tenantId"]
    person = sqlite_api.hire(tenant_id)
    patch = sqlite_api.request(
        "PATCH",
        f"/people/{person['personId']}",
        json={"job_title": "snake"},
        auth=sqlite_api.as_("customer-admin", tenant=tenant_id),
    )
    problem(patch, 400, field="job_title")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 42, "contactEmail": "ops@example.com"}, "name"),
        ({"name": "Typed Co", "contactEmail": ["ops@example.com"]}, "contactEmail"),
        ({"name": "Typed Co", "contactEmail": "ops@example.com", "plan": True}, "plan"),
        ({"contactEmail": "ops@example.com"}, "name"),
    ],
)
def test_wrong_type_or_missing_field_is_400_naming_it(
    sqlite_api: Api, body: dict[str, Any], field: str
) -> None:
    response = sqlite_api.request("POST", "/tenants", json=body, auth=admin(sqlite_api))
    problem(response, 400, field=field)


def test_wrong_type_in_people_body_names_the_field(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    person = sqlite_api.hire(tenant_id)
    response = sqlite_api.request(
        "PATCH",
        f"/people/{person['personId']}",
        json={"employmentStartDate": 20260105},
        auth=sqlite_api.as_("customer-admin", tenant=tenant_id),
    )
    problem(response, 400, field="employmentStartDate")


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"name": "x",}', b"", b"[1, 2, 3]", b'"a string"', b"null"]
)
def test_malformed_or_non_object_json_is_400(sqlite_api: Api, content: bytes) -> None:
    response = sqlite_api.request(
        "POST",
        "/tenants",
        content=content,
        headers={"Content-Type": "application/json"},
        auth=admin(sqlite_api),
    )
    problem(response, 400)


def test_oversized_body_is_413(sqlite_api: Api) -> None:
    big = {**TENANT, "industry": "x" * (2 * 1024 * 1024)}
    response = sqlite_api.request("POST", "/tenants", json=big, auth=admin(sqlite_api))
    problem(response, 413)


# -- every 4xx is problem+json ----------------------------------------------------------------


def test_every_4xx_is_problem_json(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision("Existing Co")["tenantId"]
    member = sqlite_api.as_("member", tenant=tenant_id)
    platform = admin(sqlite_api)
    cases: list[tuple[int, str, str, dict[str, Any]]] = [
        (400, "POST", "/tenants", {"json": {"name": "No Email"}, "auth": platform}),
        (400, "GET", "/people?limit=0", {"auth": member}),
        (401, "GET", "/tenants", {}),
        (403, "POST", "/tenants", {"json": TENANT, "auth": member}),
        (404, "GET", f"/tenants/{uuid.uuid4()}", {"auth": platform}),
        (404, "GET", f"/people/{uuid.uuid4()}", {"auth": member}),
        (404, "GET", "/definitely/not/a/route", {"auth": platform}),
        (405, "DELETE", "/people", {"auth": member}),
        (409, "POST", "/tenants", {"json": {**TENANT, "name": "existing co"}, "auth": platform}),
        (
            412,
            "PUT",
            f"/tenants/{tenant_id}",
            {"json": TENANT, "auth": platform, "headers": {"If-Match": '"99"'}},
        ),
        (
            415,
            "POST",
            "/tenants",
            {"content": b"x", "headers": {"Content-Type": "text/plain"}, "auth": platform},
        ),
    ]
    for status, method, path, kwargs in cases:
        response = sqlite_api.request(method, path, **kwargs)
        problem(response, status)


# -- operations -------------------------------------------------------------------------------


def test_health_endpoints(sqlite_api: Api) -> None:
    live = sqlite_api.client.get("/health/live")
    assert live.status_code == 200
    assert live.headers["content-type"].startswith("application/json")
    ready = sqlite_api.client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


def test_metrics_are_prometheus_text(sqlite_api: Api) -> None:
    assert sqlite_api.request("GET", "/tenants", auth=admin(sqlite_api)).status_code == 200
    response = sqlite_api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# HELP " in text
    assert "# TYPE " in text
    assert any(
        line.startswith("litestar_requests_total{") and "/api/v1/tenants" in line
        for line in text.splitlines()
    )


def test_openapi_document(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path in ("/api/v1/people", "/api/v1/tenants", "/api/v1/audit/events", "/api/v1/me"):
        assert path in paths, sorted(paths)
    assert "post" in paths["/api/v1/people"]
    assert "get" in paths["/api/v1/people"]


# -- read-your-writes -------------------------------------------------------------------------


def test_reads_right_after_writes_see_them(api: Api) -> None:
    platform = admin(api)
    created = api.request("POST", "/tenants", json=TENANT, auth=platform)
    assert created.status_code == 201
    tenant_id = created.json()["tenantId"]
    positions = [int(created.headers["x-log-position"])]
    assert api.request("GET", f"/tenants/{tenant_id}", auth=platform).json() == created.json()
    assert [
        t["tenantId"] for t in api.request("GET", "/tenants", auth=platform).json()["tenants"]
    ] == [tenant_id]

    auth = api.as_("customer-admin", tenant=tenant_id)
    body = {
        "firstName": "Katherine",
        "lastName": "Johnson",
        "email": "kj@example.com",
        "employeeReference": "NASA-1",
        "jobTitle": "Mathematician",
        "employmentStartDate": "2026-01-05",
    }
    hired = api.request("POST", "/people", json=body, auth=auth)
    assert hired.status_code == 201
    positions.append(int(hired.headers["x-log-position"]))
    person_id = hired.json()["personId"]
    listed = api.request("GET", "/people", params={"q": "johnson"}, auth=auth).json()
    assert [p["personId"] for p in listed["people"]] == [person_id]

    patched = api.request(
        "PATCH", f"/people/{person_id}", json={"jobTitle": "Research Lead"}, auth=auth
    )
    assert patched.status_code == 200
    positions.append(int(patched.headers["x-log-position"]))
    fetched = api.request("GET", f"/people/{person_id}", auth=auth)
    assert fetched.json()["jobTitle"] == "Research Lead"
    assert fetched.headers["etag"] == patched.headers["etag"] == '"2"'
    assert api.request("GET", "/people", auth=auth).json()["people"][0]["jobTitle"] == (
        "Research Lead"
    )

    left = api.request(
        "POST",
        f"/people/{person_id}/deactivate",
        json={"employmentEndDate": "2026-03-01"},
        auth=auth,
    )
    assert left.status_code == 200
    positions.append(int(left.headers["x-log-position"]))
    assert api.request("GET", "/people", auth=auth).json()["totalCount"] == 0

    settings = api.request(
        "PUT",
        f"/tenants/{tenant_id}/settings",
        json={
            "currency": "GBP",
            "timezone": "Europe/London",
            "paymentTermsDays": 7,
            "invoicePrefix": "KJ",
        },
        auth=auth,
    )
    assert settings.status_code == 200, settings.text
    positions.append(int(settings.headers["x-log-position"]))
    assert (
        api.request("GET", f"/tenants/{tenant_id}/settings", auth=auth).json()["currency"] == "GBP"
    )

    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


# -- never a 500 for bad input ----------------------------------------------------------------


def test_nul_character_in_a_person_field_is_not_a_500_and_breaks_nothing(
    api: Api, request: pytest.FixtureRequest
) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = api.as_("customer-admin", tenant=tenant_id)
    person = api.hire(tenant_id)

    patched = api.request(
        "PATCH", f"/people/{person['personId']}", json={"firstName": "Ada\u0000Byron"}, auth=auth
    )
    assert patched.status_code in (200, 400), patched.text
    fetched = api.request("GET", f"/people/{person['personId']}", auth=auth).json()
    expected = "Ada\u0000Byron" if patched.status_code == 200 else person["firstName"]
    assert fetched["firstName"] == expected

    # The service keeps working for everybody afterwards.
    later = api.request(
        "POST",
        "/tenants",
        json={"name": "Later Co", "contactEmail": "l@example.com"},
        auth=admin(api),
    )
    assert later.status_code == 201, later.text
    assert api.request("GET", f"/tenants/{later.json()['tenantId']}", auth=admin(api)).is_success


@pytest.mark.parametrize(
    "path", ["/people?q=%00", "/audit/events?type=%00", "/audit/events?actor=user%3A%00"]
)
def test_nul_character_in_a_query_filter_is_not_a_500(
    api: Api, request: pytest.FixtureRequest, path: str
) -> None:
    tenant_id = api.provision()["tenantId"]
    response = api.request("GET", path, auth=api.as_("customer-admin", tenant=tenant_id))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        problem(response, 400)
    else:
        assert response.json()["totalCount"] == 0


@pytest.mark.parametrize("path", ["/tenants", "/people", "/audit/events"])
def test_a_cursor_with_a_huge_position_is_not_a_500(
    api: Api, request: pytest.FixtureRequest, path: str
) -> None:
    tenant_id = api.provision()["tenantId"]
    huge = base64.urlsafe_b64encode(b"a:99999999999999999999999").decode().rstrip("=")
    response = api.request(
        "GET", path, params={"cursor": huge}, auth=api.as_("customer-admin", tenant=tenant_id)
    )
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        problem(response, 400, field="cursor")
    else:
        body = response.json()
        assert body[path.rsplit("/", 1)[-1]] == []
        assert body["nextCursor"] is None


# -- idempotency ------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_response(sqlite_api: Api) -> None:
    headers = {"Idempotency-Key": "create-tenant-0001"}
    first = sqlite_api.request(
        "POST", "/tenants", json=TENANT, headers=headers, auth=admin(sqlite_api)
    )
    assert first.status_code == 201, first.text
    again = sqlite_api.request(
        "POST", "/tenants", json=TENANT, headers=headers, auth=admin(sqlite_api)
    )
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert sqlite_api.request("GET", "/tenants", auth=admin(sqlite_api)).json()["totalCount"] == 1


def test_idempotency_key_reused_with_another_body_is_422(sqlite_api: Api) -> None:
    headers = {"Idempotency-Key": "create-tenant-0002"}
    first = sqlite_api.request(
        "POST", "/tenants", json=TENANT, headers=headers, auth=admin(sqlite_api)
    )
    assert first.status_code == 201, first.text
    other = {"name": "Another Co", "contactEmail": "another@example.com"}
    reused = sqlite_api.request(
        "POST", "/tenants", json=other, headers=headers, auth=admin(sqlite_api)
    )
    problem(reused, 422)
    assert sqlite_api.request("GET", "/tenants", auth=admin(sqlite_api)).json()["totalCount"] == 1
