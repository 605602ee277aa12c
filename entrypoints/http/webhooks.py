"""/api/v1/webhooks: the endpoints a tenant's events are sent to (deliveries have their own
router). A secret appears in two answers only: the one that creates the endpoint and the one
that rotates its secret."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from application.queries import DEFAULT_LIMIT, Document
from application.results import Written
from application.webhooks import CreateWebhook, UpdateWebhook, WebhookCommands, WebhookQueries
from entrypoints.http.deps import Ctx, Svc, answer, settled
from entrypoints.http.responses import document, if_match, page, raw
from projections.formats import instant

Req = Request[Any, Any, Any]
COLLECTION = "/api/v1/webhooks"


def _with(doc: Document, **extra: Any) -> Document:
    """The representation with fields that are not part of it (the secret, once)."""
    body = msgspec.json.decode(doc.doc)
    body.update(extra)
    return Document(doc=msgspec.Raw(msgspec.json.encode(body)), version=doc.version)


def _webhook(
    services: Svc, ctx: Ctx, written: Written, status: int = 200, **extra: Any
) -> Response[bytes]:
    queries = services.get(WebhookQueries)
    return answer(
        services, written, lambda i: _with(queries.get(ctx, i), **extra), COLLECTION, status
    )


def _commands(services: Svc) -> WebhookCommands:
    return services.get(WebhookCommands)


# Creating and re-pointing an endpoint resolve its host (the private-target check): a slow DNS
# answer must hold up a worker thread, not the event loop every other request runs on.
@post("/", sync_to_thread=True, status_code=201)
def create(data: JSONBody[CreateWebhook], ctx: Ctx, services: Svc) -> Response[bytes]:
    created = _commands(services).create(ctx, data)
    return _webhook(services, ctx, created.written, 201, secret=created.secret)


@get("/", sync_to_thread=False)
def list_webhooks(
    ctx: Ctx,
    services: Svc,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    return page("webhooks", services.get(WebhookQueries).list(ctx, limit=limit, cursor=cursor))


@get("/{webhook_id:uuid}", sync_to_thread=False)
def get_webhook(webhook_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(WebhookQueries).get(ctx, webhook_id))


@put("/{webhook_id:uuid}", sync_to_thread=True)
def replace_webhook(
    webhook_id: FromPath[UUID],
    data: JSONBody[UpdateWebhook],
    ctx: Ctx,
    services: Svc,
    request: Req,
) -> Response[bytes]:
    written = _commands(services).update(ctx, webhook_id, data, if_match(request))
    return _webhook(services, ctx, written)


@delete("/{webhook_id:uuid}", sync_to_thread=False, status_code=204)
def delete_webhook(
    webhook_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req
) -> Response[None]:
    written = settled(services, _commands(services).delete(ctx, webhook_id, if_match(request)))
    return Response(
        content=None, status_code=204, headers={"X-Log-Position": str(written.position)}
    )


@post("/{webhook_id:uuid}/rotate-secret", sync_to_thread=False, status_code=200)
def rotate_secret(webhook_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    rotated = _commands(services).rotate_secret(ctx, webhook_id)
    return _webhook(
        services,
        ctx,
        rotated.written,
        secret=rotated.secret,
        previousSecretValidUntil=instant(rotated.previous_valid_until),
    )


@post("/{webhook_id:uuid}/test", sync_to_thread=False, status_code=202)
def send_test(webhook_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    """Ask for a `webhook.test` message to this endpoint alone; 202: it goes out like any other
    delivery (listed under the endpoint's deliveries with the returned deliveryId)."""
    pinged = _commands(services).ping(ctx, webhook_id)
    written = settled(services, pinged.written)
    body = {
        "webhookId": str(written.id),
        "pingId": str(pinged.ping_id),
        "deliveryId": str(pinged.delivery_id),
    }
    return raw(msgspec.json.encode(body), position=written.position, status=202)


router = Router(
    path="/webhooks",
    route_handlers=[
        create,
        list_webhooks,
        get_webhook,
        replace_webhook,
        delete_webhook,
        rotate_secret,
        send_test,
    ],
    tags=["webhooks"],
)
