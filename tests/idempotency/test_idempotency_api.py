"""Black-box tests of Idempotency-Key on POST (API.md "Conventions", docs/idempotency.md), on
SQLite and PostgreSQL: replays, reuse with another request, callers' scopes, simultaneous and
abandoned requests, expiry, which answers are kept, and what the header does not touch."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from application.errors import ConcurrentWrite
from application.idempotency import IdempotencyScope, fingerprint
from application.people import PeopleCommands
from application.ports import IdempotencyStore
from entrypoints.container import Services
from entrypoints.http.app import create_app
from tests.api.problems import problem
from tests.conftest import Api

REPLAYED = ("content-type", "location", "etag", "x-log-position")


def person(**fields: Any) -> bytes:
    n = uuid.uuid4().hex[:8]
    body = {
        "firstName": "Grace",
        "lastName": "Hopper",
        "email": f"grace.{n}@example.com",
        "employeeReference": f"R-{n}",
        "jobTitle": "Engineer",
        "employmentStartDate": "2026-01-05",
        **fields,
    }
    return json.dumps(body).encode()


def hire(
    api: Api, tenant: str, body: bytes, key: str | bytes | None, sub: str = "hr-admin", **kw: Any
) -> Any:
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    if key is not None:
        headers["Idempotency-Key"] = key
    auth = api.as_("customer-admin", tenant=tenant, sub=sub)
    return api.request("POST", "/people", content=body, auth=auth, headers=headers, **kw)


def people(api: Api, tenant: str) -> int:
    response = api.request("GET", "/people", auth=api.as_("customer-admin", tenant=tenant))
    assert response.status_code == 200, response.text
    total: int = response.json()["totalCount"]
    return total


def kept_keys(api: Api) -> int:
    count: int = api.services.db.query("SELECT COUNT(*) FROM idempotency_keys")[0][0]
    return count


def replayed(response: Any) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


@pytest.fixture
def tenant(api: Api) -> str:
    return str(api.provision()["tenantId"])


@pytest.fixture
def other_app(
    api: Api, make_services: Callable[[str], Services], database_url: str
) -> Iterator[Callable[[], Api]]:
    """More apps over the same database: separate server processes, each with its own loop."""
    clients: list[TestClient[Any]] = []

    def make() -> Api:
        services = make_services(database_url)
        client = TestClient(create_app(services, follow_log=False))
        client.__enter__()
        clients.append(client)
        return Api(client, services)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


# -- replays ----------------------------------------------------------------------------------


def test_a_retried_create_replays_the_first_201_and_creates_nothing(api: Api, tenant: str) -> None:
    body = person()
    first = hire(api, tenant, body, "hire-grace-1")
    assert first.status_code == 201, first.text
    assert not replayed(first)
    head = api.services.log.head()

    again = hire(api, tenant, body, "hire-grace-1", headers={"X-Request-Id": "retry-2"})

    assert again.status_code == 201, again.text
    assert replayed(again)
    assert again.content == first.content
    for name in REPLAYED:
        assert again.headers.get(name) == first.headers[name], name
    # X-Request-Id is the retry's own, once.
    assert again.headers.get_list("x-request-id") == ["retry-2"]
    assert first.headers["x-request-id"] != "retry-2"
    assert api.services.log.head() == head
    assert people(api, tenant) == 1


def test_a_client_error_is_replayed_too(api: Api, tenant: str) -> None:
    incomplete = json.dumps({"firstName": "Grace"}).encode()
    first = hire(api, tenant, incomplete, "bad-hire")
    problem(first, 400)
    again = hire(api, tenant, incomplete, "bad-hire")
    problem(again, 400)
    assert replayed(again)
    assert again.content == first.content
    assert kept_keys(api) == 1


def test_a_conflict_is_replayed_without_running_again(api: Api, tenant: str) -> None:
    body = person()
    assert hire(api, tenant, body, None).status_code == 201
    head = api.services.log.head()
    first = hire(api, tenant, body, "dup")
    problem(first, 409)
    again = hire(api, tenant, body, "dup")
    problem(again, 409)
    assert replayed(again)
    assert api.services.log.head() == head


def test_replays_hold_for_24_hours_then_the_key_is_free(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = person()
    assert hire(api, tenant, body, "daily").status_code == 201
    store = api.services.get(IdempotencyStore)
    begin = store.begin

    def later(by: timedelta) -> None:
        monkeypatch.setattr(
            store, "begin", lambda scope, key, fp, now: begin(scope, key, fp, now + by)
        )

    later(timedelta(hours=23, minutes=59))
    assert replayed(hire(api, tenant, body, "daily"))
    later(timedelta(hours=24, minutes=1))
    fresh = hire(api, tenant, person(), "daily")  # another body: no 422, the key is free
    assert fresh.status_code == 201, fresh.text
    assert not replayed(fresh)
    assert people(api, tenant) == 2


# -- reuse, scope -----------------------------------------------------------------------------


def test_the_same_key_with_another_body_is_422_and_changes_nothing(api: Api, tenant: str) -> None:
    assert hire(api, tenant, person(), "k-422").status_code == 201
    head = api.services.log.head()
    body = problem(hire(api, tenant, person(), "k-422"), 422, code="idempotency-key-reused")
    assert "another request" in body["detail"]
    assert api.services.log.head() == head
    assert people(api, tenant) == 1


def test_the_same_key_on_another_path_or_query_is_422(api: Api, tenant: str) -> None:
    body = person()
    assert hire(api, tenant, body, "k-path").status_code == 201
    auth = api.as_("customer-admin", tenant=tenant, sub="hr-admin")
    headers = {"Idempotency-Key": "k-path", "Content-Type": "application/json"}
    problem(
        api.request("POST", "/customers", content=body, auth=auth, headers=headers),
        422,
        code="idempotency-key-reused",
    )
    problem(
        hire(api, tenant, body, "k-path", params={"tenantId": tenant}),
        422,
        code="idempotency-key-reused",
    )


def test_keys_are_scoped_to_the_caller(api: Api, tenant: str) -> None:
    elsewhere = str(api.provision()["tenantId"])
    body = person()
    assert hire(api, tenant, body, "shared-key", sub="alice").status_code == 201
    # Another user of the tenant, and the same user name in another tenant: fresh requests.
    bob = hire(api, tenant, person(), "shared-key", sub="bob")
    assert bob.status_code == 201, bob.text
    assert not replayed(bob)
    abroad = hire(api, elsewhere, body, "shared-key", sub="alice")
    assert abroad.status_code == 201, abroad.text
    assert not replayed(abroad)
    assert replayed(hire(api, tenant, body, "shared-key", sub="alice"))
    assert people(api, tenant) == 2
    assert people(api, elsewhere) == 1


# -- simultaneous and abandoned requests ------------------------------------------------------


def test_a_retry_while_the_first_runs_is_409_and_then_replays(
    api: Api, tenant: str, other_app: Callable[[], Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    second = other_app()
    commands = api.services.get(PeopleCommands)
    create = commands.create
    entered, release = threading.Event(), threading.Event()

    def slow(ctx: Any, cmd: Any) -> Any:
        entered.set()
        assert release.wait(30)
        return create(ctx, cmd)

    monkeypatch.setattr(commands, "create", slow)
    body = person()
    answers: dict[str, Any] = {}
    running = threading.Thread(target=lambda: answers.update(first=hire(api, tenant, body, "k")))
    running.start()
    try:
        assert entered.wait(30)
        during = hire(second, tenant, body, "k")
    finally:
        release.set()
        running.join(30)

    problem(during, 409, code="idempotency-key-in-flight")
    assert during.headers["retry-after"] == "1"
    first = answers["first"]
    assert first.status_code == 201, first.text
    assert not replayed(first)
    after = hire(second, tenant, body, "k")
    assert after.status_code == 201
    assert replayed(after)
    assert after.content == first.content
    assert people(api, tenant) == 1


def test_of_simultaneous_requests_with_one_key_exactly_one_runs(
    api: Api, tenant: str, other_app: Callable[[], Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    apps = [api, *(other_app() for _ in range(3))]
    runs: list[int] = []
    for app in apps:
        commands = app.services.get(PeopleCommands)

        def counted(ctx: Any, cmd: Any, create: Any = commands.create) -> Any:
            runs.append(1)
            return create(ctx, cmd)

        monkeypatch.setattr(commands, "create", counted)
    body = person()
    barrier = threading.Barrier(len(apps))
    answers: list[Any] = []

    def send(app: Api) -> None:
        barrier.wait()
        answers.append(hire(app, tenant, body, "together"))

    threads = [threading.Thread(target=send, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert len(runs) == 1
    ran = [a for a in answers if a.status_code == 201 and not replayed(a)]
    assert len(ran) == 1
    for answer in answers:
        if answer is ran[0]:
            continue
        if answer.status_code == 409:
            problem(answer, 409, code="idempotency-key-in-flight")
        else:
            assert replayed(answer)
            assert answer.content == ran[0].content
    assert people(api, tenant) == 1


def test_a_request_abandoned_past_the_lease_is_taken_over(api: Api, tenant: str) -> None:
    store = api.services.get(IdempotencyStore)
    caller = IdempotencyScope(tenant_id=uuid.UUID(tenant), actor="user:hr-admin")
    crashed, running = person(), person()
    now = datetime.now(UTC)
    # As a process that died mid-request, and one still working, would have left them.
    store.begin(caller, "crashed", fingerprint("POST", "/api/v1/people", b"", crashed), now)
    store.begin(caller, "running", fingerprint("POST", "/api/v1/people", b"", running), now)
    with api.services.db.transaction() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET locked_at = locked_at - 61000"
            " WHERE idempotency_key = 'crashed'"
        )

    problem(hire(api, tenant, running, "running"), 409, code="idempotency-key-in-flight")
    taken = hire(api, tenant, crashed, "crashed")
    assert taken.status_code == 201, taken.text
    assert not replayed(taken)
    assert replayed(hire(api, tenant, crashed, "crashed"))
    assert people(api, tenant) == 1


# -- which answers are kept --------------------------------------------------------------------


def test_a_server_error_lets_the_key_go_so_the_retry_runs(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = api.services.get(PeopleCommands)
    create = commands.create
    failures = iter([RuntimeError("database fell over")])

    def flaky(ctx: Any, cmd: Any) -> Any:
        for error in failures:
            raise error
        return create(ctx, cmd)

    monkeypatch.setattr(commands, "create", flaky)
    body = person()
    problem(hire(api, tenant, body, "flaky"), 500)
    assert kept_keys(api) == 0
    retried = hire(api, tenant, body, "flaky")
    assert retried.status_code == 201, retried.text
    assert not replayed(retried)
    assert replayed(hire(api, tenant, body, "flaky"))


def test_a_lost_write_race_lets_the_key_go(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = api.services.get(PeopleCommands)
    create = commands.create
    failures = iter([ConcurrentWrite("somebody else wrote first")])

    def raced(ctx: Any, cmd: Any) -> Any:
        for error in failures:
            raise error
        return create(ctx, cmd)

    monkeypatch.setattr(commands, "create", raced)
    body = person()
    problem(hire(api, tenant, body, "raced"), 409, code="concurrent-write")
    retried = hire(api, tenant, body, "raced")
    assert retried.status_code == 201, retried.text
    assert not replayed(retried)


def test_a_write_recorded_behind_its_read_models_is_replayed_not_run_again(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def behind(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("read-model database unreachable")

    monkeypatch.setattr(api.services.projections, "catch_up", behind)
    body = person()
    first = hire(api, tenant, body, "behind")
    problem(first, 503, code="read-models-behind")
    head = api.services.log.head()
    monkeypatch.undo()

    again = hire(api, tenant, body, "behind")
    problem(again, 503, code="read-models-behind")
    assert replayed(again)
    assert api.services.log.head() == head
    api.services.projections.catch_up()
    assert people(api, tenant) == 1


def test_an_answer_too_large_to_keep_is_sent_but_not_replayed(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("entrypoints.http.idempotency.MAX_STORED_BODY", 16)
    body = person()
    first = hire(api, tenant, body, "large")
    assert first.status_code == 201, first.text
    assert first.json()["personId"]
    again = problem(hire(api, tenant, body, "large"), 409, code="idempotency-answer-not-kept")
    assert again["originalStatus"] == 201
    assert people(api, tenant) == 1


# -- what the header does not touch -----------------------------------------------------------


def test_a_post_without_the_header_is_unaffected(api: Api, tenant: str) -> None:
    body = person()
    first = hire(api, tenant, body, None)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    problem(hire(api, tenant, body, None), 409)  # no key: the duplicate runs, and is refused
    assert kept_keys(api) == 0


def test_other_methods_ignore_the_header(api: Api, tenant: str) -> None:
    auth = api.as_("customer-admin", tenant=tenant)
    headers = {"Idempotency-Key": "not-for-reads"}
    person_id = hire(api, tenant, person(), None).json()["personId"]
    for method, path, extra in (
        ("GET", "/people", {}),
        ("GET", "/people", {}),
        ("PATCH", f"/people/{person_id}", {"json": {"jobTitle": "Admiral"}}),
        ("PATCH", f"/people/{person_id}", {"json": {"jobTitle": "Rear Admiral"}}),
    ):
        response = api.request(method, path, auth=auth, headers=headers, **extra)
        assert response.status_code == 200, response.text
        assert "idempotent-replayed" not in response.headers
    assert kept_keys(api) == 0


def test_without_valid_credentials_the_key_is_not_looked_at(api: Api, tenant: str) -> None:
    for auth in ({}, {"Authorization": "Bearer not-a-token"}):
        response = api.request(
            "POST",
            "/people",
            content=person(),
            auth=auth,
            headers={"Idempotency-Key": "", "Content-Type": "application/json"},
        )
        problem(response, 401)
    assert kept_keys(api) == 0


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        ("k" * 256, "at most 255"),
        ("cl\xe9".encode("latin-1"), "printable ASCII"),
        ("tab\there", "printable ASCII"),
    ],
)
def test_an_unusable_key_is_400_and_changes_nothing(
    api: Api, tenant: str, key: str | bytes, message: str
) -> None:
    head = api.services.log.head()
    body = problem(hire(api, tenant, person(), key), 400, field="Idempotency-Key")
    assert message in body["errors"][0]["message"]
    assert api.services.log.head() == head
    assert kept_keys(api) == 0


def test_a_key_sent_twice_is_400(api: Api, tenant: str) -> None:
    # Straight to the ASGI app: the test client would merge the two headers into one.
    token = api.token("customer-admin", tenant=tenant).encode()
    headers = [
        (b"idempotency-key", b"one"),
        (b"idempotency-key", b"two"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer " + token),
    ]
    status, body = asyncio.run(asgi_post(api.client.app, "/api/v1/people", headers, person()))
    assert status == 400, body
    answer = json.loads(body)
    assert answer["errors"] == [{"field": "Idempotency-Key", "message": "send it once"}]
    assert kept_keys(api) == 0
    assert people(api, tenant) == 0


def test_a_body_sent_in_pieces_is_handed_on_whole_and_replayed(api: Api, tenant: str) -> None:
    token = api.token("customer-admin", tenant=tenant, sub="hr-admin").encode()
    headers = [
        (b"idempotency-key", b"pieces"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer " + token),
    ]
    body = person()
    pieces = [body[:10], body[10:20], body[20:]]
    status, first = asyncio.run(asgi_post(api.client.app, "/api/v1/people", headers, pieces))
    assert status == 201, first
    again = hire(api, tenant, body, "pieces")
    assert replayed(again)
    assert again.content == first
    assert people(api, tenant) == 1


def test_a_body_over_the_limit_is_413_and_keeps_no_key(api: Api, tenant: str) -> None:
    huge = b'{"firstName": "' + b"x" * (1024 * 1024) + b'"}'
    problem(hire(api, tenant, huge, "huge"), 413)
    assert kept_keys(api) == 0


async def asgi_post(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes | list[bytes]
) -> tuple[int, bytes]:
    """POST straight to the ASGI app; a list body arrives in that many messages."""
    pieces = [body] if isinstance(body, bytes) else list(body)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not pieces:
            return {"type": "http.disconnect"}
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_longest_key_and_every_printable_character_are_usable(api: Api, tenant: str) -> None:
    for key in ("k" * 255, "".join(chr(c) for c in range(0x21, 0x7F))):
        body = person()
        assert hire(api, tenant, body, key).status_code == 201
        assert replayed(hire(api, tenant, body, key))


def test_the_replay_of_an_answer_that_holds_an_api_key_is_not_cached_either(
    api: Api, tenant: str
) -> None:
    """The answer to POST /api-keys holds the key itself and says Cache-Control: no-store; a
    replay holds the same key, so it must say so too."""
    auth = api.as_("customer-admin", tenant=tenant)
    body = {"name": "deploy bot", "scopes": ["person:read"]}
    headers = {"Idempotency-Key": "issue-deploy-bot"}
    first = api.request("POST", "/api-keys", json=body, auth=auth, headers=headers)
    assert first.status_code == 201, first.text
    again = api.request("POST", "/api-keys", json=body, auth=auth, headers=headers)
    assert replayed(again)
    assert again.json()["key"] == first.json()["key"]
    assert again.headers["cache-control"] == first.headers["cache-control"] == "no-store"


# -- never a 500 ---------------------------------------------------------------------------------

HEADER_BYTES = st.binary(max_size=300).filter(lambda b: not any(c in b for c in b"\r\n\x00"))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.one_of(HEADER_BYTES, st.sampled_from([b"k1", b"k2"])),
    body=st.one_of(st.binary(max_size=200), st.sampled_from([b"{}", b"[]", person()])),
    path=st.sampled_from(["/people", "/customers", "/tenants/bulk", "/people?x=%00"]),
)
def test_no_key_and_body_make_a_500(
    api: Api, tenant: str, key: bytes, body: bytes, path: str
) -> None:
    auth = api.as_("customer-admin", tenant=tenant)
    headers = {"Idempotency-Key": key, "Content-Type": "application/json", **auth}
    response = api.client.request("POST", "/api/v1" + path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
