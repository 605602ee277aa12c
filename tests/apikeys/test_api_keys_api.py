"""API keys over HTTP (API.md "API keys", docs/api-keys.md), on SQLite and PostgreSQL: the key
shown once, scopes, expiry, revocation and rotation effective on the next request, malformed
keys, IP allowlists (also over a real server from 127.0.0.1), tenant separation, roles, usage
and the audit trail."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from application.api_keys import KeyHasher
from domain.api_key import KEY_LENGTH, format_key, key_id_of
from tests.api.problems import problem
from tests.apikeys.conftest import FakeClock
from tests.conftest import Api
from tests.e2e.processes import STORES, Server, environment, store_settings

PERSON = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "jobTitle": "Engineer",
    "employmentStartDate": "2026-01-05",
}


class Tenant:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.id = api.provision()["tenantId"]
        self.admin = api.as_("customer-admin", tenant=self.id)

    def create(self, expected: int = 201, **body: Any) -> dict[str, Any]:
        body = {"name": "CI pipeline", "scopes": ["person:read"], **body}
        response = self.api.request("POST", "/api-keys", json=body, auth=self.admin)
        assert response.status_code == expected, response.text
        return dict(response.json())

    def get(self, key_id: str) -> dict[str, Any]:
        response = self.api.request("GET", f"/api-keys/{key_id}", auth=self.admin)
        assert response.status_code == 200, response.text
        return dict(response.json())


def with_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def hire_body() -> dict[str, Any]:
    n = uuid.uuid4().hex[:8]
    return {**PERSON, "email": f"grace.{n}@example.com", "employeeReference": f"K-{n}"}


# -- issuing and reading ----------------------------------------------------------------------


def test_a_key_is_shown_once_and_never_again(api: Api, clock: FakeClock) -> None:
    tenant = Tenant(api)
    body = {
        "name": "Payroll sync",
        "scopes": ["person:read", "person:write", "person:read"],
        "expiresAt": (clock.now() + timedelta(days=30)).isoformat(),
        "allowedIps": ["10.1.2.3/8", "2001:db8::/32"],
        "rateLimitPerMinute": 120,
    }
    response = api.request("POST", "/api-keys", json=body, auth=tenant.admin)
    assert response.status_code == 201, response.text
    created = response.json()
    key = created["key"]
    key_id = created["apiKeyId"]
    assert list(created)[:2] == ["apiKeyId", "key"]
    assert len(key) == KEY_LENGTH
    assert key.startswith("wlk_")
    assert key_id_of(key) == uuid.UUID(key_id)
    assert response.headers["location"] == f"/api/v1/api-keys/{key_id}"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) >= 1
    assert created["prefix"] == key[:12]
    assert created["scopes"] == ["person:read", "person:write"]
    assert created["allowedIps"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert created["rateLimitPerMinute"] == 120
    assert created["status"] == "active"
    assert created["lastUsedAt"] is None
    assert created["revokedAt"] is None

    shown = tenant.get(key_id)
    assert shown == {k: v for k, v in created.items() if k != "key"}
    assert set(shown) == {
        "apiKeyId",
        "name",
        "prefix",
        "scopes",
        "expiresAt",
        "allowedIps",
        "rateLimitPerMinute",
        "createdAt",
        "rotatedAt",
        "lastUsedAt",
        "revokedAt",
        "status",
    }
    listed = api.request("GET", "/api-keys", auth=tenant.admin)
    assert listed.status_code == 200
    assert listed.json() == {"apiKeys": [shown], "totalCount": 1, "nextCursor": None}

    # Neither the key nor its HMAC is anywhere a client or an auditor can read, nor in the log.
    key_hash = api.services.get(KeyHasher).hash(key)
    trail = api.request("GET", "/audit/events", auth=tenant.admin, params={"aggregateId": key_id})
    assert [e["type"] for e in trail.json()["events"]] == ["ApiKeyCreated"]
    stream = api.request("GET", f"/audit/streams/{key_id}", auth=tenant.admin)
    state = api.request("GET", f"/audit/streams/{key_id}/state?version=1", auth=tenant.admin)
    assert state.json()["state"]["prefix"] == key[:12]
    for text in (listed.text, trail.text, stream.text, state.text):
        assert key not in text
        assert key[12:40] not in text
        assert key_hash not in text
    stored = api.services.log.recorder.select_notifications(start=1, limit=10_000)
    for notification in stored:
        assert key.encode() not in notification.state
        assert key_hash.encode() not in notification.state


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["person:read"]}, "name"),
        ({"name": "x"}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["person:reed"]}, "scopes"),
        ({"name": "x", "scopes": ["tenant:create"]}, "scopes"),
        ({"name": "x", "scopes": "person:read"}, "scopes"),
        ({"name": "x", "scopes": ["person:read"], "allowedIps": ["10.0.0.0/33"]}, "allowedIps"),
        ({"name": "x", "scopes": ["person:read"], "allowedIps": ["example.com"]}, "allowedIps"),
        ({"name": "x", "scopes": ["person:read"], "rateLimitPerMinute": 0}, "rateLimitPerMinute"),
        (
            {"name": "x", "scopes": ["person:read"], "rateLimitPerMinute": 100_001},
            "rateLimitPerMinute",
        ),
        (
            {"name": "x", "scopes": ["person:read"], "rateLimitPerMinute": 1.5},
            "rateLimitPerMinute",
        ),
        (
            {"name": "x", "scopes": ["person:read"], "expiresAt": "2020-01-01T00:00:00Z"},
            "expiresAt",
        ),
        ({"name": "x", "scopes": ["person:read"], "expiresAt": "2099-01-01T00:00:00"}, "expiresAt"),
        ({"name": "x", "scopes": ["person:read"], "expiresAt": "soon"}, "expiresAt"),
        ({"name": "x", "scopes": ["person:read"], "key": "wlk_mine"}, "key"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    sqlite_api: Api, body: dict[str, Any], field: str
) -> None:
    tenant = Tenant(sqlite_api)
    response = sqlite_api.request("POST", "/api-keys", json=body, auth=tenant.admin)
    problem(response, 400, field=field)
    listed = sqlite_api.request("GET", "/api-keys", auth=tenant.admin)
    assert listed.json()["totalCount"] == 0


@pytest.mark.parametrize("role", ["project-manager", "squad-lead", "member", "finance", "auditor"])
def test_only_apikey_manage_may_create_list_or_revoke_keys(sqlite_api: Api, role: str) -> None:
    tenant = Tenant(sqlite_api)
    key_id = tenant.create()["apiKeyId"]
    auth = sqlite_api.as_(role, tenant=tenant.id)
    body = {"name": "x", "scopes": ["person:read"]}
    problem(sqlite_api.request("POST", "/api-keys", json=body, auth=auth), 403, "forbidden")
    problem(sqlite_api.request("GET", "/api-keys", auth=auth), 403, "forbidden")
    problem(sqlite_api.request("GET", f"/api-keys/{key_id}", auth=auth), 403, "forbidden")
    problem(sqlite_api.request("DELETE", f"/api-keys/{key_id}", auth=auth), 403, "forbidden")
    problem(sqlite_api.request("POST", f"/api-keys/{key_id}/rotate", auth=auth), 403, "forbidden")
    problem(sqlite_api.request("GET", f"/api-keys/{key_id}/usage", auth=auth), 403, "forbidden")
    assert tenant.get(key_id)["status"] == "active"


def test_a_key_cannot_mint_a_key_with_more_power_than_it_holds(sqlite_api: Api) -> None:
    tenant = Tenant(sqlite_api)
    manager = tenant.create(scopes=["apikey:manage", "person:read"])["key"]
    wider = {"name": "wider", "scopes": ["person:read", "person:write"]}
    refused = sqlite_api.request("POST", "/api-keys", json=wider, headers=with_key(manager))
    body = problem(refused, 403, "forbidden")
    assert "person:write" in body["detail"]
    narrower = {"name": "narrower", "scopes": ["person:read"]}
    created = sqlite_api.request("POST", "/api-keys", json=narrower, headers=with_key(manager))
    assert created.status_code == 201, created.text
    listed = sqlite_api.request("GET", "/api-keys", auth=tenant.admin).json()
    assert [k["name"] for k in listed["apiKeys"]] == ["CI pipeline", "narrower"]


# -- authenticating -------------------------------------------------------------------------


def test_a_key_acts_in_its_tenant_with_its_scopes_only(api: Api) -> None:
    tenant = Tenant(api)
    created = tenant.create(scopes=["person:read", "customer:read"])
    key, key_id = created["key"], created["apiKeyId"]

    me = api.request("GET", "/me", headers=with_key(key))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "subject": f"apikey:{key_id}",
        "tenantId": tenant.id,
        "roles": [],
        "permissions": ["customer:read", "person:read"],
        "authMethod": "apiKey",
        "apiKeyId": key_id,
    }
    assert api.request("GET", "/people", headers=with_key(key)).status_code == 200
    assert api.request("GET", "/customers", headers=with_key(key)).status_code == 200
    problem(api.request("POST", "/people", json=hire_body(), headers=with_key(key)), 403)
    problem(api.request("GET", "/billing/invoices", headers=with_key(key)), 403)
    problem(api.request("GET", "/audit/events", headers=with_key(key)), 403)
    problem(api.request("GET", "/api-keys", headers=with_key(key)), 403)
    other = api.provision()["tenantId"]
    problem(api.request("GET", f"/people?tenantId={other}", headers=with_key(key)), 403)


def test_writes_made_with_a_key_are_audited_as_the_key(api: Api) -> None:
    tenant = Tenant(api)
    created = tenant.create(scopes=["person:read", "person:write"])
    hired = api.request(
        "POST",
        "/people",
        json=hire_body(),
        headers={**with_key(created["key"]), "X-Request-Id": "k-1"},
    )
    assert hired.status_code == 201, hired.text
    person_id = hired.json()["personId"]
    trail = api.request(
        "GET", "/audit/events", auth=tenant.admin, params={"aggregateId": person_id}
    )
    assert [(e["type"], e["actor"], e["requestId"]) for e in trail.json()["events"]] == [
        ("PersonCreated", f"apikey:{created['apiKeyId']}", "k-1")
    ]
    by_actor = api.request(
        "GET", "/audit/events", auth=tenant.admin, params={"actor": f"apikey:{created['apiKeyId']}"}
    )
    assert by_actor.json()["totalCount"] == 1


def _tampered(key: str) -> str:
    position = 20
    replacement = "A" if key[position] != "A" else "B"
    return key[:position] + replacement + key[position + 1 :]


@pytest.mark.parametrize(
    "make",
    [
        lambda key: "",
        lambda key: "garbage",
        lambda key: key[:-1],
        lambda key: key + "x",
        lambda key: _tampered(key),
        lambda key: key[:-6] + ("000000" if key[-6:] != "000000" else "000001"),
        lambda key: "wlk-" + key[4:],
        lambda key: format_key(uuid.uuid4(), secrets.token_bytes(32)),  # well-formed, unknown
        lambda key: format_key(key_id_of(key), secrets.token_bytes(32)),  # right id, wrong secret
    ],
    ids=[
        "empty",
        "garbage",
        "short",
        "long",
        "one-char",
        "checksum",
        "prefix",
        "unknown",
        "wrong-secret",
    ],
)
def test_malformed_or_unknown_keys_are_401(sqlite_api: Api, make: Any) -> None:
    tenant = Tenant(sqlite_api)
    key = tenant.create()["key"]
    response = sqlite_api.request("GET", "/people", headers=with_key(make(key)))
    problem(response, 401, "unauthenticated")
    assert "ratelimit" not in response.headers  # nobody was authenticated, so nobody is limited
    assert sqlite_api.request("GET", "/people", headers=with_key(key)).status_code == 200


def test_a_key_and_a_bearer_token_together_are_refused(sqlite_api: Api) -> None:
    tenant = Tenant(sqlite_api)
    key = tenant.create()["key"]
    response = sqlite_api.request("GET", "/people", auth=tenant.admin, headers=with_key(key))
    problem(response, 400, field="X-API-Key")


def test_an_expired_key_is_401_and_shown_as_expired(api: Api, clock: FakeClock) -> None:
    tenant = Tenant(api)
    expires_at = clock.now() + timedelta(hours=1)
    created = tenant.create(expiresAt=expires_at.isoformat())
    key = created["key"]
    assert api.request("GET", "/people", headers=with_key(key)).status_code == 200
    clock.advance(minutes=59, seconds=59)
    assert api.request("GET", "/people", headers=with_key(key)).status_code == 200
    clock.advance(seconds=1)
    expired = api.request("GET", "/people", headers=with_key(key))
    assert "expired" in problem(expired, 401, "unauthenticated")["detail"]
    assert tenant.get(created["apiKeyId"])["status"] == "expired"
    rotated = api.request("POST", f"/api-keys/{created['apiKeyId']}/rotate", auth=tenant.admin)
    assert problem(rotated, 409, "illegal-transition")["transition"]["from"] == "expired"
    # An expired key may still be revoked (tidying up).
    revoked = api.request("DELETE", f"/api-keys/{created['apiKeyId']}", auth=tenant.admin)
    assert revoked.status_code == 204


def test_revocation_holds_on_the_very_next_request(api: Api) -> None:
    tenant = Tenant(api)
    created = tenant.create()
    key, key_id = created["key"], created["apiKeyId"]
    assert api.request("GET", "/people", headers=with_key(key)).status_code == 200

    revoked = api.request("DELETE", f"/api-keys/{key_id}", auth=tenant.admin)
    assert revoked.status_code == 204, revoked.text
    assert revoked.content == b""
    assert int(revoked.headers["x-log-position"]) >= 1

    refused = api.request("GET", "/people", headers=with_key(key))
    assert "revoked" in problem(refused, 401, "unauthenticated")["detail"]
    shown = tenant.get(key_id)
    assert shown["status"] == "revoked"
    assert shown["revokedAt"] is not None
    again = api.request("DELETE", f"/api-keys/{key_id}", auth=tenant.admin)
    assert problem(again, 409, "illegal-transition")["transition"] == {
        "action": "revoke",
        "from": "revoked",
    }
    rotate = api.request("POST", f"/api-keys/{key_id}/rotate", auth=tenant.admin)
    problem(rotate, 409, "illegal-transition")


def test_revocation_holds_in_another_process_at_once(api: Api) -> None:
    """Authentication reads the log, not a read model: a key revoked through one process is
    refused by another on its next request, with no projection catch-up in between."""
    from litestar.testing import TestClient

    from entrypoints.container import build
    from entrypoints.http.app import create_app

    tenant = Tenant(api)
    created = tenant.create()
    # Another process of the same deployment: its own connections, the same settings (the
    # API-key secret included).
    elsewhere = build(api.services.settings)
    with TestClient(create_app(elsewhere, follow_log=False)) as client:
        other = Api(client, elsewhere)
        assert other.request("GET", "/me", headers=with_key(created["key"])).status_code == 200
        revoked = api.request("DELETE", f"/api-keys/{created['apiKeyId']}", auth=tenant.admin)
        assert revoked.status_code == 204
        refused = other.request("GET", "/me", headers=with_key(created["key"]))
        problem(refused, 401, "unauthenticated")


def test_rotation_gives_a_new_key_and_the_old_one_stops(api: Api) -> None:
    tenant = Tenant(api)
    created = tenant.create()
    old, key_id = created["key"], created["apiKeyId"]

    rotated = api.request("POST", f"/api-keys/{key_id}/rotate", auth=tenant.admin)
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["key"]
    assert new != old
    assert key_id_of(new) == uuid.UUID(key_id)
    assert rotated.json()["apiKeyId"] == key_id
    assert rotated.json()["prefix"] == new[:12] != created["prefix"]
    assert rotated.json()["rotatedAt"] is not None
    assert rotated.headers["etag"] == '"2"'

    assert api.request("GET", "/people", headers=with_key(new)).status_code == 200
    refused = api.request("GET", "/people", headers=with_key(old))
    assert "rotated" in problem(refused, 401, "unauthenticated")["detail"]
    assert tenant.get(key_id)["prefix"] == new[:12]


def test_rotation_with_a_grace_period_keeps_the_old_key_working_until_it_ends(
    api: Api, clock: FakeClock
) -> None:
    tenant = Tenant(api)
    created = tenant.create()
    old, key_id = created["key"], created["apiKeyId"]
    rotated = api.request(
        "POST",
        f"/api-keys/{key_id}/rotate",
        json={"gracePeriodSeconds": 3600},
        auth=tenant.admin,
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["key"]
    assert api.request("GET", "/people", headers=with_key(old)).status_code == 200
    assert api.request("GET", "/people", headers=with_key(new)).status_code == 200
    clock.advance(seconds=3600)
    problem(api.request("GET", "/people", headers=with_key(old)), 401, "unauthenticated")
    assert api.request("GET", "/people", headers=with_key(new)).status_code == 200

    for bad in (-1, 604_801, "1h"):
        refused = api.request(
            "POST",
            f"/api-keys/{key_id}/rotate",
            json={"gracePeriodSeconds": bad},
            auth=tenant.admin,
        )
        problem(refused, 400, field="gracePeriodSeconds")
    assert api.request("GET", "/people", headers=with_key(new)).status_code == 200


def test_a_suspended_tenants_key_reads_but_cannot_write(sqlite_api: Api) -> None:
    tenant = Tenant(sqlite_api)
    created = tenant.create(scopes=["person:read", "person:write"])
    platform = sqlite_api.as_("platform-admin")
    suspended = sqlite_api.request("POST", f"/tenants/{tenant.id}/suspend", auth=platform)
    assert suspended.status_code == 200, suspended.text
    key = with_key(created["key"])
    assert sqlite_api.request("GET", "/people", headers=key).status_code == 200
    problem(sqlite_api.request("POST", "/people", json=hire_body(), headers=key), 403)
    # A leaked key can still be stopped while the tenant is suspended.
    revoked = sqlite_api.request("DELETE", f"/api-keys/{created['apiKeyId']}", auth=tenant.admin)
    assert revoked.status_code == 204
    problem(sqlite_api.request("GET", "/people", headers=key), 401)


def test_an_allowlist_refuses_an_address_outside_it(sqlite_api: Api) -> None:
    """The test client's peer is "testclient", which is no IP address: it lies in no block.
    Real addresses are tested over a real server below."""
    tenant = Tenant(sqlite_api)
    fenced = tenant.create(allowedIps=["0.0.0.0/0", "::/0"])["key"]
    open_key = tenant.create()["key"]
    refused = sqlite_api.request("GET", "/people", headers=with_key(fenced))
    assert "testclient" in problem(refused, 403, "forbidden")["detail"]
    assert sqlite_api.request("GET", "/people", headers=with_key(open_key)).status_code == 200


# -- tenants --------------------------------------------------------------------------------


def test_another_tenants_key_is_a_404(api: Api) -> None:
    mine, theirs = Tenant(api), Tenant(api)
    key_id = theirs.create()["apiKeyId"]
    for method, path in [
        ("GET", f"/api-keys/{key_id}"),
        ("DELETE", f"/api-keys/{key_id}"),
        ("POST", f"/api-keys/{key_id}/rotate"),
        ("GET", f"/api-keys/{key_id}/usage"),
    ]:
        problem(api.request(method, path, auth=mine.admin), 404, "not-found")
    assert api.request("GET", "/api-keys", auth=mine.admin).json()["totalCount"] == 0
    assert theirs.get(key_id)["status"] == "active"
    missing = uuid.uuid4()
    problem(api.request("GET", f"/api-keys/{missing}", auth=mine.admin), 404)


def test_lists_page_in_creation_order(sqlite_api: Api) -> None:
    tenant = Tenant(sqlite_api)
    names = [f"key {n}" for n in range(5)]
    for name in names:
        tenant.create(name=name)
    first = sqlite_api.request("GET", "/api-keys?limit=3", auth=tenant.admin).json()
    assert [k["name"] for k in first["apiKeys"]] == names[:3]
    assert first["totalCount"] == 5
    rest = sqlite_api.request(
        "GET", "/api-keys", auth=tenant.admin, params={"limit": 3, "cursor": first["nextCursor"]}
    ).json()
    assert [k["name"] for k in rest["apiKeys"]] == names[3:]
    assert rest["nextCursor"] is None


# -- usage ----------------------------------------------------------------------------------


def test_usage_counts_requests_per_day_and_the_last_use(api: Api, clock: FakeClock) -> None:
    tenant = Tenant(api)
    created = tenant.create()
    key, key_id = created["key"], created["apiKeyId"]
    empty = api.request("GET", f"/api-keys/{key_id}/usage", auth=tenant.admin)
    assert empty.status_code == 200, empty.text
    assert empty.json()["lastUsedAt"] is None
    assert len(empty.json()["days"]) == 30
    assert all(day["requests"] == 0 for day in empty.json()["days"])

    yesterday = clock.now()
    for _ in range(2):
        assert api.request("GET", "/people", headers=with_key(key)).status_code == 200
    clock.advance(days=1)
    for _ in range(3):
        assert api.request("GET", "/people", headers=with_key(key)).status_code == 200
    problem(api.request("POST", "/people", json=hire_body(), headers=with_key(key)), 403)
    problem(api.request("GET", "/people", headers=with_key(_tampered(key))), 401)  # not the key

    usage = api.request("GET", f"/api-keys/{key_id}/usage?days=3", auth=tenant.admin).json()
    today = clock.now().date()
    assert usage == {
        "apiKeyId": key_id,
        "lastUsedAt": usage["lastUsedAt"],
        "days": [
            {"date": (today - timedelta(days=2)).isoformat(), "requests": 0},
            {"date": yesterday.date().isoformat(), "requests": 2},
            {"date": today.isoformat(), "requests": 4},
        ],
    }
    last_used = datetime.fromisoformat(usage["lastUsedAt"].replace("Z", "+00:00"))
    assert abs(last_used - clock.now()) < timedelta(seconds=1)
    assert tenant.get(key_id)["lastUsedAt"] == usage["lastUsedAt"]
    listed = api.request("GET", "/api-keys", auth=tenant.admin).json()["apiKeys"]
    assert listed[0]["lastUsedAt"] == usage["lastUsedAt"]
    for days in (0, 91, "x"):
        problem(
            api.request("GET", f"/api-keys/{key_id}/usage?days={days}", auth=tenant.admin),
            400,
            field="days",
        )


def test_usage_is_written_in_the_background_within_about_a_second(api: Api) -> None:
    tenant = Tenant(api)
    created = tenant.create()
    assert api.request("GET", "/me", headers=with_key(created["key"])).status_code == 200
    deadline = time.monotonic() + 5
    rows: list[Any] = []
    while time.monotonic() < deadline and not rows:
        rows = api.services.db.query(
            "SELECT requests FROM api_key_usage WHERE key_id = ?", (created["apiKeyId"],)
        )
        time.sleep(0.05)
    assert rows == [(1,)]


# -- over a real server: the allowlist sees the TCP peer ------------------------------------


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with Server(environment(tmp_path, store_settings(request)), tmp_path) as srv:
        yield srv


@pytest.mark.slow
def test_allowlists_over_real_http_see_the_peer_address(server: Server) -> None:
    """From 127.0.0.1 and from 127.0.0.2 (another loopback source address). uvicorn believes
    X-Forwarded-For only from its trusted proxies (FORWARDED_ALLOW_IPS, by default 127.0.0.1
    and ::1); from any other peer the header changes nothing."""
    admin = {"Authorization": f"Bearer {server.token('--role', 'platform-admin')}"}
    base = server.base + "/api/v1"
    other_source = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        httpx.Client(base_url=base, timeout=10) as http,
        httpx.Client(base_url=base, timeout=10, transport=other_source) as from_two,
    ):
        body = {"name": "Fenced", "contactEmail": "a@b.co"}
        created = http.post("/tenants", headers=admin, json=body)
        assert created.status_code == 201, created.text
        tenant_id = created.json()["tenantId"]
        owner = {
            "Authorization": "Bearer "
            + server.token("--role", "customer-admin", "--tenant", tenant_id)
        }

        def issue(*blocks: str) -> str:
            body: dict[str, Any] = {"name": "k", "scopes": ["person:read"]}
            if blocks:
                body["allowedIps"] = list(blocks)
            response = http.post("/api-keys", headers=owner, json=body)
            assert response.status_code == 201, response.text
            return str(response.json()["key"])

        loopback = issue("127.0.0.0/8")
        only_one = issue("127.0.0.1/32")
        private = issue("10.0.0.0/8", "192.168.0.0/16")
        mapped = issue("::ffff:127.0.0.1/128")
        anywhere = issue()

        for key in (loopback, only_one, mapped, anywhere):
            assert http.get("/people", headers=with_key(key)).status_code == 200
        refused = http.get("/people", headers=with_key(private))
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "forbidden"
        assert "127.0.0.1" in refused.json()["detail"]

        assert from_two.get("/people", headers=with_key(loopback)).status_code == 200
        assert from_two.get("/people", headers=with_key(anywhere)).status_code == 200
        for key in (only_one, mapped, private):
            fenced_out = from_two.get("/people", headers=with_key(key))
            assert fenced_out.status_code == 403, fenced_out.text
            assert "127.0.0.2" in fenced_out.json()["detail"]
        # 127.0.0.2 is no trusted proxy: claiming to forward for 127.0.0.1 changes nothing.
        spoofed = from_two.get(
            "/people", headers={**with_key(only_one), "X-Forwarded-For": "127.0.0.1"}
        )
        assert spoofed.status_code == 403, spoofed.text

        me = http.get("/me", headers=with_key(loopback)).json()
        assert me["authMethod"] == "apiKey"
        assert me["tenantId"] == tenant_id
