"""The one assertion every API test makes about errors: RFC 9457 problem+json, as API.md says."""

from __future__ import annotations

from typing import Any

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code"}


def problem(response: Any, status: int, code: str | None = None, field: str | None = None) -> Any:
    """Assert `response` is an RFC 9457 problem with `status` (and `code`, `errors[].field`)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body
