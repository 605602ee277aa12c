"""Webhook endpoint use cases: where a tenant's events are sent, with which signing secret; the
read port and query service for them.

Secrets are made here, from the Entropy port, in the Standard Webhooks format (`whsec_` and the
base64 of 24 random bytes), and stored with the WebhookSecrets port before the event that names
them is recorded: a secret whose event never made it is an orphan nobody refers to, while an
event naming a missing secret would leave an endpoint that cannot sign. Every call, reads
included, needs `webhook:manage`: an endpoint's URL and filters say where a tenant's data goes.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import msgspec

from application.claims import retry_once
from application.commands import Command
from application.context import Context
from application.errors import LimitReached, NotFound
from application.event_log import EventLog
from application.ports import Clock, Entropy, IdGenerator, WebhookSecrets, WebhookTargets
from application.queries import Document, Page, check_limit, decode_cursor
from application.results import Written
from application.tenancy import active_tenant
from application.webhook_delivery import SECRET_PREFIX
from domain.webhook import DELETED, PUBLIC_EVENT_TYPES, WebhookEndpoint, delivery_id

PERMISSION = "webhook:manage"
SECRET_BYTES = 24  # 192 bits, as Svix makes them
# Endpoints per tenant: every event is sent to each matching one, so without a cap one write
# could fan out into thousands of requests at whatever target a tenant names (Stripe caps at 16).
# A soft cap, counted on the read model: two creates racing at the edge may both land.
MAX_ENDPOINTS = 50
# How long the secret a rotation replaces keeps signing beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret(entropy: Entropy) -> str:
    """A fresh signing secret: `whsec_` + base64 of random bytes (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(entropy.token_bytes(SECRET_BYTES)).decode()


class CreateWebhook(Command):
    url: str
    events: list[str]
    description: str | None = None


class UpdateWebhook(Command):
    """A full replacement (PUT) of the configuration: an absent description is cleared, as
    `null` is. `enabled` is the one exception: absent (or null) leaves the status as it is."""

    url: str
    events: list[str]
    description: str | None = None
    enabled: bool | None = None


class WebhookCreated(msgspec.Struct, frozen=True):
    """A new endpoint, and its secret (shown to the client this once)."""

    written: Written
    secret: str


class SecretRotated(msgspec.Struct, frozen=True):
    """The endpoint's new secret, and until when the one it replaced still signs."""

    written: Written
    secret: str
    previous_valid_until: datetime


class Pinged(msgspec.Struct, frozen=True):
    """A test message was asked for: the ping's id, and the id of the delivery that carries it
    (made by the outbox from the Pinged event)."""

    written: Written
    ping_id: UUID
    delivery_id: UUID


class WebhookCommands:
    def __init__(
        self,
        log: EventLog,
        clock: Clock,
        ids: IdGenerator,
        entropy: Entropy,
        secrets: WebhookSecrets,
        targets: WebhookTargets,
        endpoints: WebhookReadModel,
    ) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids
        self._entropy = entropy
        self._secrets = secrets
        self._targets = targets
        self._endpoints = endpoints

    def create(self, ctx: Context, cmd: CreateWebhook) -> WebhookCreated:
        ctx.require(PERMISSION)
        tenant = active_tenant(self._log, ctx)
        if self._endpoints.list(tenant.id, limit=1, after=0).total >= MAX_ENDPOINTS:
            raise LimitReached(
                f"a tenant may have at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
            )
        secret_id = self._ids.new_id()
        endpoint = WebhookEndpoint.register(
            endpoint_id=self._ids.new_id(),
            tenant_id=tenant.id,
            url=cmd.url,
            events=cmd.events,
            description=cmd.description,
            secret_id=secret_id,
            known_events=PUBLIC_EVENT_TYPES,
            at=self._clock.now(),
        )
        # The shape first (no network for a malformed URL), then where it points.
        self._targets.check("url", endpoint.url)
        secret = new_secret(self._entropy)
        self._secrets.put(tenant.id, secret_id, secret)
        position = self._log.record(endpoint, meta=ctx.meta)
        written = Written(id=endpoint.id, version=endpoint.version, position=position, created=True)
        return WebhookCreated(written=written, secret=secret)

    def update(
        self, ctx: Context, endpoint_id: UUID, cmd: UpdateWebhook, if_match: int | None
    ) -> Written:
        ctx.require(PERMISSION)

        def run() -> Written:
            endpoint = self._endpoint(ctx, endpoint_id, if_match)
            now = self._clock.now()
            changed = endpoint.update(
                url=cmd.url,
                events=cmd.events,
                description=cmd.description,
                known_events=PUBLIC_EVENT_TYPES,
                at=now,
            )
            if "url" in changed:  # an unchanged URL was checked when it was set
                self._targets.check("url", endpoint.url)
            if cmd.enabled is True:
                endpoint.enable(at=now)
            elif cmd.enabled is False:
                endpoint.disable(reason=f"disabled by {ctx.principal.actor}", at=now)
            return self._save(ctx, endpoint)

        return retry_once(run)

    def delete(self, ctx: Context, endpoint_id: UUID, if_match: int | None) -> Written:
        ctx.require(PERMISSION)

        def run() -> Written:
            endpoint = self._endpoint(ctx, endpoint_id, if_match)
            endpoint.delete(at=self._clock.now())
            return self._save(ctx, endpoint)

        return retry_once(run)

    def rotate_secret(self, ctx: Context, endpoint_id: UUID) -> SecretRotated:
        ctx.require(PERMISSION)

        def run() -> SecretRotated:
            endpoint = self._endpoint(ctx, endpoint_id, None)
            now = self._clock.now()
            secret_id, secret = self._ids.new_id(), new_secret(self._entropy)
            # Whole milliseconds: the instant the client is told is exactly the one kept.
            until = now + ROTATION_OVERLAP
            until = until.replace(microsecond=until.microsecond // 1000 * 1000)
            self._secrets.put(endpoint.tenant_id, secret_id, secret)
            endpoint.rotate_secret(secret_id=secret_id, previous_valid_until=until, at=now)
            written = self._save(ctx, endpoint)
            return SecretRotated(written=written, secret=secret, previous_valid_until=until)

        return retry_once(run)

    def ping(self, ctx: Context, endpoint_id: UUID) -> Pinged:
        ctx.require(PERMISSION)

        def run() -> Pinged:
            endpoint = self._endpoint(ctx, endpoint_id, None)
            ping_id = self._ids.new_id()
            endpoint.ping(ping_id=ping_id, at=self._clock.now())
            written = self._save(ctx, endpoint)
            # The Pinged event is the endpoint's own, at the version just written.
            delivery = delivery_id(endpoint.id, endpoint.id, written.version)
            return Pinged(written=written, ping_id=ping_id, delivery_id=delivery)

        return retry_once(run)

    # -- helpers --------------------------------------------------------------------------

    def _endpoint(self, ctx: Context, endpoint_id: UUID, if_match: int | None) -> WebhookEndpoint:
        """The caller's endpoint; another tenant's, or a deleted one, is not found."""
        tenant = active_tenant(self._log, ctx)
        endpoint = self._log.load(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.tenant_id != tenant.id or endpoint.status == DELETED:
            raise NotFound("webhook", endpoint_id)
        self._log.check_version(endpoint, if_match)
        return endpoint

    def _save(self, ctx: Context, endpoint: WebhookEndpoint) -> Written:
        position = self._log.record(endpoint, meta=ctx.meta)
        return Written(id=endpoint.id, version=endpoint.version, position=position)


# -- the read side --------------------------------------------------------------------------


class WebhookReadModel(Protocol):
    def get(self, tenant_id: UUID, endpoint_id: UUID) -> Document | None:
        """An endpoint's representation (None when there is none, or it was deleted)."""
        ...

    def list(self, tenant_id: UUID, *, limit: int, after: int) -> Page:
        """The tenant's endpoints in creation order, deleted ones left out."""
        ...


class WebhookQueries:
    def __init__(self, webhooks: WebhookReadModel) -> None:
        self._webhooks = webhooks

    def get(self, ctx: Context, endpoint_id: UUID) -> Document:
        ctx.require(PERMISSION)
        document = self._webhooks.get(ctx.require_tenant(), endpoint_id)
        if document is None:
            raise NotFound("webhook", endpoint_id)
        return document

    def list(self, ctx: Context, *, limit: int, cursor: str | None) -> Page:
        ctx.require(PERMISSION)
        return self._webhooks.list(
            ctx.require_tenant(), limit=check_limit(limit), after=decode_cursor(cursor)
        )
