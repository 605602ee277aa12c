"""Rate limits (API.md "Conventions" and "API keys", docs/rate-limits.md): per API key and per
tenant, in memory and in the real Redis on this machine, 429 with Retry-After, the
RateLimit-Policy/RateLimit and X-RateLimit-* headers, and failing open when Redis is down.

Redis tests use a key prefix of their own and delete only their keys. When Redis cannot be
reached they are skipped on a laptop and FAIL under CI=true, like the PostgreSQL tests.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from litestar.testing import TestClient

from adapters.rate_limits import CachedTenantPlans, LimitsRateLimitStore
from application.authorization import Principal
from application.queries import Document, Page, TenantRecord
from application.rate_limits import (
    PLAN_LIMITS,
    Quota,
    RateLimitPolicy,
    RateLimits,
    RateLimitStore,
)
from entrypoints.container import Services, build
from entrypoints.http.app import create_app
from tests.api.problems import problem
from tests.conftest import Api, settings_for

UNREACHABLE_REDIS = "redis://127.0.0.1:1"  # nothing listens on port 1: refused at once
HEADERS = ("ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining")


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards, and nothing else."""
    prefix = f"wltest-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


StoreFactory = Callable[[], LimitsRateLimitStore]


@pytest.fixture(params=["memory", "redis"])
def new_store(request: pytest.FixtureRequest) -> StoreFactory:
    """Makes stores of one kind; Redis stores made by one test share its prefix (as the
    processes of one deployment share a Redis)."""
    if request.param == "memory":
        return LimitsRateLimitStore
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: LimitsRateLimitStore(url, key_prefix=prefix)


def limited(services: Services, store: RateLimitStore, **policy: Any) -> None:
    """Use this store and policy (before the first request resolves the rate limiter)."""
    services.container.register(RateLimitStore, instance=store)
    services.container.register(RateLimitPolicy, instance=RateLimitPolicy(**policy))


@pytest.fixture
def client_for(make_services: Any, tmp_path: Any) -> Iterator[Callable[..., Api]]:
    """API clients over one SQLite store (several of them: the processes of a deployment)."""
    url = f"sqlite:///{tmp_path}/workledger.db"
    clients: list[TestClient[Any]] = []

    def make(store: RateLimitStore, **policy: Any) -> Api:
        services = make_services(url)
        limited(services, store, **policy)
        client = TestClient(create_app(services, follow_log=False))
        client.__enter__()
        clients.append(client)
        return Api(client, services)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def policy_of(response: Any) -> dict[str, tuple[int, int]]:
    """`RateLimit-Policy` as {name: (quota, window)}."""
    found = re.findall(r'"([a-z]+)";q=(\d+);w=(\d+)', response.headers["ratelimit-policy"])
    return {name: (int(q), int(w)) for name, q, w in found}


def limit_of(response: Any) -> tuple[str, int, int]:
    """`RateLimit` as (policy, remaining, seconds to reset)."""
    match = re.fullmatch(r'"([a-z]+)";r=(\d+);t=(\d+)', response.headers["ratelimit"])
    assert match, response.headers["ratelimit"]
    return match.group(1), int(match.group(2)), int(match.group(3))


def assert_consistent(response: Any) -> None:
    """The X-RateLimit-* headers tell the same quota as RateLimit."""
    name, remaining, reset = limit_of(response)
    assert int(response.headers["x-ratelimit-limit"]) == policy_of(response)[name][0]
    assert int(response.headers["x-ratelimit-remaining"]) == remaining
    assert int(response.headers["x-ratelimit-reset"]) == reset
    assert 1 <= reset <= 60


def new_key(api: Api, admin: dict[str, str], **body: Any) -> str:
    response = api.request(
        "POST", "/api-keys", json={"name": "k", "scopes": ["person:read"], **body}, auth=admin
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


# -- the store ------------------------------------------------------------------------------


def test_the_store_counts_fixed_windows_per_policy_and_subject(new_store: StoreFactory) -> None:
    store = new_store()
    quota = Quota("apikey", 3, 60)
    states = [store.hit(quota, "apikey:a") for _ in range(5)]
    assert all(state is not None for state in states)
    assert [(s.allowed, s.remaining) for s in states if s] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
        (False, 0),
    ]
    assert all(s is not None and 1 <= s.reset_seconds <= 60 for s in states)
    other_subject = store.hit(quota, "apikey:b")
    other_policy = store.hit(Quota("tenant", 3, 60), "apikey:a")
    assert other_subject is not None
    assert other_policy is not None
    assert (other_subject.allowed, other_subject.remaining) == (True, 2)
    assert (other_policy.allowed, other_policy.remaining) == (True, 2)


def test_a_window_starts_afresh_when_it_ends(new_store: StoreFactory) -> None:
    store = new_store()
    quota = Quota("tenant", 1, 1)
    first, second = store.hit(quota, "t"), store.hit(quota, "t")
    assert first is not None
    assert second is not None
    assert (first.allowed, second.allowed) == (True, False)
    time.sleep(2.1)  # Redis expiry has a resolution of a second
    third = store.hit(quota, "t")
    assert third is not None
    assert third.allowed


def test_redis_counts_are_shared_by_every_store_on_it(redis_url: str, redis_prefix: str) -> None:
    one = LimitsRateLimitStore(redis_url, key_prefix=redis_prefix)
    two = LimitsRateLimitStore(redis_url, key_prefix=redis_prefix)
    quota = Quota("tenant", 3, 60)
    results = [store.hit(quota, "t") for store in (one, two, one, two)]
    assert [r.allowed for r in results if r] == [True, True, True, False]
    keys = redis.Redis.from_url(redis_url).keys(f"{redis_prefix}:*")
    assert keys, "the counters live in Redis, under this test's prefix"


def test_an_unreachable_redis_fails_open_with_a_log_line_and_is_retried_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    store = LimitsRateLimitStore(
        UNREACHABLE_REDIS, pause_after_failure_seconds=5, monotonic=lambda: now[0]
    )
    quota = Quota("tenant", 1, 60)
    with caplog.at_level(logging.ERROR, logger="adapters.rate_limits"):
        started = time.perf_counter()
        assert store.hit(quota, "t") is None
        assert time.perf_counter() - started < 1
        assert store.hit(quota, "t") is None  # paused: Redis is not asked again
    off = [r for r in caplog.records if "rate limits are OFF" in r.getMessage()]
    assert len(off) == 1
    assert "redis" in off[0].getMessage()
    now[0] += 5.1
    with caplog.at_level(logging.ERROR, logger="adapters.rate_limits"):
        assert store.hit(quota, "t") is None  # asked again, still down
    assert len([r for r in caplog.records if "rate limits are OFF" in r.getMessage()]) == 2


def test_a_store_whose_redis_fails_and_recovers_limits_again(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    store = LimitsRateLimitStore(
        redis_url, key_prefix=redis_prefix, pause_after_failure_seconds=1, monotonic=lambda: now[0]
    )
    quota = Quota("tenant", 2, 60)
    assert store.hit(quota, "t") is not None
    healthy = store._limiter.hit

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise redis.ConnectionError("Redis went away")

    store._limiter.hit = broken  # type: ignore[method-assign]
    assert store.hit(quota, "t") is None
    store._limiter.hit = healthy  # type: ignore[method-assign]
    assert store.hit(quota, "t") is None  # still paused
    now[0] += 1.5
    with caplog.at_level(logging.WARNING, logger="adapters.rate_limits"):
        state = store.hit(quota, "t")
    assert state is not None
    assert (state.allowed, state.remaining) == (True, 0)
    assert any("on again" in r.getMessage() for r in caplog.records)


# -- the decision ---------------------------------------------------------------------------


class Plans:
    def __init__(self, plans: dict[uuid.UUID, str]) -> None:
        self.plans = plans

    def plan_of(self, tenant_id: uuid.UUID) -> str | None:
        return self.plans.get(tenant_id)


def principal(tenant_id: uuid.UUID | None, key_id: uuid.UUID | None = None, **kw: Any) -> Any:
    return Principal(
        subject="s",
        tenant_id=tenant_id,
        roles=(),
        permissions=frozenset(),
        auth_method="apiKey" if key_id else "jwt",
        api_key_id=key_id,
        **kw,
    )


def test_the_quotas_follow_the_plan_and_the_key() -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    limits = RateLimits(LimitsRateLimitStore(), Plans({tenant: "enterprise"}), RateLimitPolicy())
    assert limits.quotas(principal(None)) == []
    assert limits.check(principal(None)) is None
    assert limits.quotas(principal(tenant)) == [Quota("tenant", PLAN_LIMITS["enterprise"], 60)]
    assert limits.quotas(principal(other)) == [Quota("tenant", PLAN_LIMITS["starter"], 60)]
    key = uuid.uuid4()
    assert limits.quotas(principal(other, key, rate_limit_per_minute=7)) == [
        Quota("apikey", 7, 60),
        Quota("tenant", PLAN_LIMITS["starter"], 60),
    ]
    assert limits.quotas(principal(other, key))[0] == Quota("apikey", 300, 60)


def test_the_binding_quota_is_the_one_with_least_left() -> None:
    tenant, key = uuid.uuid4(), uuid.uuid4()
    limits = RateLimits(
        LimitsRateLimitStore(), Plans({}), RateLimitPolicy(plan_limits={"starter": 4})
    )
    generous = limits.check(principal(tenant, key, rate_limit_per_minute=9))
    assert generous is not None
    assert [(s.quota.policy, s.remaining) for s in generous.states] == [
        ("apikey", 8),
        ("tenant", 3),
    ]
    assert generous.binding.quota.policy == "tenant"

    stingy = principal(tenant, uuid.uuid4(), rate_limit_per_minute=2)
    decisions = [limits.check(stingy) for _ in range(3)]
    assert [(d.allowed, d.binding.quota.policy, d.binding.remaining) for d in decisions if d] == [
        (True, "apikey", 1),  # tenant: 2 left
        (True, "apikey", 0),  # tenant: 1 left
        (False, "apikey", 0),
    ]
    refused = decisions[-1]
    assert refused is not None
    assert [s.quota.policy for s in refused.states] == ["apikey"]  # the tenant was not counted
    assert [q.policy for q in refused.quotas] == ["apikey", "tenant"]

    user = principal(tenant)
    last, over = limits.check(user), limits.check(user)
    assert last is not None
    assert over is not None
    assert (last.allowed, last.binding.remaining) == (True, 0)
    assert (over.allowed, over.binding.quota.policy) == (False, "tenant")


def test_tenant_plans_are_cached_for_a_while() -> None:
    tenant = uuid.uuid4()
    reads: list[uuid.UUID] = []

    class Tenants:
        plan = "starter"

        def get(self, tenant_id: uuid.UUID) -> TenantRecord:
            reads.append(tenant_id)
            doc = msgspec.Raw(msgspec.json.encode({"plan": self.plan}))
            return TenantRecord(
                tenant=Document(doc=doc, version=1),
                subscription=msgspec.Raw(b"{}"),
                settings=msgspec.Raw(b"{}"),
                provisioned_by="user:x",
            )

        def list(self, **_: Any) -> Page:
            raise NotImplementedError

    now = [0.0]
    source = Tenants()
    plans = CachedTenantPlans(source, ttl_seconds=30, monotonic=lambda: now[0])
    assert plans.plan_of(tenant) == "starter"
    source.plan = "enterprise"
    now[0] = 29
    assert plans.plan_of(tenant) == "starter"
    assert len(reads) == 1
    now[0] = 31
    assert plans.plan_of(tenant) == "enterprise"
    assert len(reads) == 2


# -- over HTTP ------------------------------------------------------------------------------


def test_a_key_over_its_limit_gets_429_with_retry_after_and_the_headers(
    client_for: Callable[..., Api], new_store: StoreFactory
) -> None:
    api = client_for(new_store())
    tenant = api.provision()["tenantId"]
    admin = api.as_("customer-admin", tenant=tenant)
    key = {"X-API-Key": new_key(api, admin, rateLimitPerMinute=3)}

    for left in (2, 1, 0):
        ok = api.request("GET", "/people", headers=key)
        assert ok.status_code == 200, ok.text
        assert policy_of(ok) == {"apikey": (3, 60), "tenant": (PLAN_LIMITS["starter"], 60)}
        assert limit_of(ok)[:2] == ("apikey", left)
        assert_consistent(ok)

    refused = api.request("GET", "/people", headers=key)
    body = problem(refused, 429, "rate-limited")
    assert "API key" in body["detail"]
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert limit_of(refused) == ("apikey", 0, retry_after)
    assert_consistent(refused)
    assert refused.headers["x-request-id"]
    # Its tenant's other callers are not held back by the key.
    assert api.request("GET", "/people", auth=admin).status_code == 200


def test_a_tenant_over_its_plan_limit_gets_429_whoever_calls(
    client_for: Callable[..., Api], new_store: StoreFactory
) -> None:
    api = client_for(new_store(), plan_limits={"starter": 4, "professional": 6, "enterprise": 8})
    busy = api.provision()["tenantId"]
    calm = api.provision(plan="professional")["tenantId"]
    admin = api.as_("customer-admin", tenant=busy)
    member = api.as_("member", tenant=busy)

    answers = [
        api.request("GET", "/people", auth=admin),
        api.request("GET", "/people", auth=member),
        # Every answer to a limited caller carries the headers, an error too.
        api.request("GET", f"/people/{uuid.uuid4()}", auth=admin),
        api.request("GET", "/people", auth=member),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 200]
    assert [limit_of(a)[:2] for a in answers] == [("tenant", n) for n in (3, 2, 1, 0)]
    assert all(policy_of(a) == {"tenant": (4, 60)} for a in answers)
    for answer in answers:
        assert_consistent(answer)

    refused = api.request("GET", "/people", auth=member)
    assert "tenant" in problem(refused, 429, "rate-limited")["detail"]
    assert int(refused.headers["retry-after"]) == limit_of(refused)[2]
    problem(api.request("POST", "/people", json={}, auth=admin), 429, "rate-limited")

    other = api.request("GET", "/people", auth=api.as_("customer-admin", tenant=calm))
    assert other.status_code == 200
    assert policy_of(other) == {"tenant": (6, 60)}
    assert limit_of(other)[:2] == ("tenant", 5)

    # Platform callers are not limited, and carry no rate-limit headers.
    platform = api.as_("platform-admin")
    for _ in range(6):
        answer = api.request("GET", f"/tenants/{busy}", auth=platform)
        assert answer.status_code == 200
        assert not any(h in answer.headers for h in HEADERS)
    # Nor are requests that do not authenticate.
    anonymous = api.request("GET", "/people")
    assert anonymous.status_code == 401
    assert not any(h in anonymous.headers for h in HEADERS)


def test_a_runaway_key_does_not_use_up_its_tenants_allowance(
    client_for: Callable[..., Api], new_store: StoreFactory
) -> None:
    api = client_for(new_store(), plan_limits={"starter": 8})
    tenant = api.provision()["tenantId"]
    admin = api.as_("customer-admin", tenant=tenant)
    key = {"X-API-Key": new_key(api, admin, rateLimitPerMinute=2)}  # the tenant's 1st request
    assert [api.request("GET", "/people", headers=key).status_code for _ in range(5)] == [
        200,
        200,
        429,
        429,
        429,
    ]
    after = api.request("GET", "/people", auth=admin)  # 4th that counted: 1 + 2 + this one
    assert after.status_code == 200
    assert limit_of(after)[:2] == ("tenant", 4)


def test_a_key_is_refused_when_its_tenant_is_over(
    client_for: Callable[..., Api], new_store: StoreFactory
) -> None:
    api = client_for(new_store(), plan_limits={"starter": 3})
    tenant = api.provision()["tenantId"]
    admin = api.as_("customer-admin", tenant=tenant)
    key = {"X-API-Key": new_key(api, admin, rateLimitPerMinute=100)}
    assert api.request("GET", "/people", auth=admin).status_code == 200
    assert api.request("GET", "/people", headers=key).status_code == 200
    refused = api.request("GET", "/people", headers=key)
    problem(refused, 429, "rate-limited")
    assert policy_of(refused) == {"apikey": (100, 60), "tenant": (3, 60)}
    assert limit_of(refused)[:2] == ("tenant", 0)


def test_processes_sharing_redis_share_the_limit(
    client_for: Callable[..., Api], redis_url: str, redis_prefix: str
) -> None:
    def store() -> LimitsRateLimitStore:
        return LimitsRateLimitStore(redis_url, key_prefix=redis_prefix)

    one = client_for(store(), plan_limits={"starter": 4})
    two = client_for(store(), plan_limits={"starter": 4})
    tenant = str(uuid.uuid4())  # a token's tenant need not be known to be limited
    auth = one.as_("member", tenant=tenant)
    statuses = [api.request("GET", "/me", auth=auth).status_code for api in (one, two) * 3]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_memory_limits_are_per_process(client_for: Callable[..., Api]) -> None:
    one = client_for(LimitsRateLimitStore(), plan_limits={"starter": 2})
    two = client_for(LimitsRateLimitStore(), plan_limits={"starter": 2})
    auth = one.as_("member", tenant=str(uuid.uuid4()))
    statuses = [api.request("GET", "/me", auth=auth).status_code for api in (one, two) * 3]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_requests_go_through_unlimited_when_redis_is_down(
    client_for: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    api = client_for(LimitsRateLimitStore(UNREACHABLE_REDIS), plan_limits={"starter": 1})
    tenant = api.provision()["tenantId"]
    admin = api.as_("customer-admin", tenant=tenant)
    key = {"X-API-Key": new_key(api, admin, rateLimitPerMinute=1)}
    with caplog.at_level(logging.ERROR, logger="adapters.rate_limits"):
        answers = [api.request("GET", "/people", headers=key) for _ in range(5)]
        answers += [api.request("GET", "/people", auth=admin) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 10
    assert not any(h in a.headers for a in answers for h in HEADERS)
    assert any("rate limits are OFF" in r.getMessage() for r in caplog.records)


def test_the_real_service_uses_redis_when_configured(
    make_services: Any, tmp_path: Any, redis_url: str
) -> None:
    """The composition root picks Redis from WORKLEDGER_REDIS_URL's setting, memory without."""
    import dataclasses

    from tests.conftest import settings_for

    url = f"sqlite:///{tmp_path}/workledger.db"
    plain = make_services(url)
    assert plain.get(RateLimitStore).kind == "memory"  # type: ignore[attr-defined]
    from entrypoints.container import build

    settings = dataclasses.replace(settings_for(url, tmp_path), redis_url=redis_url)
    with_redis = build(settings)
    try:
        store = with_redis.get(RateLimitStore)
        assert store.kind == "redis"  # type: ignore[attr-defined]
        subject = f"test:{uuid.uuid4()}"
        state = store.hit(Quota("tenant", 5, 60), subject)
        assert state is not None
        assert state.remaining == 4
        client = redis.Redis.from_url(redis_url)
        keys = client.keys(f"workledger:*{subject}*")
        assert len(keys) == 1
        client.delete(*keys)
    finally:
        with_redis.close()


def test_tenant_limits_come_from_the_setting(tmp_path: Path) -> None:
    """WORKLEDGER_TENANT_RATE_LIMITS (Settings.tenant_rate_limits) reaches the running limiter."""
    settings = dataclasses.replace(
        settings_for(f"sqlite:///{tmp_path}/limits.db", tmp_path),
        tenant_rate_limits={"starter": 2, "professional": 5, "enterprise": 9},
    )
    services = build(settings)
    try:
        with TestClient(create_app(services, follow_log=False)) as client:
            api = Api(client, services)
            tenant = api.provision()["tenantId"]
            auth = api.as_("customer-admin", tenant=tenant)
            answers = [api.request("GET", "/people", auth=auth) for _ in range(3)]
            assert [a.status_code for a in answers] == [200, 200, 429]
            assert answers[0].headers["x-ratelimit-limit"] == "2"
            problem(answers[2], 429, code="rate-limited")
    finally:
        services.close()


def test_idempotent_replays_and_refusals_count_and_are_limited_too(
    client_for: Callable[..., Api],
) -> None:
    """A replay, a 422 or a 409 answered for an Idempotency-Key is a request like any other:
    it counts, carries the headers, and over the limit it is a 429 (no replay)."""
    api = client_for(LimitsRateLimitStore(), plan_limits={"starter": 3})
    tenant = api.provision()["tenantId"]
    auth = api.as_("customer-admin", tenant=tenant)

    def post(name: str) -> Any:
        headers = {"Idempotency-Key": "add-acme"}
        return api.request("POST", "/customers", json={"name": name}, auth=auth, headers=headers)

    first, replay, reused = post("Acme"), post("Acme"), post("Acme Two")
    assert first.status_code == 201, first.text
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    problem(reused, 422, "idempotency-key-reused")
    assert [limit_of(a)[:2] for a in (first, replay, reused)] == [("tenant", n) for n in (2, 1, 0)]
    for answer in (replay, reused):
        assert_consistent(answer)
    refused = post("Acme")
    problem(refused, 429, "rate-limited")
    assert "idempotent-replayed" not in refused.headers
    assert refused.headers["retry-after"]
