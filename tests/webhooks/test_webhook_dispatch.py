"""The dispatcher against real consumers on 127.0.0.1, on SQLite and PostgreSQL: signed Standard
Webhooks messages (verified with the independent `standardwebhooks` package), retries,
Retry-After, 410 and sustained failure disabling the endpoint, the private-address check at
send time, rotated secrets, tenant separation."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.system import SystemClock
from adapters.webhook_sender import AiohttpWebhookSender
from application.ports import WebhookSecrets
from application.webhook_dispatcher import Dispatcher
from domain.webhook import DISABLED, WebhookEndpoint
from entrypoints.container import Services
from projections.webhook_deliveries import SqlDeliveries
from tests.conftest import Api
from tests.webhooks.consumers import (
    Answer,
    Received,
    change_endpoint,
    consumer,
    deliver_until,
    deliveries,
    new_secret,
    register_endpoint,
)


def admin(api: Api, tenant_id: str) -> dict[str, str]:
    return api.as_("customer-admin", tenant=tenant_id)


def attempts_of(services: Services, delivery_id: str) -> list[tuple[Any, ...]]:
    return services.db.query(
        "SELECT attempt, response_status, error, response_body FROM webhook_attempts"
        " WHERE delivery_id = ? ORDER BY attempt",
        (delivery_id,),
    )


def test_an_event_reaches_its_endpoint_signed_with_the_audit_data_and_the_resource(
    webhook_api: Api,
) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer() as hook:
        endpoint = register_endpoint(services, tenant_id, hook.url, ["person.created"])
        person = webhook_api.hire(tenant_id)
        finished = services.dispatcher.run_once()
        assert len(finished) == 1
        (message,) = hook.wait_for(1)

    payload = message.verify(endpoint.secret)  # raises unless a signature checks out
    row = deliveries(services, endpoint.endpoint_id)[0]
    assert message.msg_id == "msg_" + uuid.UUID(row["delivery_id"]).hex
    assert message.headers["content-type"] == "application/json"
    assert message.headers["user-agent"].startswith("workledger-webhooks/")
    sent_at = int(message.headers["webhook-timestamp"])
    assert abs(sent_at - datetime.now(UTC).timestamp()) < 30
    assert message.headers["webhook-signature"].startswith("v1,")
    assert " " not in message.headers["webhook-signature"]  # one secret, one signature

    assert payload["type"] == "person.created"
    assert payload["tenantId"] == tenant_id
    data = payload["data"]
    trail = webhook_api.request(
        "GET",
        "/audit/events",
        params={"aggregateId": person["personId"]},
        auth=admin(webhook_api, tenant_id),
    ).json()["events"]
    (audited,) = trail
    assert data["eventId"] == audited["eventId"]
    assert data["aggregateType"] == "Person" == audited["aggregateType"]
    assert data["aggregateId"] == person["personId"]
    assert data["version"] == 1
    assert data["occurredAt"] == audited["occurredAt"] == payload["timestamp"]
    assert data["actor"] == audited["actor"] == "user:tester"
    assert data["changes"] == audited["data"]
    now = webhook_api.request(
        "GET", f"/people/{person['personId']}", auth=admin(webhook_api, tenant_id)
    ).json()
    assert data["object"] == now
    assert row["status"] == "succeeded"
    assert row["attempts"] == 1


def test_each_endpoint_gets_what_its_filter_asks_for_and_only_from_its_own_tenant(
    webhook_api: Api,
) -> None:
    services = webhook_api.services
    first = webhook_api.provision()["tenantId"]
    second = webhook_api.provision()["tenantId"]
    with consumer() as people, consumer() as customers, consumer() as everything:
        register_endpoint(services, first, people.url, ["person.created"])
        register_endpoint(services, first, customers.url, ["customer.created"])
        register_endpoint(services, second, everything.url, ["*"])
        webhook_api.hire(first)
        created = webhook_api.request(
            "POST", "/customers", json={"name": "Acme"}, auth=admin(webhook_api, first)
        )
        assert created.status_code == 201, created.text
        webhook_api.hire(second)
        webhook_api.hire(second)
        services.dispatcher.run_once()
        services.dispatcher.run_once()  # nothing more is due: nothing more is sent

        assert [m.json()["type"] for m in people.snapshot()] == ["person.created"]
        assert [m.json()["type"] for m in customers.snapshot()] == ["customer.created"]
        others = everything.snapshot()
        assert [m.json()["type"] for m in others] == ["person.created", "person.created"]
        assert {m.json()["tenantId"] for m in others} == {second}
        assert all(m.json()["tenantId"] == first for m in people.snapshot())


def test_a_failing_consumer_is_retried_on_schedule_under_the_same_id(webhook_api: Api) -> None:
    services = webhook_api.services  # schedule 0.05 s, 0.1 s
    tenant_id = webhook_api.provision()["tenantId"]

    def flaky(n: int, request: Received) -> Answer:
        return (500, {}, 0.0, b"down for a moment") if n <= 2 else (204, {}, 0.0, b"")

    with consumer(flaky) as hook:
        endpoint = register_endpoint(services, tenant_id, hook.url)
        webhook_api.hire(tenant_id)
        deliver_until(services, lambda: len(hook.snapshot()) >= 3)
        received = hook.wait_for(3)
    assert len({m.msg_id for m in received}) == 1  # one message, retried
    assert len({m.body for m in received}) == 1  # byte for byte the same
    for message in received:
        message.verify(endpoint.secret)
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1
    (row,) = deliveries(services, endpoint.endpoint_id)
    assert row["status"] == "succeeded"
    assert row["attempts"] == 3
    assert attempts_of(services, row["delivery_id"]) == [
        (1, 500, None, "down for a moment"),
        (2, 500, None, "down for a moment"),
        (3, 204, None, ""),
    ]


def test_a_delivery_fails_once_the_schedule_is_used_up(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]

    def broken(n: int, request: Received) -> Answer:
        return 502, {}, 0.0, b"x" * 5000  # a long answer is kept truncated

    with consumer(broken) as hook:
        endpoint = register_endpoint(services, tenant_id, hook.url)
        webhook_api.hire(tenant_id)
        deliver_until(
            services, lambda: deliveries(services, endpoint.endpoint_id)[0]["status"] == "failed"
        )
        assert len(hook.snapshot()) == 3  # the first attempt and two retries
    (row,) = deliveries(services, endpoint.endpoint_id)
    assert row["attempts"] == 3
    assert row["reason"] == "no success in 3 attempts"
    kept = attempts_of(services, row["delivery_id"])
    assert [len(body) for *_, body in kept] == [1024, 1024, 1024]
    # One failed delivery of a new endpoint is not sustained failure: it stays enabled.
    endpoint_now = services.log.load(WebhookEndpoint, endpoint.endpoint_id)
    assert endpoint_now is not None
    assert endpoint_now.status == "enabled"


def test_retry_after_is_honoured(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]

    def throttled(n: int, request: Received) -> Answer:
        return (429, {"Retry-After": "1"}, 0.0, b"slow down") if n == 1 else (200, {}, 0.0, b"")

    with consumer(throttled) as hook:
        register_endpoint(services, tenant_id, hook.url)
        webhook_api.hire(tenant_id)
        deliver_until(services, lambda: len(hook.snapshot()) >= 2, timeout=15)
        first, second = hook.wait_for(2)
    assert second.at - first.at >= 1.0  # not the schedule's 0.05 s
    assert first.msg_id == second.msg_id


def test_410_disables_the_endpoint_as_the_dispatcher_in_the_audit_trail(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer(lambda n, r: (410, {}, 0.0, b"gone")) as hook:
        endpoint = register_endpoint(services, tenant_id, hook.url)
        webhook_api.hire(tenant_id)
        services.dispatcher.run_once()
        assert len(hook.snapshot()) == 1  # no retry after a 410
        webhook_api.hire(tenant_id)  # disabled now: no delivery is made for this one
        services.dispatcher.run_once()
        assert len(hook.snapshot()) == 1

    rows = deliveries(services, endpoint.endpoint_id)
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("failed", "the endpoint answered 410 Gone")
    ]
    disabled = services.log.load(WebhookEndpoint, endpoint.endpoint_id)
    assert disabled is not None
    assert disabled.status == DISABLED
    assert disabled.disabled_reason == "the endpoint answered 410 Gone"
    trail = webhook_api.request(
        "GET",
        "/audit/events",
        params={"aggregateId": str(endpoint.endpoint_id)},
        auth=admin(webhook_api, tenant_id),
    ).json()["events"]
    assert [(e["type"], e["actor"]) for e in trail] == [
        ("WebhookEndpointCreated", "user:tester"),
        ("WebhookEndpointDisabled", "system:webhook-dispatcher"),
    ]


class Later:
    """A clock `ahead` of the real one: days of failure, without waiting days."""

    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


class CountingSender(AiohttpWebhookSender):
    def __init__(self, sent: list[str], **options: Any) -> None:
        super().__init__(**options)
        self.sent = sent

    async def send(self, url: str, headers: Any, body: bytes) -> Any:
        self.sent.append(headers["webhook-id"])
        return await super().send(url, headers, body)


def dispatcher_for(services: Services, **options: Any) -> Dispatcher:
    """A dispatcher over `services`' store, built as the container builds one, with options;
    `sent` collects the webhook-id of every message it sends."""
    allow_private = options.pop("allow_private", True)
    sent = options.pop("sent", [])
    return Dispatcher(
        SqlDeliveries(services.db),
        lambda: CountingSender(sent, allow_private=allow_private),
        services.get(WebhookSecrets),
        services.log,
        options.pop("clock", SystemClock()),
        schedule=options.pop("schedule", (0.05,)),
        prepare=services.outbox.catch_up,
        **options,
    )


def test_an_endpoint_failing_for_days_is_disabled(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    answers = {"status": 200}
    dispatcher = dispatcher_for(
        services,
        clock=Later(timedelta(days=6)),
        disable_after=timedelta(days=5),
        schedule=(0.0,),  # the retry is due at once: two rounds make two attempts
    )
    try:
        with consumer(lambda n, r: (answers["status"], {}, 0.0, b"")) as hook:
            endpoint = register_endpoint(services, tenant_id, hook.url)
            # A success "now" (six days after the endpoint was made): not failing for days.
            webhook_api.hire(tenant_id)
            dispatcher.run_once()
            answers["status"] = 500
            webhook_api.hire(tenant_id)
            dispatcher.run_once()
            dispatcher.run_once()
            assert len(hook.snapshot()) == 3
            rows = deliveries(services, endpoint.endpoint_id)
            assert [r["status"] for r in rows] == ["succeeded", "failed"]
            current = services.log.load(WebhookEndpoint, endpoint.endpoint_id)
            assert current is not None
            assert current.status == "enabled"

            # Made six days ago and quiet since: its first delivery fails for good "now". It
            # has been failing for seconds, not days: it stays enabled.
            quiet_tenant = webhook_api.provision(name="Quiet Co")["tenantId"]
            quiet = register_endpoint(services, quiet_tenant, hook.url)
            webhook_api.hire(quiet_tenant)
            dispatcher.run_once()
            dispatcher.run_once()
            (row,) = deliveries(services, quiet.endpoint_id)
            assert row["status"] == "failed"
            current = services.log.load(WebhookEndpoint, quiet.endpoint_id)
            assert current is not None
            assert current.status == "enabled"

            # Failing since its first attempt, six days ago (a dispatcher on the real clock),
            # and failing still: disabled.
            broken_tenant = webhook_api.provision(name="Broken Co")["tenantId"]
            other = register_endpoint(services, broken_tenant, hook.url)
            earlier = dispatcher_for(services, disable_after=timedelta(days=5), schedule=(0.0,))
            try:
                webhook_api.hire(broken_tenant)
                earlier.run_once()
                earlier.run_once()
            finally:
                earlier.close()
            first_failure = datetime.now(UTC)
            webhook_api.hire(broken_tenant)
            dispatcher.run_once()
            dispatcher.run_once()
    finally:
        dispatcher.close()
    disabled = services.log.load(WebhookEndpoint, other.endpoint_id)
    assert disabled is not None
    assert disabled.status == DISABLED
    assert disabled.disabled_reason is not None
    assert disabled.disabled_reason.startswith("no successful delivery since ")
    since = datetime.fromisoformat(disabled.disabled_reason.split(" since ")[1])
    assert first_failure - timedelta(seconds=5) < since < first_failure


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_private_target_is_refused_at_send_time(webhook_api: Api, host: str) -> None:
    """The endpoint was saved while private targets were allowed; the dispatcher no longer
    allows them: the address it would connect to is checked, and nothing is sent."""
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    dispatcher = dispatcher_for(services, allow_private=False)
    try:
        with consumer() as hook:
            endpoint = register_endpoint(services, tenant_id, hook.url.replace("127.0.0.1", host))
            webhook_api.hire(tenant_id)
            (finished,) = dispatcher.run_once()
            assert hook.snapshot() == []
    finally:
        dispatcher.close()
    assert finished.attempt == 1
    ((_, status, error, body),) = attempts_of(services, str(finished.delivery_id))
    assert status is None
    assert body is None
    assert error.startswith(f"refused target: {host} resolves to a private")
    # A literal IP is the client's own input; what a name resolves to is not told (internal DNS).
    assert ("127.0.0.1" in error) == (host == "127.0.0.1")
    (row,) = deliveries(services, endpoint.endpoint_id)
    assert row["status"] == "pending"  # retried on schedule (DNS may change), refused each time


def test_a_rotated_secret_signs_beside_the_new_one_until_its_overlap_ends(
    webhook_api: Api,
) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer() as hook:
        endpoint = register_endpoint(services, tenant_id, hook.url)
        rotated = new_secret()
        rotated_id = uuid.uuid4()
        services.get(WebhookSecrets).put(uuid.UUID(tenant_id), rotated_id, rotated)
        change_endpoint(
            services,
            endpoint.endpoint_id,
            lambda e: e.rotate_secret(
                secret_id=rotated_id,
                previous_valid_until=datetime.now(UTC) + timedelta(hours=24),
                at=datetime.now(UTC),
            ),
        )
        webhook_api.hire(tenant_id)
        services.dispatcher.run_once()
        (message,) = hook.wait_for(1)
        assert len(message.headers["webhook-signature"].split(" ")) == 2
        message.verify(rotated)
        message.verify(endpoint.secret)
        new_only = new_secret()
        new_only_id = uuid.uuid4()
        services.get(WebhookSecrets).put(uuid.UUID(tenant_id), new_only_id, new_only)
        change_endpoint(  # rotated again, with the overlap already over
            services,
            endpoint.endpoint_id,
            lambda e: e.rotate_secret(
                secret_id=new_only_id,
                previous_valid_until=datetime.now(UTC) - timedelta(seconds=1),
                at=datetime.now(UTC),
            ),
        )
        webhook_api.hire(tenant_id)
        services.dispatcher.run_once()
        _, last = hook.wait_for(2)
    assert " " not in last.headers["webhook-signature"]
    last.verify(new_only)
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        last.verify(rotated)


def test_the_dispatcher_thread_sends_a_write_at_once(webhook_api: Api) -> None:
    """Started as `serve` starts it: a write in this process wakes it (no poll to wait for)."""
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer() as hook:
        register_endpoint(services, tenant_id, hook.url)
        services.dispatcher.start()
        try:
            written = datetime.now(UTC).timestamp()
            webhook_api.hire(tenant_id)  # settle() wakes the dispatcher
            (message,) = hook.wait_for(1, timeout=5)
        finally:
            services.dispatcher.stop()
    assert message.at - written < 1.0


def test_two_dispatchers_at_once_never_send_a_delivery_twice(
    webhook_api: Api, make_webhook_services: Any
) -> None:
    """Two dispatchers (two processes' worth of connections) claiming small batches side by
    side: each delivery is leased to one of them (SKIP LOCKED on PostgreSQL, the write lock on
    SQLite) and sent once."""
    services = webhook_api.services
    other = make_webhook_services()
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer(lambda n, r: (200, {}, 0.005, b"")) as hook:
        register_endpoint(services, tenant_id, hook.url)
        for _ in range(40):
            webhook_api.hire(tenant_id)
        assert len(deliveries(services)) == 40
        sent: tuple[list[str], list[str]] = ([], [])
        pair = [
            dispatcher_for(s, concurrency=3, poll_seconds=0.01, sent=log)
            for s, log in zip((services, other), sent, strict=True)
        ]
        for dispatcher in pair:
            dispatcher.start()
        try:
            hook.wait_for(40, timeout=30)
            deadline = datetime.now(UTC) + timedelta(seconds=30)
            while {r["status"] for r in deliveries(services)} != {"succeeded"}:
                assert datetime.now(UTC) < deadline
                time.sleep(0.01)
        finally:
            for dispatcher in pair:
                dispatcher.close()
        received = hook.snapshot()
    ids = [m.msg_id for m in received]
    assert len(ids) == 40
    assert len(set(ids)) == 40
    assert {r["attempts"] for r in deliveries(services)} == {1}
    assert all(sent), "both dispatchers took part"
    assert sorted(sent[0] + sent[1]) == sorted(ids)


def test_whatever_a_consumer_answers_is_recorded(webhook_api: Api) -> None:
    """Binary, NUL bytes and invalid UTF-8 included (PostgreSQL text refuses NUL)."""
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer(lambda n, r: (500, {}, 0.0, b"\x00\xff\xfebin\x00ary")) as hook:
        endpoint = register_endpoint(services, tenant_id, hook.url)
        webhook_api.hire(tenant_id)
        (finished,) = services.dispatcher.run_once()
        assert len(hook.snapshot()) == 1
    assert finished.attempt == 1
    ((_, status, error, body),) = attempts_of(services, str(finished.delivery_id))
    assert (status, error) == (500, None)
    assert body == "\ufffd\ufffd\ufffdbin\ufffdary"
    (row,) = deliveries(services, endpoint.endpoint_id)
    assert row["status"] == "pending"
