"""The outbox, on SQLite and PostgreSQL: one delivery per (event, matching endpoint of the same
tenant), made exactly once in the transaction of its tracking position, decided by the
endpoints as they were at the event's position; untouched by `replay`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from application.event_log import RecordedEvent
from application.ports import SqlCursor
from domain.webhook import PUBLIC_EVENT_TYPES, delivery_id
from entrypoints.container import Services
from projections.outbox import OUTBOX_LOCK_KEY, OutboxProjection
from projections.runner import ProjectionRunner
from tests.conftest import Api
from tests.webhooks.consumers import (
    change_endpoint,
    consumer,
    deliveries,
    register_endpoint,
)


def hire(api: Api, tenant_id: str, n: int = 1) -> list[str]:
    return [api.hire(tenant_id)["personId"] for _ in range(n)]


def customer(api: Api, tenant_id: str, name: str) -> str:
    response = api.request(
        "POST",
        "/customers",
        json={"name": name},
        auth=api.as_("customer-admin", tenant=tenant_id),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["customerId"])


class Counting:
    """The outbox projection, counting the events it is asked to apply."""

    def __init__(self, inner: OutboxProjection, seen: list[int]) -> None:
        self.inner = inner
        self.name, self.ddl, self.tables = inner.name, inner.ddl, inner.tables
        self.seen = seen

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        self.seen.append(recorded.position)
        self.inner.apply(cur, recorded)


def counting_runner(services: Services, seen: list[int]) -> ProjectionRunner:
    projection = Counting(OutboxProjection(services.log), seen)
    return ProjectionRunner(
        services.log, services.db, [projection], batch_size=7, lock_key=OUTBOX_LOCK_KEY
    )


def test_each_event_is_applied_once_however_many_runners_race(
    webhook_api: Api, make_webhook_services: Callable[..., Services]
) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    register_endpoint(services, tenant_id, "http://127.0.0.1:9/a")
    register_endpoint(services, tenant_id, "http://127.0.0.1:9/b", ["customer.created"])
    start = services.outbox.catch_up()
    hire(webhook_api, tenant_id, 12)
    customer(webhook_api, tenant_id, "Acme")

    seen: list[int] = []
    others = [make_webhook_services() for _ in range(3)]  # other processes
    runners = [counting_runner(s, seen) for s in [services, *others]]
    errors: list[BaseException] = []

    def run(runner: ProjectionRunner) -> None:
        try:
            runner.catch_up()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    head = services.log.head()
    assert sorted(seen) == list(range(start + 1, head + 1))  # every event once, no more

    rows = deliveries(services)
    assert len(rows) == 12 + 1 + 1  # 12 hires to `a`; the customer to `a` and to `b`
    # Catching up again, here or in another process, finds nothing left to do.
    assert services.outbox.catch_up() == head
    assert others[0].outbox.catch_up() == head
    assert deliveries(services) == rows


def test_replay_neither_remakes_nor_resends_deliveries(
    webhook_api: Api, make_webhook_services: Callable[..., Services]
) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer() as hook:
        register_endpoint(services, tenant_id, hook.url)
        hire(webhook_api, tenant_id, 2)
        services.dispatcher.run_once()
        assert len(hook.wait_for(2)) == 2
        before = deliveries(services)

        assert "outbox:webhooks" not in services.projections.names
        services.projections.replay()  # what `workledger replay` runs
        make_webhook_services().projections.replay()  # and in another process
        services.dispatcher.run_once()
        other = make_webhook_services()  # a process starting afresh after the replay
        other.dispatcher.run_once()

        assert deliveries(services) == before
        assert len(hook.snapshot()) == 2


def test_who_receives_an_event_is_decided_by_the_endpoints_at_its_position(
    webhook_api: Api,
) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    before = hire(webhook_api, tenant_id)[0]  # before the endpoint existed
    endpoint = register_endpoint(services, tenant_id, "http://127.0.0.1:9/x", ["person.created"])
    during = hire(webhook_api, tenant_id)[0]
    now = datetime.now(UTC)
    change_endpoint(
        services,
        endpoint.endpoint_id,
        lambda e: e.update(
            url=e.url,
            events=["customer.created"],
            description=None,
            known_events=PUBLIC_EVENT_TYPES,
            at=now,
        ),
    )
    hire(webhook_api, tenant_id)  # no longer subscribed to people
    first = customer(webhook_api, tenant_id, "First")
    change_endpoint(services, endpoint.endpoint_id, lambda e: e.disable(reason="pause", at=now))
    customer(webhook_api, tenant_id, "While disabled")
    change_endpoint(services, endpoint.endpoint_id, lambda e: e.enable(at=now))
    third = customer(webhook_api, tenant_id, "Third")
    change_endpoint(services, endpoint.endpoint_id, lambda e: e.delete(at=now))
    customer(webhook_api, tenant_id, "After deletion")

    # All of it in one catch-up: the outcome cannot depend on the endpoint's latest state.
    rows = deliveries(services, endpoint.endpoint_id)
    assert [r["event_type"] for r in rows] == [
        "person.created",
        "customer.created",
        "customer.created",
    ]
    ids = {r["delivery_id"] for r in rows}
    assert str(delivery_id(endpoint.endpoint_id, uuid.UUID(during), 1)) in ids
    assert str(delivery_id(endpoint.endpoint_id, uuid.UUID(first), 1)) in ids
    assert str(delivery_id(endpoint.endpoint_id, uuid.UUID(third), 1)) in ids
    assert str(delivery_id(endpoint.endpoint_id, uuid.UUID(before), 1)) not in ids
    # Deleted with deliveries still pending: they are cancelled, and never sent.
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("cancelled", "the endpoint was disabled: pause"),
        ("cancelled", "the endpoint was disabled: pause"),
        ("cancelled", "the endpoint was deleted"),
    ]


def test_disabling_or_deleting_an_endpoint_cancels_what_it_has_pending(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    now = datetime.now(UTC)
    with consumer() as first, consumer() as second, consumer() as third:
        paused = register_endpoint(services, tenant_id, first.url)
        gone = register_endpoint(services, tenant_id, second.url)
        kept = register_endpoint(services, tenant_id, third.url)
        hire(webhook_api, tenant_id, 2)
        assert {r["status"] for r in deliveries(services)} == {"pending"}
        change_endpoint(services, paused.endpoint_id, lambda e: e.disable(reason="x", at=now))
        change_endpoint(services, gone.endpoint_id, lambda e: e.delete(at=now))
        services.dispatcher.run_once()
        assert first.snapshot() == []
        assert second.snapshot() == []
        assert len(third.wait_for(2)) == 2
    statuses = {(r["endpoint_id"], r["status"], r["reason"]) for r in deliveries(services)}
    assert statuses == {
        (str(paused.endpoint_id), "cancelled", "the endpoint was disabled: x"),
        (str(gone.endpoint_id), "cancelled", "the endpoint was deleted"),
        (str(kept.endpoint_id), "succeeded", None),
    }


def test_a_ping_goes_to_its_endpoint_alone_even_when_disabled(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    now = datetime.now(UTC)
    with consumer() as pinged, consumer() as bystander:
        target = register_endpoint(services, tenant_id, pinged.url)
        register_endpoint(services, tenant_id, bystander.url)
        change_endpoint(services, target.endpoint_id, lambda e: e.disable(reason="x", at=now))
        ping_id = uuid.uuid4()
        change_endpoint(services, target.endpoint_id, lambda e: e.ping(ping_id=ping_id, at=now))
        services.dispatcher.run_once()
        (message,) = pinged.wait_for(1)
        assert bystander.snapshot() == []
    payload = message.verify(target.secret)
    assert payload["type"] == "webhook.test"
    assert payload["tenantId"] == tenant_id
    assert payload["data"]["webhookId"] == str(target.endpoint_id)
    assert payload["data"]["pingId"] == str(ping_id)
    # Created, Disabled, Pinged: the ping is version 3 of the endpoint's stream.
    expected = delivery_id(target.endpoint_id, target.endpoint_id, 3)
    assert message.msg_id == "msg_" + expected.hex
