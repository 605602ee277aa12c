"""The pure rules of webhook delivery: Standard Webhooks signatures (checked against the
independent `standardwebhooks` implementation), the retry schedule and its jitter, Retry-After,
and what an attempt's outcome makes of a delivery."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from application.webhook_delivery import (
    FAILED,
    JITTER,
    MAX_RETRY_AFTER,
    PENDING,
    SUCCEEDED,
    SendResult,
    decide,
    failing_for_too_long,
    headers_for,
    message_id,
    parse_retry_after,
    retry_delay,
    secret_key,
    sign,
    signature_header,
    signing_secret_ids,
)
from domain.webhook import PUBLIC_EVENT_TYPES, WebhookEndpoint

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
secrets = st.binary(min_size=1, max_size=64).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)
schedules = st.lists(
    st.floats(min_value=0, max_value=36000, allow_nan=False), min_size=1, max_size=10
).map(tuple)
jitters = st.floats(min_value=0, max_value=1, exclude_max=True)


@given(secret=secrets, body=st.text(max_size=2000), timestamp=st.integers(0, 2**33))
def test_signatures_are_the_standard_webhooks_ones(secret: str, body: str, timestamp: int) -> None:
    msg_id = message_id(uuid.uuid4())
    # standardwebhooks signs the body as text (UTF-8): our messages are UTF-8 JSON.
    theirs = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)
    assert sign(secret, msg_id, timestamp, body.encode()) == theirs


@given(body=st.text(max_size=500).map(str.encode), keys=st.lists(secrets, min_size=1, max_size=3))
def test_every_secret_in_the_header_verifies_independently(body: bytes, keys: list[str]) -> None:
    msg_id = message_id(uuid.uuid4())
    timestamp = int(datetime.now(UTC).timestamp())
    header = signature_header(keys, msg_id, timestamp, body)
    assert len(header.split(" ")) == len(keys)
    headers = headers_for(msg_id, timestamp, header)
    for key in keys:
        Webhook(key).verify(body, headers, json_parse=False)
    stranger = "whsec_" + base64.b64encode(b"not one of them at all").decode()
    if stranger not in keys:
        with pytest.raises(WebhookVerificationError):
            Webhook(stranger).verify(body, headers, json_parse=False)


def test_a_tampered_body_or_timestamp_fails_verification() -> None:
    key = "whsec_" + base64.b64encode(b"k" * 24).decode()
    msg_id, now = message_id(uuid.uuid4()), int(datetime.now(UTC).timestamp())
    headers = headers_for(msg_id, now, signature_header([key], msg_id, now, b'{"a":1}'))
    Webhook(key).verify(b'{"a":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(key).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(key).verify(b'{"a":1}', {**headers, "webhook-timestamp": str(now + 1)})


def test_message_ids_are_stable_and_prefixed() -> None:
    delivery = uuid.uuid4()
    assert message_id(delivery) == message_id(delivery) == f"msg_{delivery.hex}"
    assert re.fullmatch(r"msg_[0-9a-f]{32}", message_id(delivery))


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!", "whsec_abc$"])
def test_unusable_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        secret_key(secret)
    with pytest.raises(ValueError, match="at least one"):
        signature_header([], "msg_x", 0, b"")


@given(key=st.binary(min_size=1, max_size=64))
def test_secret_keys_decode_with_or_without_padding(key: bytes) -> None:
    encoded = base64.b64encode(key).decode()
    assert secret_key("whsec_" + encoded) == key
    assert secret_key("whsec_" + encoded.rstrip("=")) == key


# -- the schedule ----------------------------------------------------------------------------


@given(schedule=schedules, failures=st.integers(1, 12), jitter=jitters)
def test_retry_waits_follow_the_schedule_within_the_jitter(
    schedule: tuple[float, ...], failures: int, jitter: float
) -> None:
    delay = retry_delay(failures, schedule, jitter)
    if failures > len(schedule):
        assert delay is None
        return
    base = schedule[failures - 1]
    assert delay is not None
    assert base <= delay <= base * (1 + JITTER) + 1e-9


@given(schedule=schedules, failures=st.integers(1, 10), a=jitters, b=jitters)
def test_more_jitter_never_means_a_shorter_wait(
    schedule: tuple[float, ...], failures: int, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert (retry_delay(failures, schedule, low) or 0) <= (
        retry_delay(failures, schedule, high) or 0
    )


def test_the_default_schedule_is_the_standard_webhooks_one() -> None:
    from adapters.settings import DEFAULT_RETRY_SCHEDULE

    waits = [retry_delay(n, DEFAULT_RETRY_SCHEDULE, 0.0) for n in range(1, 9)]
    assert waits == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    with pytest.raises(ValueError, match="at least one failure"):
        retry_delay(0, DEFAULT_RETRY_SCHEDULE, 0.0)


# -- Retry-After -----------------------------------------------------------------------------


@given(seconds=st.integers(0, 10**9))
def test_retry_after_in_seconds_is_capped(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == min(seconds, MAX_RETRY_AFTER)


@given(offset=st.integers(-(10**6), 10**6))
def test_retry_after_as_an_http_date(offset: int) -> None:
    when = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(when, NOW) == min(max(offset, 0), MAX_RETRY_AFTER)


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026", "\u00b2", "\u0661\u0662"]
)
def test_unreadable_retry_after_is_ignored(value: str | None) -> None:
    """Delay-seconds are ASCII digits (RFC 9110); other characters Python calls digits are not."""
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("digits", [5000, 30])
def test_a_retry_after_too_long_to_read_waits_the_cap(digits: int) -> None:
    assert parse_retry_after("7" * digits, NOW) == MAX_RETRY_AFTER
    assert parse_retry_after("0" * digits + "5", NOW) == 5


@given(value=st.text(max_size=60) | st.from_regex(r"\A[0-9]{0,5000}\Z"))
def test_whatever_a_consumer_sends_as_retry_after_is_read_or_ignored(value: str) -> None:
    """A consumer's header never stops an attempt being recorded (an exception here did: the
    delivery was resent after every lease, unrecorded, for ever)."""
    wait = parse_retry_after(value, NOW)
    assert wait is None or 0 <= wait <= MAX_RETRY_AFTER


# -- decisions -------------------------------------------------------------------------------

statuses = st.one_of(st.none(), st.integers(100, 599))


@given(status=statuses, failures=st.integers(1, 10), schedule=schedules, jitter=jitters)
def test_what_an_attempt_makes_of_a_delivery(
    status: int | None, failures: int, schedule: tuple[float, ...], jitter: float
) -> None:
    result = SendResult(duration_ms=3, status=status, error=None if status else "refused")
    decision = decide(result, failures, schedule, NOW, jitter)
    if status is not None and 200 <= status < 300:
        assert decision.status == SUCCEEDED
        assert decision.next_attempt_at is None
        assert decision.disable_endpoint is None
    elif status == 410:
        assert decision.status == FAILED
        assert decision.disable_endpoint == "the endpoint answered 410 Gone"
    elif failures > len(schedule):
        assert decision.status == FAILED
        assert decision.reason == f"no success in {failures} attempts"
        assert decision.disable_endpoint is None
    else:
        assert decision.status == PENDING
        assert decision.next_attempt_at is not None
        wait = (decision.next_attempt_at - NOW).total_seconds()
        base = schedule[failures - 1]
        assert base - 1e-5 <= wait <= base * (1 + JITTER) + 1e-5


@given(
    status=st.sampled_from([429, 503, 500]),
    asked=st.integers(0, 100_000),
    schedule=schedules,
    jitter=jitters,
)
def test_retry_after_is_honoured_on_429_and_503(
    status: int, asked: int, schedule: tuple[float, ...], jitter: float
) -> None:
    result = SendResult(duration_ms=1, status=status, retry_after=str(asked))
    decision = decide(result, 1, schedule, NOW, jitter)
    assert decision.next_attempt_at is not None
    wait = (decision.next_attempt_at - NOW).total_seconds()
    scheduled = retry_delay(1, schedule, jitter)
    assert scheduled is not None
    if status == 500:  # only throttling answers are listened to
        assert wait == pytest.approx(scheduled, abs=1e-5)
    else:
        assert wait == pytest.approx(max(scheduled, min(asked, MAX_RETRY_AFTER)), abs=1e-5)


def test_sustained_failure_is_measured_from_the_last_success() -> None:
    five_days = timedelta(days=5)
    assert failing_for_too_long(NOW, NOW - timedelta(days=6), five_days)
    assert failing_for_too_long(NOW, NOW - five_days, five_days)
    assert not failing_for_too_long(NOW, NOW - timedelta(days=4), five_days)
    assert not failing_for_too_long(NOW, None, five_days)


@given(
    overlap=st.integers(-100, 100),
    rotated=st.booleans(),
)
def test_signing_secrets_agree_with_the_aggregate(overlap: int, rotated: bool) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    endpoint = WebhookEndpoint.register(
        endpoint_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        url="https://example.com/hook",
        events=["*"],
        description=None,
        secret_id=first,
        known_events=PUBLIC_EVENT_TYPES,
        at=NOW,
    )
    if rotated:
        endpoint.rotate_secret(
            secret_id=second, previous_valid_until=NOW + timedelta(seconds=overlap), at=NOW
        )
    ours = signing_secret_ids(
        endpoint.secret_id, endpoint.previous_secret_id, endpoint.previous_valid_until, NOW
    )
    assert ours == endpoint.signing_secret_ids(NOW)
    assert ours[0] == (second if rotated else first)
