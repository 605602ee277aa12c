"""Black-box webhooks: a real `workledger serve` process and real consumers on 127.0.0.1, spoken
to over real HTTP only, as an integrator would (names, headers and status codes of API.md,
"Conventions" and "Webhooks"). Signatures are checked with the independent `standardwebhooks`
package. Every server's log is checked for tracebacks when it stops."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e import processes

pytestmark = pytest.mark.slow
RETRY = 0.3  # WORKLEDGER_WEBHOOK_RETRY_SCHEDULE: every retry after 0.3 s (plus jitter)
PROBLEM = "application/problem+json"
PRIVATE_TARGETS = {"WORKLEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}  # consumers on 127.0.0.1

# -- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    """A `workledger serve` process, and a client of its /api/v1."""

    process: processes.Server
    http: httpx.Client

    def token(self, *args: str) -> str:
        return self.process.token(*args)

    def admin_of_new_tenant(self, name: str) -> tuple[str, dict[str, str]]:
        """A new tenant, and the headers of its customer-admin."""
        platform = {"Authorization": "Bearer " + self.token("--role", "platform-admin")}
        created = self.http.post(
            "/tenants", headers=platform, json={"name": name, "contactEmail": "ops@x.example"}
        )
        assert created.status_code == 201, created.text
        tenant_id = str(created.json()["tenantId"])
        token = self.token("--role", "customer-admin", "--tenant", tenant_id, "--sub", "ada")
        return tenant_id, {"Authorization": f"Bearer {token}"}


@contextmanager
def serve(tmp_path: Path, extra_env: dict[str, str]) -> Iterator[Server]:
    """`workledger serve` until the block ends; fails if its log shows a traceback."""
    schedule = {"WORKLEDGER_WEBHOOK_RETRY_SCHEDULE": f"{RETRY},{RETRY},{RETRY}"}
    env = processes.environment(tmp_path, {**schedule, **extra_env})
    with (
        processes.Server(env, tmp_path) as process,
        httpx.Client(base_url=process.base + "/api/v1", timeout=10) as client,
    ):
        yield Server(process, client)
    process.assert_no_traceback()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One SQLite-backed server whose webhooks may reach 127.0.0.1, for the module."""
    tmp_path = tmp_path_factory.mktemp("webhooks")
    with serve(tmp_path, PRIVATE_TARGETS) as srv:
        yield srv


# -- consumers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Consumer:
    """Records every request; `answer(handler, n)` answers the n-th request to a path."""

    port: int
    answer: Callable[[http.server.BaseHTTPRequestHandler, int], None]
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)  # ends every hang

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(got := self.at(path)) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"{path} received {len(self.at(path))} requests, not {count}")


def reply(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def ok(handler: http.server.BaseHTTPRequestHandler, n: int) -> None:
    reply(handler, 200, b"thanks")


@contextmanager
def consumer(
    answer: Callable[[http.server.BaseHTTPRequestHandler, int], None] = ok,
) -> Iterator[Consumer]:
    box: list[Consumer] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = Received(
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
                time.time(),
            )
            target = box[0]
            with target.lock:
                target.received.append(request)
                n = len([r for r in target.received if r.path == self.path])
            target.answer(self, n)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Listener(http.server.ThreadingHTTPServer):
        request_queue_size = 64  # a burst of connections is not kept waiting for a SYN retry
        daemon_threads = True

    listener = Listener(("127.0.0.1", 0), Handler)
    box.append(Consumer(listener.server_address[1], answer))
    thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield box[0]
    finally:
        box[0].released.set()
        listener.shutdown()
        listener.server_close()


# -- helpers ---------------------------------------------------------------------------------


def create_webhook(
    server: Server, auth: dict[str, str], url: str, events: list[str] | None = None
) -> dict[str, Any]:
    created = server.http.post(
        "/webhooks", headers=auth, json={"url": url, "events": events or ["*"]}
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def hire(server: Server, auth: dict[str, str]) -> httpx.Response:
    n = uuid.uuid4().hex[:8]
    hired = server.http.post(
        "/people",
        headers=auth,
        json={
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": f"ada-{n}@x.example",
            "employeeReference": f"E-{n}",
            "jobTitle": "Engineer",
            "employmentStartDate": "2026-01-05",
        },
    )
    assert hired.status_code == 201, hired.text
    return hired


def deliveries(server: Server, auth: dict[str, str], webhook_id: str) -> list[dict[str, Any]]:
    listed = server.http.get(f"/webhooks/{webhook_id}/deliveries", headers=auth)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["deliveries"])


def settled(
    server: Server,
    auth: dict[str, str],
    webhook_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 5.0,
) -> dict[str, Any]:
    """The endpoint's only delivery, once `done(delivery)`."""
    deadline = time.monotonic() + timeout
    while True:
        (delivery,) = deliveries(server, auth, webhook_id)
        if done(delivery):
            return delivery
        assert time.monotonic() < deadline, delivery
        time.sleep(0.05)


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.05)
    return value


def verify(secret: str, message: Received) -> Any:
    return Webhook(secret).verify(message.body, message.headers)


def is_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance", "code"} <= body.keys()
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body


DELIVERY_FIELDS = {"deliveryId", "eventType", "status", "attempts", "responseStatus"}
DELIVERY_FIELDS |= {"durationMs", "nextAttemptAt"}

# -- the main flow ---------------------------------------------------------------------------


@pytest.fixture(params=processes.STORES)
def any_store_server(
    request: pytest.FixtureRequest, tmp_path: Path, server: Server
) -> Iterator[Server]:
    if request.param == "sqlite":
        yield server
        return
    with serve(tmp_path, {**PRIVATE_TARGETS, **processes.store_settings(request)}) as srv:
        yield srv


def test_a_write_reaches_the_consumer_signed_and_is_listed_and_redelivered(
    any_store_server: Server,
) -> None:
    server = any_store_server
    tenant_id, auth = server.admin_of_new_tenant(f"Main Flow {uuid.uuid4().hex[:6]}")
    with consumer() as hook:
        created = server.http.post(
            "/webhooks",
            headers=auth,
            json={"url": hook.url("/hook"), "events": ["person.created"], "description": "CRM"},
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        webhook_id, secret = endpoint["webhookId"], endpoint["secret"]
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", secret)
        assert created.headers["location"] == f"/api/v1/webhooks/{webhook_id}"
        assert int(created.headers["x-log-position"]) > 0
        assert created.headers["etag"] == '"1"'
        assert endpoint["status"] == "enabled"
        read = server.http.get(f"/webhooks/{webhook_id}", headers=auth)
        assert "secret" not in read.json()

        hired = hire(server, auth)
        answered = time.time()
        (message,) = hook.wait_for("/hook", 1, timeout=2)
        assert message.at - answered < 1.0  # the first attempt within a second of the commit

        payload = verify(secret, message)
        assert message.msg_id.startswith("msg_")
        assert message.headers["content-type"] == "application/json"
        assert abs(int(message.headers["webhook-timestamp"]) - time.time()) < 10
        assert payload["type"] == "person.created"
        assert payload["tenantId"] == tenant_id
        assert datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
        person = hired.json()
        assert payload["data"]["aggregateId"] == person["personId"]
        assert payload["data"]["object"]["personId"] == person["personId"]
        assert payload["data"]["actor"] == "user:ada"

        # The consumer has the message; its answer is recorded a moment later.
        delivery = settled(server, auth, webhook_id, lambda d: d["status"] != "pending")
        assert delivery.keys() >= DELIVERY_FIELDS
        assert message.msg_id == "msg_" + uuid.UUID(delivery["deliveryId"]).hex
        assert delivery["eventType"] == "person.created"
        assert delivery["status"] == "succeeded"
        assert (delivery["attempts"], delivery["responseStatus"]) == (1, 200)
        assert isinstance(delivery["durationMs"], int)
        assert delivery["nextAttemptAt"] is None
        done = server.http.get(f"/webhooks/{webhook_id}/deliveries", params={"status": "pending"})
        assert done.status_code == 401
        pending = server.http.get(
            f"/webhooks/{webhook_id}/deliveries", headers=auth, params={"status": "pending"}
        )
        assert pending.json() == {"deliveries": [], "totalCount": 0, "nextCursor": None}

        redelivered = server.http.post(
            f"/webhooks/{webhook_id}/deliveries/{delivery['deliveryId']}/redeliver", headers=auth
        )
        assert redelivered.status_code == 202, redelivered.text
        assert redelivered.json()["deliveryId"] == delivery["deliveryId"]
        again = hook.wait_for("/hook", 2, timeout=2)[1]
        assert again.msg_id == message.msg_id
        assert again.body == message.body  # the same message, byte for byte
        assert verify(secret, again) == payload
        after = settled(server, auth, webhook_id, lambda d: d["attempts"] == 2)
        assert after["status"] == "succeeded"
        one = server.http.get(
            f"/webhooks/{webhook_id}/deliveries/{delivery['deliveryId']}", headers=auth
        ).json()
        assert one["payload"] == payload
        assert [a["responseBody"] for a in one["attemptHistory"]] == ["thanks", "thanks"]


# -- retries ---------------------------------------------------------------------------------


def unreadable_retry_after(handler: http.server.BaseHTTPRequestHandler, n: int) -> None:
    """429 with a Retry-After no one can read (raw bytes: http.server would encode it), then
    200."""
    if n > 1:
        reply(handler, 200)
        return
    value = {"/digits": b"9" * 5000, "/superscript": "\u00b2".encode()}[handler.path]
    handler.send_response(429)
    handler._headers_buffer.append(b"Retry-After: " + value + b"\r\n")  # type: ignore[attr-defined]
    handler.send_header("content-length", "0")
    handler.end_headers()


def test_retries_keep_the_webhook_id_and_wait_as_retry_after_asks(server: Server) -> None:
    _, auth = server.admin_of_new_tenant("Retries")

    def busy_once(handler: http.server.BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:
            reply(handler, 503, b"busy", {"Retry-After": "1"})
        else:
            reply(handler, 204)

    with consumer(busy_once) as hook:
        endpoint = create_webhook(server, auth, hook.url("/hook"))
        hire(server, auth)
        first, second = hook.wait_for("/hook", 2, timeout=4)
        assert second.msg_id == first.msg_id
        assert second.at - first.at >= 0.95  # Retry-After: 1, not the 0.3 s schedule
        verify(endpoint["secret"], second)
        delivery = settled(server, auth, endpoint["webhookId"], lambda d: d["attempts"] == 2)
        assert (delivery["status"], delivery["responseStatus"]) == ("succeeded", 204)


def test_a_retry_after_no_one_can_read_is_still_an_attempt(server: Server) -> None:
    """It once raised while the attempt was recorded: the delivery stayed leased, was sent
    again after every lease (a minute) and never showed an attempt."""
    _, auth = server.admin_of_new_tenant("Unreadable")
    with consumer(unreadable_retry_after) as hook:
        digits = create_webhook(server, auth, hook.url("/digits"))
        superscript = create_webhook(server, auth, hook.url("/superscript"))
        hire(server, auth)
        # Thousands of digits: a very long wait, capped at a day.
        waiting = settled(server, auth, digits["webhookId"], lambda d: d["attempts"] == 1)
        assert (waiting["status"], waiting["responseStatus"]) == ("pending", 429)
        next_attempt = datetime.fromisoformat(waiting["nextAttemptAt"])
        assert next_attempt > datetime.now(UTC) + timedelta(hours=23)
        # "²" is no number at all: the schedule decides, and the retry succeeds.
        done = settled(server, auth, superscript["webhookId"], lambda d: d["attempts"] == 2)
        assert done["status"] == "succeeded"
        (first, second) = hook.at("/superscript")
        assert first.msg_id == second.msg_id


def test_awkward_consumers(server: Server) -> None:
    """410 disables; a redirect is not followed; a consumer that hangs holds up no one else;
    a huge answer is not read to its end; a hang-up is an error; a body that arrives in pieces
    is recorded whole."""

    def answer(handler: http.server.BaseHTTPRequestHandler, n: int) -> None:
        path = handler.path
        if path == "/gone":
            reply(handler, 410)
        elif path == "/moved":
            reply(handler, 307, headers={"Location": hook.url("/elsewhere")})
        elif path == "/hang":
            hook.released.wait(20)
            reply(handler, 200)
        elif path == "/huge":
            handler.send_response(200)
            handler.send_header("content-length", str(100 * 1024 * 1024))
            handler.end_headers()
            try:
                for _ in range(1600):
                    handler.wfile.write(b"x" * 65536)
            except OSError:  # the sender hung up after its KiB
                pass
        elif path == "/hang-up":
            handler.close_connection = True
            handler.connection.shutdown(2)
        elif path == "/pieces":
            handler.send_response(500)
            handler.send_header("content-length", "30")
            handler.end_headers()
            for piece in (b"0123456789", b"abcdefghij", b"ABCDEFGHIJ"):
                handler.wfile.write(piece)
                handler.wfile.flush()
                time.sleep(0.05)
        else:
            reply(handler, 200)

    _, auth = server.admin_of_new_tenant("Awkward")
    with consumer(answer) as hook:
        paths = ["/gone", "/moved", "/hang", "/huge", "/hang-up", "/pieces", "/fine"]
        ids = {path: create_webhook(server, auth, hook.url(path))["webhookId"] for path in paths}
        hire(server, auth)
        answered = time.time()
        (fine,) = hook.wait_for("/fine", 1, timeout=2)
        assert fine.at - answered < 1.0  # the hanging consumer holds up no one

        gone = settled(server, auth, ids["/gone"], lambda d: d["status"] != "pending")
        assert (gone["status"], gone["responseStatus"]) == ("failed", 410)
        endpoint = eventually(
            lambda: server.http.get(f"/webhooks/{ids['/gone']}", headers=auth).json(),
            lambda e: e["status"] == "disabled",  # the dispatcher's write: read models follow
        )
        assert "410" in endpoint["disabledReason"]

        moved = settled(server, auth, ids["/moved"], lambda d: d["attempts"] >= 1)
        assert moved["responseStatus"] == 307
        assert moved["status"] in ("pending", "failed")

        huge = settled(server, auth, ids["/huge"], lambda d: d["attempts"] == 1)
        assert huge["status"] == "succeeded"
        assert huge["durationMs"] < 2000
        detail = server.http.get(
            f"/webhooks/{ids['/huge']}/deliveries/{huge['deliveryId']}", headers=auth
        ).json()
        assert detail["attemptHistory"][0]["responseBody"] == "x" * 1024

        hung_up = settled(server, auth, ids["/hang-up"], lambda d: d["attempts"] >= 1)
        assert hung_up["responseStatus"] is None
        assert hung_up["error"]

        pieces = settled(server, auth, ids["/pieces"], lambda d: d["attempts"] >= 1)
        detail = server.http.get(
            f"/webhooks/{ids['/pieces']}/deliveries/{pieces['deliveryId']}", headers=auth
        ).json()
        assert detail["attemptHistory"][0]["responseBody"] == "0123456789abcdefghijABCDEFGHIJ"

        hanging = deliveries(server, auth, ids["/hang"])[0]
        assert hanging["status"] == "pending"  # still in flight
        assert hook.at("/elsewhere") == []  # the redirect was never followed
    time.sleep(0.2)  # the released hang answers before the server is stopped


# -- rotation --------------------------------------------------------------------------------


def test_a_rotated_secret_signs_beside_the_new_one(server: Server) -> None:
    _, auth = server.admin_of_new_tenant("Rotation")
    with consumer() as hook:
        endpoint = create_webhook(server, auth, hook.url("/hook"))
        rotated = server.http.post(f"/webhooks/{endpoint['webhookId']}/rotate-secret", headers=auth)
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"]
        until = datetime.fromisoformat(rotated.json()["previousSecretValidUntil"])
        assert abs(until - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)

        pinged = server.http.post(f"/webhooks/{endpoint['webhookId']}/test", headers=auth)
        assert pinged.status_code == 202, pinged.text
        (message,) = hook.wait_for("/hook", 1, timeout=2)
    signatures = message.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    for secret in (endpoint["secret"], new_secret):  # either verifies on its own
        assert verify(secret, message)["type"] == "webhook.test"
    assert message.msg_id == "msg_" + uuid.UUID(pinged.json()["deliveryId"]).hex


# -- bad input -------------------------------------------------------------------------------


BAD_BODIES: list[tuple[Any, str | None]] = [
    ({"url": "ftp://x.example/", "events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1/\u0000", "events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1/a b", "events": ["*"]}, "url"),
    ({"url": "http://u:p@127.0.0.1/", "events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1:99999/", "events": ["*"]}, "url"),
    ({"url": "http://[::1/", "events": ["*"]}, "url"),
    ({"url": "http://" + "a" * 2000 + ".example/", "events": ["*"]}, "url"),
    ({"url": "http://does-not-resolve.invalid/", "events": ["*"]}, "url"),
    ({"url": 7, "events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1/", "events": "*"}, "events"),
    ({"url": "http://127.0.0.1/", "events": []}, "events"),
    ({"url": "http://127.0.0.1/", "events": ["*", "person.created"]}, "events"),
    ({"url": "http://127.0.0.1/", "events": ["person.exploded"]}, "events"),
    ({"url": "http://127.0.0.1/", "events": [None]}, None),
    ({"url": "http://127.0.0.1/", "events": ["*"], "description": "\u001b[31m"}, "description"),
    ({"url": "http://127.0.0.1/", "events": ["*"], "description": "d" * 501}, "description"),
    ({"url": "http://127.0.0.1/", "events": ["*"], "secret": "whsec_mine"}, "secret"),
    ({"events": ["*"]}, "url"),
    ([], None),
    (None, None),
]


def test_bad_input_is_a_problem_and_changes_nothing(server: Server) -> None:
    _, auth = server.admin_of_new_tenant("Hostile")
    endpoint = create_webhook(server, auth, "http://127.0.0.1:9/hook")
    webhook_id = endpoint["webhookId"]
    for body, field_name in BAD_BODIES:
        created = server.http.post("/webhooks", headers=auth, json=body)
        is_problem(created, 400, field_name)
        replaced = server.http.put(f"/webhooks/{webhook_id}", headers=auth, json=body)
        is_problem(replaced, 400, field_name)
    is_problem(
        server.http.post("/webhooks", headers={**auth, "content-type": "text/plain"}, content="x"),
        415,
    )
    is_problem(
        server.http.post(
            "/webhooks", headers={**auth, "content-type": "application/json"}, content=b"{"
        ),
        400,
    )
    listed = server.http.get("/webhooks", headers=auth).json()
    assert listed["totalCount"] == 1
    assert server.http.get(f"/webhooks/{webhook_id}", headers=auth).headers["etag"] == '"1"'

    deliveries_path = f"/webhooks/{webhook_id}/deliveries"
    for params, name in [
        ({"status": "bogus"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "-1"}, "cursor"),
    ]:
        is_problem(server.http.get(deliveries_path, headers=auth, params=params), 400, name)
    is_problem(server.http.get("/webhooks", headers=auth, params={"cursor": "%%%"}), 400, "cursor")

    missing = str(uuid.uuid4())
    for method, path in [
        ("GET", "/webhooks/not-a-uuid"),
        ("GET", f"/webhooks/{missing}"),
        ("POST", f"/webhooks/{missing}/test"),
        ("GET", f"/webhooks/{webhook_id}/deliveries/not-a-uuid"),
        ("GET", f"/webhooks/{webhook_id}/deliveries/{missing}"),
        ("POST", f"/webhooks/{webhook_id}/deliveries/{missing}/redeliver"),
    ]:
        is_problem(server.http.request(method, path, headers=auth), 404)


def test_another_tenants_endpoint_and_deliveries_are_not_found(server: Server) -> None:
    _, auth = server.admin_of_new_tenant("Owner")
    _, other = server.admin_of_new_tenant("Snoop")
    with consumer() as hook:
        endpoint = create_webhook(server, auth, hook.url("/hook"))
        webhook_id = endpoint["webhookId"]
        hire(server, auth)
        hook.wait_for("/hook", 1)
    delivery = settled(server, auth, webhook_id, lambda d: d["status"] == "succeeded")
    delivery_id = delivery["deliveryId"]
    body = {"url": "http://127.0.0.1:9/", "events": ["*"]}
    for method, path, json_body in [
        ("GET", f"/webhooks/{webhook_id}", None),
        ("PUT", f"/webhooks/{webhook_id}", body),
        ("DELETE", f"/webhooks/{webhook_id}", None),
        ("POST", f"/webhooks/{webhook_id}/rotate-secret", None),
        ("POST", f"/webhooks/{webhook_id}/test", None),
        ("GET", f"/webhooks/{webhook_id}/deliveries", None),
        ("GET", f"/webhooks/{webhook_id}/deliveries/{delivery_id}", None),
        ("POST", f"/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", None),
    ]:
        is_problem(server.http.request(method, path, headers=other, json=json_body), 404)
    # Its own endpoint does not open the other's delivery either.
    own = create_webhook(server, other, "http://127.0.0.1:9/hook")
    is_problem(
        server.http.get(f"/webhooks/{own['webhookId']}/deliveries/{delivery_id}", headers=other),
        404,
    )
    assert server.http.get("/webhooks", headers=other).json()["totalCount"] == 1
    assert deliveries(server, auth, webhook_id) == [delivery]  # nothing was redelivered


# -- the private-address rule at send time ---------------------------------------------------

# The test's own name service: the server process resolves the names in the file it names,
# which the test rewrites as it goes (DNS that changes after an endpoint was saved).
FAKE_DNS = """
import json, os, socket

_real = socket.getaddrinfo


def _getaddrinfo(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    with open(os.environ["TEST_FAKE_DNS"]) as names:
        address = json.load(names).get(name)
    return _real(address or host, port, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
"""


def test_a_name_that_comes_to_resolve_to_loopback_is_refused_at_send_time(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_DNS)
    names = tmp_path / "dns.json"
    names.write_text(json.dumps({"hooks.partner.example": "93.184.216.34"}))  # public
    extra = {"PYTHONPATH": str(site), "TEST_FAKE_DNS": str(names)}
    with consumer() as hook, serve(tmp_path, extra) as server:
        _, auth = server.admin_of_new_tenant("Rebound")
        refused = server.http.post(
            "/webhooks", headers=auth, json={"url": hook.url("/hook"), "events": ["*"]}
        )
        is_problem(refused, 400, "url")  # 127.0.0.1 itself: refused when saved
        url = f"http://hooks.partner.example:{hook.port}/hook"
        endpoint = create_webhook(server, auth, url)

        names.write_text(json.dumps({"hooks.partner.example": "127.0.0.1"}))  # rebound
        hire(server, auth)
        delivery = settled(server, auth, endpoint["webhookId"], lambda d: d["attempts"] >= 1)
        assert delivery["status"] == "pending"  # retried on schedule: DNS may change back
        assert delivery["responseStatus"] is None
        assert delivery["error"].startswith("refused target: hooks.partner.example resolves to")
        assert "127.0.0.1" not in delivery["error"]  # what a name resolves to is not told
        time.sleep(2 * RETRY)
        assert hook.received == []
