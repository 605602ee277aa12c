"""Real processes: a `workledger worker` killed mid-send and restarted loses no delivery, and a
real `workledger serve` sends a write's message within a second of answering it. On SQLite and
PostgreSQL."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from application.people import CreatePerson, PeopleCommands
from entrypoints.container import Services
from tests.conftest import Api
from tests.e2e.processes import Process, Server, environment, wait_until
from tests.integration.workload import context
from tests.webhooks.consumers import Answer, Received, consumer, deliveries, register_endpoint

pytestmark = pytest.mark.slow


def dispatching(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The settings of a `serve` or `worker` that sends to consumers on 127.0.0.1 quickly."""
    return environment(
        tmp_path,
        {
            "WORKLEDGER_DATABASE_URL": database_url,
            "WORKLEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WORKLEDGER_WEBHOOK_RETRY_SCHEDULE": "0.05,0.1",
        },
    )


def test_a_worker_killed_mid_send_loses_nothing_once_restarted(
    webhook_api: Api, database_url: str, tmp_path: Path
) -> None:
    """The first worker is SIGKILLed while the consumer is still answering its 12 sends; the
    deliveries stay pending under its lease. The lease is 60 s: rather than wait for it, the
    test moves the lease's end to now (what the passing of those 60 s does), and a second
    worker sends every delivery again under the same webhook-id."""
    services: Services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    slow = {"on": True}

    def answer(n: int, request: Received) -> Answer:
        return 200, {}, (30.0 if slow["on"] else 0.0), b""

    with consumer(answer) as hook:
        endpoint = register_endpoint(services, tenant_id, hook.url, ["person.created"])
        for _ in range(12):
            webhook_api.hire(tenant_id)
        expected = {"msg_" + r["delivery_id"].replace("-", "") for r in deliveries(services)}
        assert len(expected) == 12
        env = dispatching(database_url, tmp_path)

        with Process(["worker", "--interval", "0.05"], env, tmp_path) as first:
            wait_until(
                lambda: len(hook.snapshot()) >= 12,
                "the first worker's sends",
                every=0.02,
                process=first,
            )
            first.popen.send_signal(signal.SIGKILL)
            first.popen.wait(timeout=10)
        in_flight = deliveries(services, endpoint.endpoint_id)
        assert {r["status"] for r in in_flight} == {"pending"}
        assert {r["attempts"] for r in in_flight} == {0}  # none of them was recorded
        leased = services.db.query(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE leased_by IS NOT NULL"
        )[0][0]
        assert leased == 12

        slow["on"] = False
        with services.db.transaction() as cur:  # the 60 s lease has run out
            cur.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ?"
                " WHERE status = 'pending' AND leased_by IS NOT NULL",
                (time.time(),),
            )
        with Process(["worker", "--interval", "0.05"], env, tmp_path) as second:
            wait_until(
                lambda: {r["status"] for r in deliveries(services)} == {"succeeded"},
                "the second worker's sends",
                every=0.02,
                process=second,
            )
            assert second.popen.poll() is None

    received = hook.snapshot()
    assert {m.msg_id for m in received} == expected  # every delivery arrived
    assert len(received) == 24  # each exactly twice: at least once, never lost
    for msg_id in expected:
        copies = [m for m in received if m.msg_id == msg_id]
        assert len({m.body for m in copies}) == 1  # a repeat is the same message
        for copy in copies:
            copy.verify(endpoint.secret)
    rows = deliveries(services, endpoint.endpoint_id)
    assert {r["attempts"] for r in rows} == {1}


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Server]:
    with Server(dispatching(database_url, tmp_path), tmp_path) as server:
        yield server


def test_serve_sends_within_a_second_of_the_write(
    served: Server,
    make_services: Callable[[str], Services],
    database_url: str,
) -> None:
    admin = {"Authorization": "Bearer " + served.token("--role", "platform-admin")}
    with consumer() as hook, httpx.Client(base_url=served.base + "/api/v1", timeout=10) as http:
        tenant = http.post(
            "/tenants", headers=admin, json={"name": "Hooked", "contactEmail": "a@b.c"}
        )
        assert tenant.status_code == 201, tenant.text
        tenant_id = tenant.json()["tenantId"]
        hr = {
            "Authorization": "Bearer "
            + served.token("--role", "customer-admin", "--tenant", tenant_id)
        }
        created = http.post(
            "/webhooks", headers=hr, json={"url": hook.url, "events": ["person.created"]}
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]

        latencies = []
        for n in range(5):
            hired = http.post(
                "/people",
                headers=hr,
                json={
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "email": f"ada{n}@example.com",
                    "employeeReference": f"E-{n}",
                    "jobTitle": "Engineer",
                    "employmentStartDate": "2026-01-05",
                },
            )
            assert hired.status_code == 201, hired.text
            answered = time.time()
            message = hook.wait_for(n + 1, timeout=5)[n]
            latencies.append(message.at - answered)
            assert message.verify(secret)["data"]["aggregateId"] == hired.json()["personId"]
        assert max(latencies) < 1.0, latencies

        # A write by another process reaches the server's dispatcher by polling.
        other = make_services(database_url)
        ctx = context("customer-admin", tenant=uuid.UUID(tenant_id))
        body = CreatePerson(
            first_name="Grace",
            last_name="Hopper",
            email="grace@example.com",
            employee_reference="E-G",
            job_title="Admiral",
            employment_start_date=date(2026, 1, 5),
        )
        other.get(PeopleCommands).hire(ctx, uuid.uuid4(), body)
        written = time.time()
        message = hook.wait_for(6, timeout=5)[5]
        assert message.at - written < 1.0
        assert message.verify(secret)["data"]["changes"]["firstName"] == "Grace"
