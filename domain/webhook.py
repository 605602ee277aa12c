"""WebhookEndpoint: where a tenant wants its events sent, and which ones.

An endpoint is created enabled, with a signing secret. Secrets never enter the event log (it is
kept forever and shown to auditors): events name a secret by its id, and the secret itself sits
in the webhook secret store. Rotating gives a new secret; the previous one keeps signing beside
it until `previous_valid_until`, so consumers can switch without dropping a message.

The dispatcher disables an endpoint that answers 410 Gone or has failed for days; a client may
enable it again. A deleted endpoint is gone: it accepts no further commands.

Whether a URL's host resolves to a private address is a question for the network, so the
application asks it; the domain checks the URL's shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain import values
from domain.errors import IllegalTransition, InvalidValue
from domain.events import TenantEvent

ENABLED = "enabled"
DISABLED = "disabled"
DELETED = "deleted"

# API.md, "Webhooks (outbound)": the event types clients may subscribe to. Each is declared by
# the domain events that carry it (their `webhook` ClassVar); tests/unit/test_webhook_names.py
# checks the two agree.
PUBLIC_EVENT_TYPES = frozenset(
    {
        "tenant.created",
        "tenant.updated",
        "tenant.suspended",
        "tenant.reactivated",
        "tenant.closed",
        "person.created",
        "person.updated",
        "person.deactivated",
        "person.reactivated",
        "person.photo.approved",
        "person.unit.assigned",
        "person.unit.removed",
        "customer.created",
        "customer.updated",
        "engagement.created",
        "engagement.updated",
        "engagement.activated",
        "engagement.completed",
        "engagement.cancelled",
        "milestone.completed",
        "task.completed",
        "invoice.created",
        "invoice.issued",
        "invoice.paid",
        "invoice.voided",
        "payment.received",
    }
)
ALL_EVENTS = "*"
# Sent only to the endpoint a client pings (POST /webhooks/{id}/test), whatever its filter.
TEST_EVENT = "webhook.test"
MAX_URL_LENGTH = 2000
MAX_FILTERS = 100


def webhook_url(field: str, value: str) -> str:
    """An absolute http(s) URL with a host and no credentials in it."""
    text = values.required_text(field, value, MAX_URL_LENGTH)
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        raise InvalidValue(field, "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidValue(field, "must be an http:// or https:// URL")
    if not parts.hostname:
        raise InvalidValue(field, "must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidValue(field, "must not carry credentials; the signature authenticates us")
    if any(c.isspace() for c in text):
        raise InvalidValue(field, "must not contain white space")
    del port
    return text


def event_filter(field: str, types: list[str], known: frozenset[str]) -> list[str]:
    """The event types an endpoint subscribes to: known public types, or just `*` for all.

    Duplicates are dropped; the order given is kept."""
    if not types:
        raise InvalidValue(field, 'must name at least one event type, or "*" for all')
    if len(types) > MAX_FILTERS:
        raise InvalidValue(field, f"must name at most {MAX_FILTERS} event types")
    chosen: list[str] = []
    for value in types:
        name = value.strip()
        if name != ALL_EVENTS and name not in known:
            raise InvalidValue(field, f"{value!r} is not a webhook event type")
        if name not in chosen:
            chosen.append(name)
    if ALL_EVENTS in chosen and len(chosen) > 1:
        raise InvalidValue(field, '"*" already means every event type; send it alone')
    return chosen


def delivery_id(endpoint_id: UUID, event_id: UUID, event_version: int) -> UUID:
    """The id of the delivery of one event (an aggregate's event, by id and version) to one
    endpoint: the same however often the outbox meets the event, so it is made once."""
    return uuid5(endpoint_id, f"{event_id}:{event_version}")


def matches(filters: list[str] | tuple[str, ...], event_type: str) -> bool:
    """Whether an endpoint with these filters receives events of `event_type`."""
    return ALL_EVENTS in filters or event_type in filters


class WebhookEndpoint(Aggregate):
    TOPIC = "workledger:WebhookEndpoint"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:WebhookEndpointCreated"
        url: str
        events: list[str]
        description: str | None
        secret_id: UUID

    class Updated(Event):
        """Carries the whole configuration after the change, and which fields changed."""

        TOPIC = "workledger:WebhookEndpointUpdated"
        url: str
        events: list[str]
        description: str | None
        changed_fields: list[str]

        def apply(self, aggregate: WebhookEndpoint) -> None:
            aggregate.url = self.url
            aggregate.events = list(self.events)
            aggregate.description = self.description

    class SecretRotated(Event):
        TOPIC = "workledger:WebhookEndpointSecretRotated"
        secret_id: UUID
        previous_secret_id: UUID
        previous_valid_until: datetime

        def apply(self, aggregate: WebhookEndpoint) -> None:
            aggregate.previous_secret_id = aggregate.secret_id
            aggregate.previous_valid_until = self.previous_valid_until
            aggregate.secret_id = self.secret_id

    class Disabled(Event):
        TOPIC = "workledger:WebhookEndpointDisabled"
        reason: str

        def apply(self, aggregate: WebhookEndpoint) -> None:
            aggregate.status = DISABLED
            aggregate.disabled_reason = self.reason

    class Enabled(Event):
        TOPIC = "workledger:WebhookEndpointEnabled"

        def apply(self, aggregate: WebhookEndpoint) -> None:
            aggregate.status = ENABLED
            aggregate.disabled_reason = None

    class Deleted(Event):
        TOPIC = "workledger:WebhookEndpointDeleted"

        def apply(self, aggregate: WebhookEndpoint) -> None:
            aggregate.status = DELETED

    class Pinged(Event):
        """A client asked for a test message; the outbox turns it into one delivery of type
        `webhook.test` to this endpoint alone."""

        TOPIC = "workledger:WebhookEndpointPinged"
        ping_id: UUID

    def __init__(
        self,
        tenant_id: UUID,
        url: str,
        events: list[str],
        description: str | None,
        secret_id: UUID,
    ) -> None:
        self.tenant_id = tenant_id
        self.url = url
        self.events = list(events)
        self.description = description
        self.secret_id = secret_id
        self.previous_secret_id: UUID | None = None
        self.previous_valid_until: datetime | None = None
        self.status = ENABLED
        self.disabled_reason: str | None = None

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def register(
        cls,
        *,
        endpoint_id: UUID,
        tenant_id: UUID,
        url: str,
        events: list[str],
        description: str | None,
        secret_id: UUID,
        known_events: frozenset[str],
        at: datetime,
    ) -> WebhookEndpoint:
        """A new, enabled endpoint (its URL's shape checked; its target is the caller's)."""
        return cls._create(
            cls.Created,
            id=endpoint_id,
            tenant_id=tenant_id,
            url=webhook_url("url", url),
            events=event_filter("events", events, known_events),
            description=values.optional_text("description", description, 500),
            secret_id=secret_id,
            timestamp=at,
        )

    def update(
        self,
        *,
        url: str,
        events: list[str],
        description: str | None,
        known_events: frozenset[str],
        at: datetime,
    ) -> list[str]:
        """Replace the configuration; records only real changes and returns what changed."""
        self._refuse_if_deleted("update")
        new: dict[str, Any] = {
            "url": webhook_url("url", url),
            "events": event_filter("events", events, known_events),
            "description": values.optional_text("description", description, 500),
        }
        changed = [name for name, value in new.items() if getattr(self, name) != value]
        if changed:
            self.trigger_event(
                self.Updated,
                tenant_id=self.tenant_id,
                timestamp=at,
                changed_fields=changed,
                **new,
            )
        return changed

    def rotate_secret(
        self, *, secret_id: UUID, previous_valid_until: datetime, at: datetime
    ) -> None:
        """Sign with a new secret from now on; the current one also signs until
        `previous_valid_until`."""
        self._refuse_if_deleted("rotate the secret of")
        if secret_id in (self.secret_id, self.previous_secret_id):
            raise ValueError("a rotated secret must be new")  # a caller's bug
        self.trigger_event(
            self.SecretRotated,
            tenant_id=self.tenant_id,
            timestamp=at,
            secret_id=secret_id,
            previous_secret_id=self.secret_id,
            previous_valid_until=previous_valid_until,
        )

    def disable(self, *, reason: str, at: datetime) -> bool:
        """Stop deliveries. False (and nothing recorded) when it is disabled already."""
        self._refuse_if_deleted("disable")
        if self.status == DISABLED:
            return False
        self.trigger_event(
            self.Disabled,
            tenant_id=self.tenant_id,
            timestamp=at,
            reason=values.required_text("reason", reason, 500),
        )
        return True

    def enable(self, *, at: datetime) -> bool:
        """Deliver again. False (and nothing recorded) when it is enabled already."""
        self._refuse_if_deleted("enable")
        if self.status == ENABLED:
            return False
        self.trigger_event(self.Enabled, tenant_id=self.tenant_id, timestamp=at)
        return True

    def delete(self, *, at: datetime) -> None:
        self._refuse_if_deleted("delete")
        self.trigger_event(self.Deleted, tenant_id=self.tenant_id, timestamp=at)

    def ping(self, *, ping_id: UUID, at: datetime) -> None:
        """Ask for a test message. A disabled endpoint is pinged too: that is how a client
        checks it is fit to enable again."""
        self._refuse_if_deleted("ping")
        self.trigger_event(self.Pinged, tenant_id=self.tenant_id, timestamp=at, ping_id=ping_id)

    # -- queries --------------------------------------------------------------------------

    def signing_secret_ids(self, now: datetime) -> list[UUID]:
        """The secrets that sign a message sent at `now`: the current one first, then the
        previous one while its overlap lasts."""
        ids = [self.secret_id]
        if (
            self.previous_secret_id is not None
            and self.previous_valid_until is not None
            and now < self.previous_valid_until
        ):
            ids.append(self.previous_secret_id)
        return ids

    def _refuse_if_deleted(self, action: str) -> None:
        if self.status == DELETED:
            raise IllegalTransition("webhook endpoint", action, DELETED)
