"""Every error leaves as RFC 9457 problem+json: {type, title, status, detail, instance, code}
plus `errors: [{field, message}]` for validation. No input may produce a 500."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from application.errors import ApplicationError
from application.problems import PROBLEM_BASE, problem_for
from domain.errors import DomainError
from projections.formats import camel

log = logging.getLogger("workledger.http")

PROBLEM_JSON = "application/problem+json"
_BACKTICKED = re.compile(r"`([^`]+)`")
_MISSING_PARAMETER = re.compile(r"Missing required \w+ parameter '([^']+)'")
_TITLES = {
    400: "Invalid input",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
}
_CODES = {
    400: "invalid-input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "body-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
    503: "unavailable",
}


def problem_response(
    request: Request[Any, Any, Any], problem: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[Any]:
    body = {**problem, "instance": request.url.path}
    return Response(
        content=body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers
    )


def generic_problem(
    status: int, detail: str, code: str | None = None, **extra: Any
) -> dict[str, Any]:
    code = code or _CODES.get(status, "error")
    return {
        "type": PROBLEM_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


# RFC 9110: a 401 names the scheme that would have worked (API keys go in X-API-Key).
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="workledger"'}


def on_domain_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, DomainError | ApplicationError)
    problem = problem_for(exc)
    return problem_response(request, problem, CHALLENGE if problem["status"] == 401 else None)


def on_undecodable_body(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """msgspec raises UnicodeDecodeError (not a DecodeError, which Litestar would turn into a
    400) for a JSON string holding bytes that are not UTF-8: the client's input, so a 400."""
    assert isinstance(exc, UnicodeDecodeError)
    return problem_response(
        request,
        generic_problem(
            400,
            "the body holds bytes that are not UTF-8",
            "invalid-input",
            errors=[{"field": "body", "message": "must be UTF-8 encoded JSON"}],
        ),
    )


def on_validation_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's decoding errors, re-told with the field each one is about."""
    assert isinstance(exc, ValidationException)
    errors = []
    for item in exc.extra or []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        field = str(item.get("key") or "")
        named = _BACKTICKED.search(message)
        if field == "data":  # about the body as a whole: name the field the message names
            field = named.group(1) if named and "field" in message else "body"
            if message == "'data'":
                message = "a JSON object body is required"
        elif item.get("source") in ("query", "path", "header"):
            field = camel(field)  # Litestar names the Python parameter; clients know the API name
        errors.append({"field": field, "message": message})
    missing = _MISSING_PARAMETER.search(exc.detail or "")
    if not errors and missing:
        errors.append({"field": missing.group(1), "message": "is required"})
    detail = (
        f"{errors[0]['field']}: {errors[0]['message']}"
        if len(errors) == 1
        else (exc.detail or "invalid input")
    )
    if not errors and exc.detail:
        detail = exc.detail.replace("JSON is malformed", "the body is not valid JSON")
    return problem_response(request, generic_problem(400, detail, "invalid-input", errors=errors))


def on_http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _TITLES.get(status, "")
    headers = dict(exc.headers or {})
    return problem_response(request, generic_problem(status, detail), headers=headers)


def on_unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request,
        generic_problem(
            HTTP_500_INTERNAL_SERVER_ERROR,
            "an unexpected error occurred; it has been logged",
            "internal-error",
        ),
    )


EXCEPTION_HANDLERS = {
    DomainError: on_domain_error,
    ApplicationError: on_domain_error,
    ValidationException: on_validation_error,
    HTTPException: on_http_error,
    UnicodeDecodeError: on_undecodable_body,
    Exception: on_unexpected_error,
}
