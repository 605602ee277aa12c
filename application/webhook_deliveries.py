"""The deliveries of a webhook endpoint, as its tenant sees them: list, read (with every
attempt), redeliver.

Deliveries are the outbox's operational record, not business events: redelivering changes the
delivery (due now, the retry schedule starting over), not the event log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from application.context import Context
from application.errors import InvalidRequest, NotFound
from application.event_log import EventLog
from application.ports import Clock
from application.queries import Page, check_limit, decode_cursor
from application.webhook_delivery import STATUSES
from domain.webhook import DELETED, WebhookEndpoint

PERMISSION = "webhook:manage"


class DeliveryReadModel(Protocol):
    def list(
        self, tenant_id: UUID, endpoint_id: UUID, status: str | None, *, limit: int, after: int
    ) -> Page: ...

    def get(self, tenant_id: UUID, endpoint_id: UUID, delivery_id: UUID) -> msgspec.Raw | None:
        """The delivery with its message and every attempt."""
        ...

    def redeliver(
        self, tenant_id: UUID, endpoint_id: UUID, delivery_id: UUID, now: datetime
    ) -> bool:
        """Make the delivery due at `now`; False when there is no such delivery."""
        ...


class WebhookDeliveries:
    def __init__(self, deliveries: DeliveryReadModel, log: EventLog, clock: Clock) -> None:
        self._deliveries = deliveries
        self._log = log
        self._clock = clock

    def list(
        self,
        ctx: Context,
        endpoint_id: UUID,
        *,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        tenant_id = self._endpoint_of(ctx, endpoint_id)
        if status is not None and status not in STATUSES:
            raise InvalidRequest("status", f"must be one of {', '.join(STATUSES)}")
        return self._deliveries.list(
            tenant_id, endpoint_id, status, limit=check_limit(limit), after=decode_cursor(cursor)
        )

    def get(self, ctx: Context, endpoint_id: UUID, delivery_id: UUID) -> msgspec.Raw:
        tenant_id = self._endpoint_of(ctx, endpoint_id)
        found = self._deliveries.get(tenant_id, endpoint_id, delivery_id)
        if found is None:
            raise NotFound("delivery", delivery_id)
        return found

    def redeliver(self, ctx: Context, endpoint_id: UUID, delivery_id: UUID) -> msgspec.Raw:
        """Send the delivery again now, under the same webhook-id (a disabled endpoint too:
        the client asks for it, as it may ping one)."""
        tenant_id = self._endpoint_of(ctx, endpoint_id)
        if not self._deliveries.redeliver(tenant_id, endpoint_id, delivery_id, self._clock.now()):
            raise NotFound("delivery", delivery_id)
        return self.get(ctx, endpoint_id, delivery_id)

    def _endpoint_of(self, ctx: Context, endpoint_id: UUID) -> UUID:
        """The caller's tenant, once the endpoint is known to be one of its own (from the log,
        so an endpoint created a moment ago is found)."""
        ctx.require(PERMISSION)
        tenant_id = ctx.require_tenant()
        endpoint = self._log.load(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.tenant_id != tenant_id or endpoint.status == DELETED:
            raise NotFound("webhook", endpoint_id)
        return tenant_id
