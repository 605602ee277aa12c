"""/api/v1/webhooks/{id}/deliveries: what was sent to an endpoint, every attempt, redelivery."""

from __future__ import annotations

from uuid import UUID

from litestar import Response, Router, get, post
from litestar.params import FromPath, FromQuery

from application.queries import DEFAULT_LIMIT
from application.webhook_deliveries import WebhookDeliveries
from entrypoints.http.deps import Ctx, Svc
from entrypoints.http.responses import page, raw


def _deliveries(services: Svc) -> WebhookDeliveries:
    # The outbox follows the log in the background; catching it up here means an event
    # written a moment ago already has its deliveries listed (cheap when there is nothing new).
    services.outbox.catch_up()
    return services.get(WebhookDeliveries)


@get("/{webhook_id:uuid}/deliveries", sync_to_thread=False)
def list_deliveries(
    webhook_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    status: FromQuery[str | None] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = _deliveries(services).list(
        ctx, webhook_id, status=status or None, limit=limit, cursor=cursor
    )
    return page("deliveries", result)


@get("/{webhook_id:uuid}/deliveries/{delivery_id:uuid}", sync_to_thread=False)
def get_delivery(
    webhook_id: FromPath[UUID], delivery_id: FromPath[UUID], ctx: Ctx, services: Svc
) -> Response[bytes]:
    return raw(_deliveries(services).get(ctx, webhook_id, delivery_id))


@post(
    "/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
    sync_to_thread=False,
    status_code=202,
)
def redeliver(
    webhook_id: FromPath[UUID], delivery_id: FromPath[UUID], ctx: Ctx, services: Svc
) -> Response[bytes]:
    """Send the delivery again now, under the same webhook-id; 202 with the delivery."""
    delivery = _deliveries(services).redeliver(ctx, webhook_id, delivery_id)
    services.dispatcher.wake()
    return raw(delivery, status=202)


router = Router(
    path="/webhooks",
    route_handlers=[list_deliveries, get_delivery, redeliver],
    tags=["webhooks"],
)
