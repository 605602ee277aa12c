"""ASGI middleware: a request id on every request and response, and JSON-only write bodies."""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from application.problems import PROBLEM_BASE

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_WRITES = {b"POST", b"PUT", b"PATCH"}
_BINARY_ROUTES = re.compile(r"/photo$")  # take raw image bytes, not JSON


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def request_id(scope: Scope) -> str:
    """The request's id: a sane client X-Request-Id, else a fresh one; fixed once per request."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        given = _header(scope, b"x-request-id")
        state["request_id"] = given if given and _CLIENT_ID.match(given) else uuid.uuid4().hex
    return str(state["request_id"])


async def send_request_id(message: Message, scope: Scope) -> None:
    """before_send hook: every response carries X-Request-Id, routing errors (404/405) too,
    which never reach route middleware."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers", []))
        headers.append((b"x-request-id", request_id(scope).encode()))
        message["headers"] = headers


def json_body_middleware(app: ASGIApp) -> ASGIApp:
    """A write with a body must say it is JSON (415 otherwise), before anything decodes it; and
    no query string may carry a NUL (no filter means one, and PostgreSQL text cannot hold it)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"%00" in scope.get("query_string", b""):
            await _reject(
                scope,
                send,
                400,
                "invalid-input",
                "Invalid input",
                "query parameters must not contain NUL characters",
            )
            return
        if (
            scope["type"] == "http"
            and scope["method"].encode() in _WRITES
            and not _BINARY_ROUTES.search(scope["path"])
        ):
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            length = _header(scope, b"content-length")
            has_body = content_type or (length not in (None, "0"))
            if (
                has_body
                and content_type != "application/json"
                and not content_type.endswith("+json")
            ):
                await _reject(
                    scope,
                    send,
                    415,
                    "unsupported-media-type",
                    "Unsupported media type",
                    f"send the body as application/json, not {content_type!r}",
                )
                return
        await app(scope, receive, send)

    return middleware


async def _reject(
    scope: Scope, send: Send, status: int, code: str, title: str, detail: str
) -> None:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
        "code": code,
    }
    payload = msgspec.json.encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
