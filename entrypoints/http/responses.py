"""Response helpers shared by every route: ETags, If-Match, log positions and list pages."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response

from application.errors import PreconditionFailed
from application.queries import Document, Page, encode_cursor
from application.results import Written

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
JSON = "application/json"


def if_match(request: Request[Any, Any, Any]) -> int | None:
    """The version the client expects, from If-Match; None when absent or `*`."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header)
    if match is None:
        # Not a version of ours, so it cannot match any version.
        raise PreconditionFailed(-1, -1)
    return int(match.group(1))


def etag(version: int) -> str:
    return f'"{version}"'


def document(
    doc: Document, *, status: int = 200, written: Written | None = None, location: str | None = None
) -> Response[bytes]:
    headers = {"ETag": etag(doc.version)}
    if written is not None:
        headers["X-Log-Position"] = str(written.position)
    if location is not None:
        headers["Location"] = location
    return Response(content=bytes(doc.doc), status_code=status, media_type=JSON, headers=headers)


def raw(
    value: msgspec.Raw | bytes,
    *,
    version: int | None = None,
    position: int | None = None,
    status: int = 200,
) -> Response[bytes]:
    headers = {}
    if version is not None:
        headers["ETag"] = etag(version)
    if position is not None:
        headers["X-Log-Position"] = str(position)
    return Response(content=bytes(value), status_code=status, media_type=JSON, headers=headers)


def page(name: str, result: Page) -> Response[bytes]:
    """`{"<name>": [...], "totalCount": N, "nextCursor": ...}` without re-encoding the items."""
    body = msgspec.json.encode(
        {
            name: result.items,
            "totalCount": result.total,
            "nextCursor": encode_cursor(result.next_after),
        }
    )
    return Response(content=body, media_type=JSON)
