"""/api/v1/api-keys: machine clients' keys (API.md "API keys", docs/api-keys.md).

The key itself is in the answers that issue one (create, rotate) and nowhere else; those
answers say `Cache-Control: no-store` so no cache keeps it either.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from application.api_keys import (
    DEFAULT_USAGE_DAYS,
    ApiKeyCommands,
    ApiKeyQueries,
    CreateApiKey,
    IssuedKey,
    RotateApiKey,
)
from application.queries import DEFAULT_LIMIT
from entrypoints.http.deps import Ctx, Svc, settled
from entrypoints.http.responses import JSON, document, etag, if_match, page

PATH = "/api/v1/api-keys"
Req = Request[Any, Any, Any]


def _issued(services: Svc, ctx: Ctx, issued: IssuedKey, status: int) -> Response[bytes]:
    """The key's representation with the key itself, once the read models hold the write."""
    written = settled(services, issued.written)
    doc = services.get(ApiKeyQueries).get(ctx, written.id)
    representation = msgspec.json.decode(doc.doc)
    body = {"apiKeyId": representation.pop("apiKeyId"), "key": issued.key, **representation}
    headers = {
        "ETag": etag(doc.version),
        "X-Log-Position": str(written.position),
        "Cache-Control": "no-store",
    }
    if written.created:
        headers["Location"] = f"{PATH}/{written.id}"
    return Response(
        content=msgspec.json.encode(body), status_code=status, media_type=JSON, headers=headers
    )


@post("/", sync_to_thread=False, status_code=201)
def create(data: JSONBody[CreateApiKey], ctx: Ctx, services: Svc) -> Response[bytes]:
    return _issued(services, ctx, services.get(ApiKeyCommands).create(ctx, data), 201)


@get("/", sync_to_thread=False)
def list_keys(
    ctx: Ctx,
    services: Svc,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    return page("apiKeys", services.get(ApiKeyQueries).list(ctx, limit=limit, cursor=cursor))


@get("/{api_key_id:uuid}", sync_to_thread=False)
def get_key(api_key_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(ApiKeyQueries).get(ctx, api_key_id))


@delete("/{api_key_id:uuid}", sync_to_thread=False, status_code=204)
def revoke(api_key_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req) -> Response[None]:
    commands = services.get(ApiKeyCommands)
    written = settled(services, commands.revoke(ctx, api_key_id, if_match(request)))
    return Response(
        content=None,
        status_code=204,
        headers={"X-Log-Position": str(written.position), "ETag": etag(written.version)},
    )


@post("/{api_key_id:uuid}/rotate", sync_to_thread=False, status_code=200)
def rotate(
    api_key_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    request: Req,
    data: JSONBody[RotateApiKey | None] = None,
) -> Response[bytes]:
    issued = services.get(ApiKeyCommands).rotate(
        ctx, api_key_id, data or RotateApiKey(), if_match(request)
    )
    return _issued(services, ctx, issued, 200)


@get("/{api_key_id:uuid}/usage", sync_to_thread=False)
def usage(
    api_key_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    days: FromQuery[int] = DEFAULT_USAGE_DAYS,
) -> dict[str, Any]:
    return services.get(ApiKeyQueries).usage(ctx, api_key_id, days)


router = Router(
    path="/api-keys",
    route_handlers=[create, list_keys, get_key, revoke, rotate, usage],
    tags=["api-keys"],
)
