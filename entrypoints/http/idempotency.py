"""ASGI middleware: `Idempotency-Key` on POST (API.md "Conventions", docs/idempotency.md).

Only a POST that sends the header is touched. The caller is identified first (a request that
does not authenticate goes through untouched and the route answers 401); then the key is
checked, the body read (and handed on to the route unchanged), and the store decides: run the
request and keep its answer, replay the kept answer, or refuse (422 another request, 409 still
running). Store calls are synchronous on the event loop, like the routes (sync_to_thread=False):
they are short single-row transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from application.errors import ApplicationError, InvalidRequest
from application.idempotency import (
    MAX_STORED_BODY,
    REPLAYED_HEADERS,
    Claim,
    IdempotencyScope,
    StoredResponse,
    fingerprint,
    keeps,
    key_problem,
)
from application.ports import Clock, IdempotencyStore
from application.problems import problem_for
from domain.errors import DomainError
from entrypoints.container import Services
from entrypoints.http.auth import principal_of
from entrypoints.http.problems import PROBLEM_JSON, generic_problem
from entrypoints.http.rate_limits import enforce_rate_limits

log = logging.getLogger("workledger.http")

HEADER = b"idempotency-key"
_WATCHED = {name.encode() for name in REPLAYED_HEADERS}


def idempotency_keys(max_body: int) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware, for request bodies up to `max_body` bytes (a bigger one goes through
    untouched, and the app refuses it with 413)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] != "POST":
                await app(scope, receive, send)
                return
            keys = [value for name, value in scope.get("headers", []) if name.lower() == HEADER]
            if not keys:
                await app(scope, receive, send)
                return
            request: Request[Any, Any, Any] = Request(scope)
            services: Services = request.app.state.services
            try:
                principal = principal_of(request, services)
                # Counted like any request, before the key is looked at: a replay, a 409 or a
                # 422 is no way around the limits, and a request over a limit changes nothing.
                enforce_rate_limits(request, services, principal)
            except (ApplicationError, DomainError, TooManyRequestsException):
                await app(scope, receive, send)  # the route tells the caller what is wrong
                return
            problem = "send it once" if len(keys) > 1 else key_problem(keys[0].decode("latin-1"))
            if problem is not None:
                error = InvalidRequest("Idempotency-Key", problem)
                await _send_problem(scope, send, problem_for(error))
                return
            body, receive = await _read_body(receive, max_body)
            if body is None:
                await app(scope, receive, send)
                return
            key = keys[0].decode("latin-1")
            owner = IdempotencyScope(tenant_id=principal.tenant_id, actor=principal.actor)
            store = services.get(IdempotencyStore)
            query = scope.get("query_string", b"")
            request_print = fingerprint(scope["method"], scope["path"], query, body)
            claim = store.begin(owner, key, request_print, services.get(Clock).now())
            if claim.outcome == "started":
                await _run(app, scope, receive, send, _Keeper(store, owner, key, claim.token))
            else:
                await _refuse_or_replay(scope, send, claim)

        return middleware

    return wrap


class _Keeper:
    """Keeps the answer of the request that owns a key, or lets the key go."""

    def __init__(
        self, store: IdempotencyStore, owner: IdempotencyScope, key: str, token: str
    ) -> None:
        self.store, self.owner, self.key, self.token = store, owner, key, token
        self.settled = False

    def finish(
        self, status: int, headers: list[tuple[str, str]], chunks: list[bytes] | None
    ) -> None:
        self.settled = True
        body = b"".join(chunks) if chunks is not None else None
        if not keeps(status, _problem_code(status, body)):
            self.release()
            return
        response = StoredResponse(status=status, headers=tuple(headers), body=body)
        try:
            self.store.finish(self.owner, self.key, self.token, response)
        except Exception:  # the client still gets its answer; the key is let go if possible
            log.exception("could not keep the answer to idempotency key %r", self.key)
            self.release()

    def release(self) -> None:
        self.settled = True
        try:
            self.store.release(self.owner, self.key, self.token)
        except Exception:  # the lease runs out and a retry takes the key over
            log.exception("could not release idempotency key %r", self.key)


async def _run(app: ASGIApp, scope: Scope, receive: Receive, send: Send, keeper: _Keeper) -> None:
    status = 0
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] | None = []
    size = 0

    async def capture(message: Message) -> None:
        nonlocal status, headers, chunks, size
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers = [
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in message.get("headers", [])
                if name.lower() in _WATCHED
            ]
        elif message["type"] == "http.response.body" and not keeper.settled:
            part = bytes(message.get("body", b""))
            size += len(part)
            if chunks is not None and size <= MAX_STORED_BODY:
                chunks.append(part)
            else:
                chunks = None  # too large to keep: sent on, not stored
            if not message.get("more_body", False):
                # Kept before the client has the last byte: a retry it sends at once replays.
                keeper.finish(status, headers, chunks)
        await send(message)

    try:
        await app(scope, receive, capture)
    finally:
        if not keeper.settled:  # no complete answer (error, disconnect): the key is let go
            keeper.release()


async def _refuse_or_replay(scope: Scope, send: Send, claim: Claim) -> None:
    if claim.outcome == "mismatch":
        await _send_problem(
            scope,
            send,
            generic_problem(
                422,
                "this Idempotency-Key was already used with another request (method, path,"
                " query or body); use a new key for a new request",
                "idempotency-key-reused",
            ),
        )
        return
    if claim.outcome == "in_flight":
        await _send_problem(
            scope,
            send,
            generic_problem(
                409,
                "a request with this Idempotency-Key is still running; retry shortly to get its"
                " answer",
                "idempotency-key-in-flight",
            ),
            [(b"retry-after", b"1")],
        )
        return
    stored = claim.response
    assert stored is not None
    if stored.body is None:
        await _send_problem(
            scope,
            send,
            generic_problem(
                409,
                f"the request with this Idempotency-Key ran and answered {stored.status}, but"
                " the answer was too large to keep; read the result instead",
                "idempotency-answer-not-kept",
                originalStatus=stored.status,
            ),
        )
        return
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
    headers += [
        (b"content-length", str(len(stored.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The whole request body and a receive that hands it on; (None, ...) when it is bigger
    than `limit` or the client went away, with a receive that hands on what was read."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, _handing_on(messages, receive)
        size += len(message.get("body", b""))
        if size > limit:
            return None, _handing_on(messages, receive)
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages)
    return body, _handing_on([{"type": "http.request", "body": body, "more_body": False}], receive)


def _handing_on(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def handed_on() -> Message:
        return pending.pop(0) if pending else await receive()

    return handed_on  # type: ignore[return-value]


def _problem_code(status: int, body: bytes | None) -> str | None:
    """The `code` of a problem+json answer, looked at only where `keeps` needs it."""
    if body is None or status not in (409, 503):
        return None
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    code = decoded.get("code") if isinstance(decoded, dict) else None
    return code if isinstance(code, str) else None


async def _send_problem(
    scope: Scope,
    send: Send,
    problem: dict[str, Any],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = msgspec.json.encode({**problem, "instance": scope["path"]})
    await send(
        {
            "type": "http.response.start",
            "status": problem["status"],
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
