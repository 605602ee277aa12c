"""Webhook consumers for the tests: real HTTP servers on 127.0.0.1 that record what they are
sent and answer as a test scripts them; and helpers to make endpoints and wait for messages."""

from __future__ import annotations

import base64
import http.server
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from standardwebhooks.webhooks import Webhook

from application.context import EventMeta
from domain.webhook import PUBLIC_EVENT_TYPES, WebhookEndpoint
from entrypoints.container import Services


@dataclass(frozen=True)
class Received:
    """One request as the consumer saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return msgspec.json.decode(self.body)

    def verify(self, secret: str) -> Any:
        """The payload, once the independent Standard Webhooks implementation accepts it."""
        return Webhook(secret).verify(self.body, self.headers)


# An answer: status, extra headers, seconds to wait before answering, body.
Answer = tuple[int, dict[str, str], float, bytes]
Script = Callable[[int, "Received"], Answer]  # (n-th request to this consumer, from 1)


def ok(n: int, request: Received) -> Answer:
    return 200, {}, 0.0, b"thanks"


@dataclass
class Consumer:
    url: str
    script: Script
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Received) -> int:
        with self.lock:
            self.received.append(request)
            return len(self.received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` requests, waiting for them to arrive (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            got = len(self.received)
        raise AssertionError(f"{self.url} received {got} requests, expected {count}")

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@contextmanager
def consumer(script: Script = ok, path: str = "/hook") -> Iterator[Consumer]:
    """A consumer listening on 127.0.0.1 (a thread per request), stopped afterwards."""
    box: list[Consumer] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            request = Received(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                at=time.time(),
            )
            target = box[0]
            n = target.record(request)
            status, headers, delay, answer = target.script(n, request)
            if delay:
                time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    box.append(Consumer(url=f"http://127.0.0.1:{port}{path}", script=script))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()


# -- endpoints, made straight through the event log (no HTTP needed) -------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:8]).decode()


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: uuid.UUID
    tenant_id: uuid.UUID
    secret: str


META = EventMeta(actor="user:tester", request_id="test")


def register_endpoint(
    services: Services, tenant_id: uuid.UUID | str, url: str, events: list[str] | None = None
) -> Endpoint:
    """An enabled endpoint of the tenant, its secret in the secret store."""
    from application.ports import WebhookSecrets

    tenant = uuid.UUID(str(tenant_id))
    secret_id, endpoint_id = uuid.uuid4(), uuid.uuid4()
    secret = new_secret()
    services.get(WebhookSecrets).put(tenant, secret_id, secret)
    endpoint = WebhookEndpoint.register(
        endpoint_id=endpoint_id,
        tenant_id=tenant,
        url=url,
        events=events or ["*"],
        description=None,
        secret_id=secret_id,
        known_events=PUBLIC_EVENT_TYPES,
        at=datetime.now(UTC),
    )
    services.log.record(endpoint, meta=META)
    return Endpoint(endpoint_id, tenant, secret)


def change_endpoint(
    services: Services, endpoint_id: uuid.UUID, change: Callable[[WebhookEndpoint], Any]
) -> Any:
    endpoint = services.log.load(WebhookEndpoint, endpoint_id)
    assert endpoint is not None
    result = change(endpoint)
    services.log.record(endpoint, meta=META)
    return result


def deliver_until(services: Services, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Run dispatch rounds in this thread until `done()` (retries become due as time passes)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("webhook deliveries did not settle in time")
        services.dispatcher.run_once()
        time.sleep(0.01)


def deliveries(services: Services, endpoint_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """Rows of webhook_deliveries (all, or of one endpoint), in log order, once the outbox has
    caught up with the log."""
    services.outbox.catch_up()
    where, params = ("WHERE endpoint_id = ?", (str(endpoint_id),)) if endpoint_id else ("", ())
    rows = services.db.query(
        "SELECT delivery_id, endpoint_id, event_type, status, attempts, position, reason"
        f" FROM webhook_deliveries {where} ORDER BY position, endpoint_id",
        params,
    )
    keys = ("delivery_id", "endpoint_id", "event_type", "status", "attempts", "position", "reason")
    return [dict(zip(keys, row, strict=True)) for row in rows]
