"""How each failure is told to a client: RFC 9457 problem details, status and stable code.

Kept next to the errors (not in the HTTP layer) because bulk commands report per-item
outcomes with the same statuses and codes a single request would get.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from application.errors import (
    ApplicationError,
    ConcurrentWrite,
    Forbidden,
    InvalidRequest,
    LimitReached,
    NotAuthenticated,
    NotFound,
    PreconditionFailed,
    ReadModelsBehind,
)
from domain.errors import (
    CapacityExceeded,
    DomainError,
    IllegalTransition,
    InvalidValue,
    KeyAlreadyClaimed,
    TenantNotActive,
)
from domain.invoice import Overpayment

PROBLEM_BASE = "https://workledger.dev/problems/"

_STATUS: list[tuple[type[Exception], int, str]] = [
    (InvalidValue, 400, "Invalid input"),
    (InvalidRequest, 400, "Invalid input"),
    (NotAuthenticated, 401, "Not authenticated"),
    (Forbidden, 403, "Forbidden"),
    (TenantNotActive, 403, "Tenant not active"),
    (NotFound, 404, "Not found"),
    (KeyAlreadyClaimed, 409, "Already exists"),
    (IllegalTransition, 409, "Illegal state transition"),
    (CapacityExceeded, 409, "Over capacity"),
    (Overpayment, 409, "More than the balance"),
    (ConcurrentWrite, 409, "Concurrent write"),
    (LimitReached, 409, "Limit reached"),
    (PreconditionFailed, 412, "Precondition failed"),
    (ReadModelsBehind, 503, "Recorded, read models behind"),
]


def problem_for(error: DomainError | ApplicationError) -> dict[str, Any]:
    """The problem+json body (without `instance`) for a domain or application error."""
    status, title = 400, "Bad request"
    for cls, cls_status, cls_title in _STATUS:
        if isinstance(error, cls):
            status, title = cls_status, cls_title
            break
    problem: dict[str, Any] = {
        "type": PROBLEM_BASE + error.code,
        "title": title,
        "status": status,
        "detail": error.message,
        "code": error.code,
    }
    if isinstance(error, InvalidValue | InvalidRequest):
        problem["errors"] = [{"field": error.field, "message": error.field_message}]
    if isinstance(error, KeyAlreadyClaimed):
        problem["errors"] = [{"field": error.field, "message": "already in use"}]
    if isinstance(error, ReadModelsBehind):
        problem["position"] = error.position
    if isinstance(error, IllegalTransition):
        problem["transition"] = {"action": error.action, "from": error.state}
    return problem


_AT_PATH = re.compile(r" - at `\$((?:\.\w+|\[\d+\])*)`$")
_NAMED_FIELD = re.compile(r"field `([^`]+)`")


def decoding_errors(error: msgspec.ValidationError) -> list[dict[str, str]]:
    """msgspec's message (`Expected `str`, got `int` - at `$.name``) as API field errors."""
    text = str(error)
    path = _AT_PATH.search(text)
    message = _AT_PATH.sub("", text)
    field = path.group(1).lstrip(".") if path else ""
    named = _NAMED_FIELD.search(message)
    if named:  # missing or unknown field: the message names it; the path is its parent
        field = f"{field}.{named.group(1)}" if field else named.group(1)
    return [{"field": field or "body", "message": message}]


def invalid_input(error: msgspec.ValidationError) -> dict[str, Any]:
    errors = decoding_errors(error)
    return {
        "type": PROBLEM_BASE + "invalid-input",
        "title": "Invalid input",
        "status": 400,
        "detail": errors[0]["message"],
        "code": "invalid-input",
        "errors": errors,
    }
