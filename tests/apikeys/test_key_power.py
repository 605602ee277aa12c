"""Nobody gets more power from a key than they hold (docs/api-keys.md "Scopes"): rotating a key
hands its caller the key's power, and a key made by a key may not outlive it nor reach
addresses it cannot. Also the input a key's creation must refuse before anything is recorded,
If-Match on the writes. On SQLite and PostgreSQL where the store matters."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from application.api_keys import ApiKeyAuthenticator, ApiKeyCommands, CreateApiKey, RotateApiKey
from application.context import Context
from application.errors import Forbidden
from domain.api_key import address_in, blocks_within, expiry
from domain.errors import InvalidValue
from tests.api.problems import problem
from tests.apikeys.conftest import FakeClock
from tests.conftest import Api


class Tenant:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.id = api.provision()["tenantId"]
        self.admin = api.as_("customer-admin", tenant=self.id)

    def create(self, headers: dict[str, str] | None = None, **body: Any) -> Any:
        body = {"name": "k", "scopes": ["person:read"], **body}
        return self.api.request("POST", "/api-keys", json=body, headers=headers or self.admin)

    def issue(self, **body: Any) -> dict[str, Any]:
        response = self.create(**body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def count(self) -> int:
        listed = self.api.request("GET", "/api-keys", auth=self.admin)
        return int(listed.json()["totalCount"])


def with_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- input that must never be recorded -------------------------------------------------------


def test_an_expiry_with_no_utc_form_is_a_400_and_the_read_models_go_on(api: Api) -> None:
    """9999-12-31T23:59:59-23:59 is a valid RFC 3339 instant whose UTC form lies in year 10000.
    Recorded, it stopped the api_keys projection for good: every later write of every tenant
    answered 503."""
    tenant = Tenant(api)
    head = api.services.log.head()
    refused = tenant.create(expiresAt="9999-12-31T23:59:59-23:59")
    problem(refused, 400, field="expiresAt")
    assert api.services.log.head() == head
    latest = tenant.issue(expiresAt="9999-12-31T23:59:59Z")
    assert latest["expiresAt"] == "9999-12-31T23:59:59.000Z"
    offset = tenant.issue(expiresAt="2099-06-01T09:00:00+09:00")
    assert offset["expiresAt"] == "2099-06-01T00:00:00.000Z"
    assert tenant.count() == 2


@example(moment=datetime(9999, 12, 31, 23, 59, 59), minutes=-(23 * 60 + 59))
@given(
    moment=st.datetimes(min_value=datetime(2030, 1, 1), max_value=datetime.max),
    minutes=st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
def test_an_expiry_is_kept_in_utc_or_refused_never_an_overflow(
    moment: datetime, minutes: int
) -> None:
    expires_at = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    # Its UTC form is moment - offset, which must not pass datetime.max (timedeltas, unlike
    # datetimes, do not overflow here).
    origin = datetime(2030, 1, 1)
    has_utc_form = (moment - origin) - timedelta(minutes=minutes) <= datetime.max - origin
    now = datetime(2026, 1, 1, tzinfo=UTC)
    if not has_utc_form:
        with pytest.raises(InvalidValue, match="year 10000"):
            expiry("expiresAt", expires_at, now)
        return
    kept = expiry("expiresAt", expires_at, now)
    assert kept == expires_at
    assert kept is not None
    assert kept.utcoffset() == timedelta(0)


# -- rotation hands over the key's power ------------------------------------------------------


def test_rotating_a_key_needs_every_permission_it_holds(api: Api) -> None:
    tenant = Tenant(api)
    strong = tenant.issue(scopes=["person:read", "person:write", "invoice:issue"])
    manager = tenant.issue(scopes=["apikey:manage", "person:read"])
    rotate = f"/api-keys/{strong['apiKeyId']}/rotate"

    refused = api.request("POST", rotate, headers=with_key(manager["key"]))
    detail = problem(refused, 403, "forbidden")["detail"]
    assert "person:write" in detail
    assert "invoice:issue" in detail
    assert api.request("GET", "/people", headers=with_key(strong["key"])).status_code == 200
    shown = api.request("GET", f"/api-keys/{strong['apiKeyId']}", auth=tenant.admin).json()
    assert shown["rotatedAt"] is None

    # A key may rotate itself, and whoever holds the permissions may rotate the other.
    own = f"/api-keys/{manager['apiKeyId']}/rotate"
    assert api.request("POST", own, headers=with_key(manager["key"])).status_code == 200
    assert api.request("POST", rotate, auth=tenant.admin).status_code == 200


# -- a key made by a key stays inside it -------------------------------------------------------


def test_a_key_made_by_a_key_may_not_outlive_it(api: Api, clock: FakeClock) -> None:
    tenant = Tenant(api)
    ends = clock.now() + timedelta(hours=1)
    maker = tenant.issue(scopes=["apikey:manage", "person:read"], expiresAt=at(ends))
    as_maker = with_key(maker["key"])

    inherited = tenant.create(as_maker)
    assert inherited.status_code == 201, inherited.text
    assert inherited.json()["expiresAt"] == maker["expiresAt"]
    sooner = tenant.create(as_maker, expiresAt=at(ends - timedelta(minutes=30)))
    assert sooner.status_code == 201, sooner.text
    later = tenant.create(as_maker, expiresAt=at(ends + timedelta(seconds=1)))
    assert "outlive" in problem(later, 403, "forbidden")["detail"]
    assert tenant.count() == 3

    # Nor may it rotate a key that lives longer, and so get that key.
    lasting = tenant.issue()
    rotate = f"/api-keys/{lasting['apiKeyId']}/rotate"
    problem(api.request("POST", rotate, headers=as_maker), 403, "forbidden")
    assert api.request("GET", "/people", headers=with_key(lasting["key"])).status_code == 200


@pytest.fixture
def fenced(api: Api) -> tuple[Tenant, dict[str, Any], Context]:
    """A key that may be used from 10.0.0.0/8 only, and the context of a request it made from
    10.1.2.3 (the test client's peer is no IP address, so its requests are made in-process)."""
    tenant = Tenant(api)
    maker = tenant.issue(scopes=["apikey:manage", "person:read"], allowedIps=["10.0.0.0/8"])
    principal = api.services.get(ApiKeyAuthenticator).authenticate_key(
        maker["key"], "10.1.2.3", datetime.now(UTC)
    )
    return tenant, maker, Context(principal=principal, request_id="r", tenant_id=UUID(tenant.id))


def test_a_key_made_by_a_key_stays_inside_its_allowlist(
    api: Api, fenced: tuple[Tenant, dict[str, Any], Context]
) -> None:
    tenant, maker, ctx = fenced
    commands = api.services.get(ApiKeyCommands)

    def make(allowed: list[str] | None) -> str:
        issued = commands.create(ctx, CreateApiKey("child", ["person:read"], allowed_ips=allowed))
        wait = {"X-Log-Position": str(issued.written.position)}
        path = f"/api-keys/{issued.written.id}"
        shown = api.request("GET", path, auth=tenant.admin, headers=wait).json()
        return ",".join(shown["allowedIps"])

    assert make(None) == make([]) == "10.0.0.0/8"
    assert make(["10.1.0.0/16", "10.2.3.4"]) == "10.1.0.0/16,10.2.3.4/32"
    for wider in (["0.0.0.0/0"], ["10.0.0.0/7"], ["10.0.0.0/8", "192.168.0.1"], ["::/0"]):
        with pytest.raises(Forbidden, match="allowedIps"):
            make(wider)

    anywhere = tenant.issue()
    with pytest.raises(Forbidden, match="allowedIps"):
        commands.rotate(ctx, UUID(anywhere["apiKeyId"]), RotateApiKey())
    assert api.request("GET", "/people", headers=with_key(anywhere["key"])).status_code == 200
    assert maker["allowedIps"] == ["10.0.0.0/8"]


networks = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: ipaddress.ip_network((t[0], t[1]), strict=False)
    ),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: ipaddress.IPv6Network((t[0], t[1]), strict=False)
    ),
)


@given(inner=networks, outer=st.lists(networks, max_size=3), pick=st.integers(0, 2**128 - 1))
def test_blocks_within_admit_no_address_their_outer_blocks_do_not(
    inner: Any, outer: list[Any], pick: int
) -> None:
    address = inner[pick % inner.num_addresses]
    blocks = [str(network) for network in outer]
    if blocks_within([str(inner)], blocks):
        assert not blocks or address_in(str(address), blocks)
    if any(inner.version == o.version and inner.subnet_of(o) for o in outer):
        assert blocks_within([str(inner)], blocks)
    assert blocks_within([], [])
    assert not blocks_within([], ["10.0.0.0/8"])


# -- If-Match ----------------------------------------------------------------------------------


def test_revoke_and_rotate_honour_if_match(sqlite_api: Api) -> None:
    tenant = Tenant(sqlite_api)
    created = tenant.issue()
    path = f"/api-keys/{created['apiKeyId']}"
    stale = {"If-Match": '"2"'}
    problem(sqlite_api.request("DELETE", path, auth=tenant.admin, headers=stale), 412)
    problem(sqlite_api.request("POST", path + "/rotate", auth=tenant.admin, headers=stale), 412)
    assert sqlite_api.request("GET", "/me", headers=with_key(created["key"])).status_code == 200

    rotated = sqlite_api.request(
        "POST", path + "/rotate", auth=tenant.admin, headers={"If-Match": '"1"'}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["etag"] == '"2"'
    revoked = sqlite_api.request("DELETE", path, auth=tenant.admin, headers=stale)
    assert revoked.status_code == 204, revoked.text
