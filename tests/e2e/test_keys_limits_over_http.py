"""Black-box: API keys, rate limits and idempotency keys on a real `workledger serve --workers 2`
with its limits in the real Redis, spoken to over real HTTP.

Each test holds one keep-alive connection to each worker process (which process serves a
connection is read from /proc), so "the other worker" is a fact, not a hope: a key revoked
through one worker is refused by the other on its very next request; one tenant limit in Redis
is shared by both; an Idempotency-Key answer kept by one is replayed by the other.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Server, environment, wait_until

pytestmark = pytest.mark.slow
PLAN_LIMITS = {"starter": 20, "professional": 50, "enterprise": 100}


class Deployment(Server):
    """`workledger serve --workers 2`, and which of its workers serves a connection."""

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(child) for child in children]

    def worker_of(self, response: httpx.Response) -> int:
        """The worker process holding the server end of the connection `response` came on."""
        stream = response.extensions["network_stream"]
        client_port = stream.get_extra_info("client_addr")[1]
        port = int(self.base.rsplit(":", 1)[1])
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.split(":")[1], 16) == port
                and int(remote.split(":")[1], 16) == client_port
            ):
                inode = fields[9]
        assert inode is not None, "the server end of the connection is not in /proc/net/tcp"
        for pid in self.workers():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
                except OSError:
                    continue
        raise AssertionError("no worker holds the connection")


class Pinned:
    """An HTTP/1.1 keep-alive connection known to be served by one worker process. Every
    request checks it is still that worker (uvicorn closes idle connections after 5 s)."""

    def __init__(self, deployment: Deployment, client: httpx.Client, pid: int) -> None:
        self.deployment, self.client, self.pid = deployment, client, pid

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, "/api/v1" + path, **kwargs)
        assert self.deployment.worker_of(response) == self.pid, "the connection moved"
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Deployment]:
    tmp_path = tmp_path_factory.mktemp("two-workers")
    env = environment(
        tmp_path,
        {
            "WORKLEDGER_REDIS_URL": redis_url,
            "WORKLEDGER_TENANT_RATE_LIMITS": ",".join(f"{p}={n}" for p, n in PLAN_LIMITS.items()),
        },
    )
    with Deployment(env, tmp_path, "--workers", "2") as deployed:
        wait_until(
            lambda: len(_ready_workers(deployed)) >= 2,
            "two ready workers",
            every=0.1,
            process=deployed,
        )
        yield deployed


def _ready_workers(deployed: Deployment) -> set[int]:
    seen = set()
    for _ in range(8):
        try:
            with httpx.Client(base_url=deployed.base, timeout=2) as client:
                response = client.get("/health/ready")
                if response.status_code == 200:
                    seen.add(deployed.worker_of(response))
        except httpx.TransportError:
            pass
    return seen


@contextmanager
def both_workers(deployment: Deployment) -> Iterator[tuple[Pinned, Pinned]]:
    """One keep-alive connection to each of the two workers (opened after the test has minted
    its tokens: minting starts a process, and pinned connections must not idle)."""
    pinned: dict[int, Pinned] = {}
    spare: list[httpx.Client] = []
    for _ in range(50):
        client = httpx.Client(base_url=deployment.base, timeout=10)
        pid = deployment.worker_of(client.get("/health/live"))
        if pid in pinned:
            spare.append(client)
        else:
            pinned[pid] = Pinned(deployment, client, pid)
        if len(pinned) == 2:
            break
    for client in spare:
        client.close()
    assert len(pinned) == 2, "new connections never reached a second worker"
    one, two = pinned.values()
    try:
        yield one, two
    finally:
        one.client.close()
        two.client.close()


def bearer(deployment: Deployment, *args: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {deployment.token(*args)}"}


def new_tenant(deployment: Deployment, plan: str) -> tuple[str, dict[str, str]]:
    """A tenant of `plan` and its customer-admin's token."""
    admin = bearer(deployment, "--role", "platform-admin")
    body = {"name": f"Keys {uuid.uuid4().hex[:8]}", "contactEmail": "a@b.example", "plan": plan}
    created = httpx.post(deployment.base + "/api/v1/tenants", headers=admin, json=body)
    assert created.status_code == 201, created.text
    tenant_id = created.json()["tenantId"]
    return tenant_id, bearer(deployment, "--role", "customer-admin", "--tenant", tenant_id)


def with_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def new_key(conn: Pinned, owner: dict[str, str], **body: Any) -> dict[str, Any]:
    response = conn.post(
        "/api-keys", headers=owner, json={"name": "k", "scopes": ["person:read"], **body}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


# -- API keys -------------------------------------------------------------------------------


def test_a_key_revoked_through_one_worker_is_refused_by_the_other_at_once(
    deployment: Deployment,
) -> None:
    tenant_id, owner = new_tenant(deployment, "enterprise")
    for attempt in range(3):  # a few keys, each revoked right after the other worker used it
        with both_workers(deployment) as (one, two):
            created = new_key(one, owner)
            key, key_id = created["key"], created["apiKeyId"]
            assert created["prefix"] == key[:12]
            me = two.get("/me", headers=with_key(key))
            assert me.status_code == 200, me.text
            assert me.json() == {
                "subject": f"apikey:{key_id}",
                "tenantId": tenant_id,
                "roles": [],
                "permissions": ["person:read"],
                "authMethod": "apiKey",
                "apiKeyId": key_id,
            }
            assert one.get("/people", headers=with_key(key)).status_code == 200

            revoked = one.request("DELETE", f"/api-keys/{key_id}", headers=owner)
            assert revoked.status_code == 204, revoked.text
            refused = two.get("/people", headers=with_key(key))
            assert refused.status_code == 401, f"attempt {attempt}: {refused.text}"
            assert refused.json()["detail"] == "the API key has been revoked"
            assert "ratelimit" not in refused.headers
            assert one.get("/me", headers=with_key(key)).status_code == 401

            shown = one.get(f"/api-keys/{key_id}", headers=owner).json()
            assert shown["status"] == "revoked"
            assert shown["revokedAt"] is not None
            assert set(shown) >= {"prefix", "lastUsedAt", "expiresAt", "revokedAt"}
            assert "key" not in shown


def test_usage_counted_by_both_workers_adds_up(deployment: Deployment) -> None:
    _, owner = new_tenant(deployment, "enterprise")
    with both_workers(deployment) as (one, two):
        created = new_key(one, owner)
        for conn in (one, two, one, two, two):
            assert conn.get("/people", headers=with_key(created["key"])).status_code == 200
        deadline = time.monotonic() + 5
        while True:  # the other worker writes its counts within about a second
            usage = one.get(f"/api-keys/{created['apiKeyId']}/usage?days=1", headers=owner).json()
            if usage["days"][0]["requests"] == 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert usage["days"][0]["requests"] == 5
        assert usage["lastUsedAt"] is not None


def test_a_key_made_by_a_key_stays_inside_its_allowlist(deployment: Deployment) -> None:
    _, owner = new_tenant(deployment, "enterprise")
    with both_workers(deployment) as (one, two):
        maker = new_key(
            one, owner, scopes=["apikey:manage", "person:read"], allowedIps=["127.0.0.0/8"]
        )
        as_maker = with_key(maker["key"])
        child = new_key(two, as_maker)
        assert child["allowedIps"] == ["127.0.0.0/8"]  # inherited
        assert two.get("/people", headers=with_key(child["key"])).status_code == 200
        wider = {"name": "wide", "scopes": ["person:read"], "allowedIps": ["0.0.0.0/0"]}
        refused = one.post("/api-keys", headers=as_maker, json=wider)
        assert refused.status_code == 403, refused.text
        assert "allowedIps" in refused.json()["detail"]
        # Nor may it rotate a key usable from anywhere, and so get that key.
        anywhere = new_key(one, owner)
        rotate = two.post(f"/api-keys/{anywhere['apiKeyId']}/rotate", headers=as_maker)
        assert rotate.status_code == 403, rotate.text
        assert one.get("/people", headers=with_key(anywhere["key"])).status_code == 200


def test_hostile_key_input_is_a_400_and_never_stops_the_read_models(
    deployment: Deployment,
) -> None:
    _, owner = new_tenant(deployment, "enterprise")
    bad_bodies: list[tuple[dict[str, Any], str]] = [
        ({"expiresAt": "9999-12-31T23:59:59-23:59"}, "expiresAt"),  # no UTC form
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "tomorrow"}, "expiresAt"),
        ({"allowedIps": ["10.0.0.1/33"]}, "allowedIps"),
        ({"allowedIps": "10.0.0.1"}, "allowedIps"),
        ({"name": "x" * 10_000}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"scopes": ["people:read"]}, "scopes"),
        ({"scopes": ["tenant:create"]}, "scopes"),
        ({"rateLimitPerMinute": 0}, "rateLimitPerMinute"),
        ({"surprise": True}, "surprise"),
    ]
    with both_workers(deployment) as (one, two):
        for n, (extra, field) in enumerate(bad_bodies):
            conn = (one, two)[n % 2]
            body = {"name": "k", "scopes": ["person:read"], **extra}
            response = conn.post("/api-keys", headers=owner, json=body)
            assert response.status_code == 400, (extra, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert field in [e["field"] for e in response.json()["errors"]], response.text
        for path in ("/api-keys/not-a-uuid", f"/api-keys/{uuid.uuid4()}"):
            assert one.get(path, headers=owner).status_code == 404
        # Writes still settle on both workers: nothing bad was recorded.
        for conn in (one, two):
            assert new_key(conn, owner)["status"] == "active"
        listed = two.get("/api-keys", headers=owner).json()
        assert listed["totalCount"] == 2


def test_two_api_keys_in_one_request_are_refused(deployment: Deployment) -> None:
    _, owner = new_tenant(deployment, "enterprise")
    with both_workers(deployment) as (one, _two):
        first, second = new_key(one, owner)["key"], new_key(one, owner)["key"]
        both = one.get("/me", headers=[("X-API-Key", first), ("X-API-Key", second)])
        assert both.status_code == 400, both.text
        assert [e["field"] for e in both.json()["errors"]] == ["X-API-Key"]


# -- rate limits in Redis -------------------------------------------------------------------


def test_one_tenant_limit_in_redis_is_shared_by_both_workers(deployment: Deployment) -> None:
    _, member = new_tenant(deployment, "starter")
    limit = PLAN_LIMITS["starter"]
    with both_workers(deployment) as (one, two):
        answers = [(one, two)[n % 2].get("/people", headers=member) for n in range(limit)]
        assert [a.status_code for a in answers] == [200] * limit
        remaining = [int(a.headers["x-ratelimit-remaining"]) for a in answers]
        assert remaining == list(range(limit - 1, -1, -1))  # one count, whichever worker
        for answer in answers:
            assert answer.headers["ratelimit-policy"] == f'"tenant";q={limit};w=60'
            assert answer.headers["x-ratelimit-limit"] == str(limit)
        for conn in (two, one):
            refused = conn.get("/people", headers=member)
            assert refused.status_code == 429, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == "rate-limited"
            retry_after = int(refused.headers["retry-after"])
            assert 1 <= retry_after <= 60
            assert refused.headers["ratelimit-policy"] == f'"tenant";q={limit};w=60'
            assert refused.headers["ratelimit"] == f'"tenant";r=0;t={retry_after}'
            assert refused.headers["x-ratelimit-limit"] == str(limit)
            assert refused.headers["x-ratelimit-remaining"] == "0"
            assert refused.headers["x-ratelimit-reset"] == str(retry_after)


def test_one_key_limit_in_redis_is_shared_by_both_workers(deployment: Deployment) -> None:
    _, owner = new_tenant(deployment, "enterprise")
    with both_workers(deployment) as (one, two):
        key = with_key(new_key(one, owner, rateLimitPerMinute=3)["key"])
        statuses = [conn.get("/people", headers=key).status_code for conn in (two, one, two, one)]
        assert statuses == [200, 200, 200, 429]
        refused = two.get("/people", headers=key)
        assert refused.status_code == 429
        assert refused.headers["ratelimit-policy"] == (
            f'"apikey";q=3;w=60, "tenant";q={PLAN_LIMITS["enterprise"]};w=60'
        )
        assert re.fullmatch(r'"apikey";r=0;t=\d+', refused.headers["ratelimit"])
        # The key's refusals did not use up its tenant's allowance.
        assert one.get("/people", headers=owner).status_code == 200


# -- idempotency keys -----------------------------------------------------------------------


def test_a_post_kept_by_one_worker_is_replayed_by_the_other(deployment: Deployment) -> None:
    _, owner = new_tenant(deployment, "enterprise")
    with both_workers(deployment) as (one, two):
        key = new_key(one, owner, scopes=["customer:read", "customer:write"])["key"]
        body = {"name": f"Acme {uuid.uuid4().hex[:6]}"}
        retry = {"Idempotency-Key": "add-acme"}
        first = one.post("/customers", headers={**owner, **retry}, json=body)
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        again = two.post("/customers", headers={**owner, **retry}, json=body)
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["x-ratelimit-limit"]  # a replay is a request like any other
        other = two.post("/customers", headers={**owner, **retry}, json={"name": "Else"})
        assert other.status_code == 422, other.text
        assert other.json()["code"] == "idempotency-key-reused"

        # Keys are scoped to the caller: the tenant's API key has its own "add-acme".
        by_key = one.post("/customers", headers={**with_key(key), **retry}, json={"name": "Key"})
        assert by_key.status_code == 201, by_key.text
        assert "idempotent-replayed" not in by_key.headers
        replayed = two.post("/customers", headers={**with_key(key), **retry}, json={"name": "Key"})
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json()["customerId"] == by_key.json()["customerId"]
        assert one.get("/customers", headers=owner).json()["totalCount"] == 2


def test_an_issued_key_replayed_by_the_other_worker_stays_uncached(deployment: Deployment) -> None:
    _, owner = new_tenant(deployment, "enterprise")
    with both_workers(deployment) as (one, two):
        body = {"name": "deploy bot", "scopes": ["person:read"]}
        retry = {**owner, "Idempotency-Key": "issue-deploy-bot"}
        first = one.post("/api-keys", headers=retry, json=body)
        assert first.status_code == 201, first.text
        again = two.post("/api-keys", headers=retry, json=body)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["key"] == first.json()["key"]
        assert again.headers["cache-control"] == "no-store"
        assert two.get("/me", headers=with_key(first.json()["key"])).status_code == 200
        assert one.get("/api-keys", headers=owner).json()["totalCount"] == 1


# -- the server's own record ----------------------------------------------------------------


def test_the_server_logged_no_traceback_and_no_key(deployment: Deployment) -> None:
    """Runs last: everything above answered without a server error, and no key reached the
    log."""
    deployment.assert_no_traceback()
    assert "wlk_" not in deployment.output()
