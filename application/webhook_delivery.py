"""Delivering webhook messages (Standard Webhooks): how a message is signed, how the outcome of
an attempt decides what happens next, and the ports the dispatcher works through.

Everything here is pure (time and randomness are passed in), so it is tested with properties;
the dispatcher (application/webhook_dispatcher.py) does the I/O.

- `webhook-id` is stable for a delivery: a consumer that sees an id twice has seen a retry (or
  a redelivery) of the same message, and may ignore it.
- `webhook-signature` is `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being
  the base64 after `whsec_`; while a rotated secret overlaps, one signature per secret,
  space-separated, the current one first.
- After the n-th failed attempt in a row the next waits `schedule[n-1]` seconds plus up to 10%
  jitter (so endpoints that failed together do not all retry in the same instant); once the
  schedule is used up the delivery has failed. A 429 or 503 with Retry-After waits at least as
  long as asked (capped at a day). A 410 Gone fails the delivery at once and disables the
  endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol
from uuid import UUID

import msgspec

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (PENDING, SUCCEEDED, FAILED, CANCELLED)

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
USER_AGENT = "workledger-webhooks/1.0"
JITTER = 0.10  # the most a retry is delayed beyond its scheduled wait, as a share of it
MAX_RETRY_AFTER = 24 * 3600.0  # a consumer may ask us to wait, but not forever
MAX_RESPONSE_BODY = 1024  # bytes of a consumer's answer kept with the attempt
GONE = 410
ASKS_TO_WAIT = frozenset({429, 503})


# -- signing ------------------------------------------------------------------------------


def message_id(delivery_id: UUID) -> str:
    """The `webhook-id` of a delivery: the same on every attempt and redelivery."""
    return f"msg_{delivery_id.hex}"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per secret, space-separated, in order."""
    if not secrets:
        raise ValueError("a message needs at least one signing secret")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def signing_secret_ids(
    current: UUID, previous: UUID | None, previous_valid_until: datetime | None, now: datetime
) -> list[UUID]:
    """The secrets that sign a message sent at `now`: the current one, then the previous one
    while its overlap lasts (as WebhookEndpoint.signing_secret_ids)."""
    ids = [current]
    if previous is not None and previous_valid_until is not None and now < previous_valid_until:
        ids.append(previous)
    return ids


def headers_for(
    msg_id: str, timestamp: int, signature: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every header of a message."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        **(extra or {}),
    }


# -- outcomes -----------------------------------------------------------------------------


class SendResult(msgspec.Struct, frozen=True):
    """What one attempt to send met: an HTTP answer (status, the start of its body, its
    Retry-After), or an error before any answer (refused target, timeout, connection)."""

    duration_ms: int
    status: int | None = None
    body: str | None = None
    retry_after: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Decision(msgspec.Struct, frozen=True):
    """What a delivery becomes after an attempt."""

    status: str  # PENDING (to retry at next_attempt_at), SUCCEEDED or FAILED
    next_attempt_at: datetime | None = None
    reason: str | None = None  # why it failed
    disable_endpoint: str | None = None  # the reason to disable the endpoint, when it should be


def retry_delay(failures: int, schedule: Sequence[float], jitter: float) -> float | None:
    """Seconds to wait after the `failures`-th failed attempt in a row, or None when the
    schedule is used up. `jitter` in [0, 1) stretches the wait by up to JITTER of it."""
    if failures < 1:
        raise ValueError("a retry follows at least one failure")
    if failures > len(schedule):
        return None
    return float(schedule[failures - 1]) * (1 + JITTER * min(max(jitter, 0.0), 1.0))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date), capped at
    MAX_RETRY_AFTER; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    # ASCII digits only (RFC 9110 delay-seconds): str.isdigit() also takes "²", which int()
    # refuses, and a consumer may send thousands of digits, more than int() reads. Either
    # raising would leave the attempt unrecorded and the delivery resent after every lease.
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        return MAX_RETRY_AFTER if len(digits) > 9 else min(float(digits), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def decide(
    result: SendResult,
    failures: int,
    schedule: Sequence[float],
    now: datetime,
    jitter: float,
) -> Decision:
    """The delivery's next state after an attempt. `failures` counts the failed attempts in a
    row, this one included when it failed (a redelivery starts the count again)."""
    if result.succeeded:
        return Decision(SUCCEEDED)
    if result.status == GONE:
        reason = "the endpoint answered 410 Gone"
        return Decision(FAILED, reason=reason, disable_endpoint=reason)
    delay = retry_delay(failures, schedule, jitter)
    if delay is None:
        return Decision(FAILED, reason=f"no success in {failures} attempts")
    if result.status in ASKS_TO_WAIT:
        asked = parse_retry_after(result.retry_after, now)
        if asked is not None:
            delay = max(delay, asked)
    return Decision(PENDING, next_attempt_at=now + timedelta(seconds=delay))


def failing_for_too_long(
    now: datetime, failing_since: datetime | None, disable_after: timedelta
) -> bool:
    """Whether an endpoint whose delivery just failed for good has been failing long enough
    to disable: every attempt since `failing_since` (its first failure after its last success
    or re-enabling) failed."""
    return failing_since is not None and now - failing_since >= disable_after


# -- ports --------------------------------------------------------------------------------


class ClaimedDelivery(msgspec.Struct, frozen=True):
    """A due delivery leased to one dispatcher, with what sending it needs."""

    lease: str  # the claim's own token: whoever holds it decides what the attempt leads to
    delivery_id: UUID
    tenant_id: UUID
    endpoint_id: UUID
    url: str
    body: bytes
    secret_id: UUID
    previous_secret_id: UUID | None
    previous_valid_until: datetime | None


class AttemptRecord(msgspec.Struct, frozen=True):
    at: datetime
    duration_ms: int
    response_status: int | None
    response_body: str | None
    error: str | None


@dataclass(frozen=True)
class Outcome:
    """An attempt to record, and how to decide what follows from the number of failures in
    a row it makes (known only once the delivery is read under lock)."""

    delivery_id: UUID
    lease: str
    attempt: AttemptRecord
    decide: Callable[[int], Decision]


class Finished(msgspec.Struct, frozen=True):
    """An attempt as recorded: its number, and the decision taken (None when the lease had
    passed to someone else, or the delivery was cancelled meanwhile: then it is not ours to
    decide)."""

    delivery_id: UUID
    endpoint_id: UUID
    attempt: int
    decision: Decision | None


class DeliveryQueue(Protocol):
    """The outbox's deliveries as the dispatcher sees them."""

    def claim(
        self, now: datetime, lease_until: datetime, limit: int, lease: str
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries (pending, next attempt at or before `now`) until
        `lease_until`, under the token `lease` (new for each claim): no other dispatcher takes
        them meanwhile, and should this one die they are due again when the lease runs out."""
        ...

    def finish(self, outcomes: Sequence[Outcome]) -> list[Finished]:
        """Record attempts (in one transaction) and, for each delivery still leased under the
        outcome's lease, apply its `decide(failures in a row)`. Returns them in order."""
        ...

    def failing_since(self, endpoint_id: UUID) -> datetime | None:
        """When the endpoint's current run of failures began: its first failed attempt after
        its last success and its last (re-)enabling (None when there is none)."""
        ...


class WebhookSender(Protocol):
    """Sends one message over HTTP; opened inside the event loop that uses it."""

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult:
        """POST `body`; never raises for what the network or the consumer does."""
        ...

    async def close(self) -> None: ...
