"""The deliveries table as the dispatcher uses it (claims, leases, recording attempts), on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from application.webhook_delivery import (
    PENDING,
    SUCCEEDED,
    AttemptRecord,
    Decision,
    Outcome,
)
from entrypoints.container import Services
from projections.webhook_deliveries import SqlDeliveries
from tests.conftest import Api
from tests.webhooks.consumers import deliveries, register_endpoint

LEASE = timedelta(seconds=60)


def one_pending(api: Api) -> tuple[Services, UUID]:
    services = api.services
    tenant_id = api.provision()["tenantId"]
    register_endpoint(services, tenant_id, "http://127.0.0.1:9/hook")
    api.hire(tenant_id)
    (row,) = deliveries(services)
    return services, UUID(row["delivery_id"])


def attempt(status: int, at: datetime) -> AttemptRecord:
    return AttemptRecord(at=at, duration_ms=5, response_status=status, response_body="", error=None)


def retry_in(seconds: float, at: datetime) -> Decision:
    return Decision(PENDING, next_attempt_at=at + timedelta(seconds=seconds))


def test_a_leased_delivery_is_not_claimed_again_until_its_lease_ends(webhook_api: Api) -> None:
    services, delivery_id = one_pending(webhook_api)
    queue = SqlDeliveries(services.db)
    now = datetime.now(UTC)
    (claimed,) = queue.claim(now, now + LEASE, 10, "first")
    assert claimed.delivery_id == delivery_id
    assert claimed.lease == "first"
    assert claimed.url == "http://127.0.0.1:9/hook"
    assert queue.claim(now + LEASE - timedelta(seconds=1), now + 2 * LEASE, 10, "second") == []
    # The first dispatcher died without a word: once the lease has run out it is due again.
    (again,) = queue.claim(now + LEASE, now + 2 * LEASE, 10, "second")
    assert again.delivery_id == delivery_id
    assert again.lease == "second"
    # The late first dispatcher's attempt is kept, but the lease holder decides.
    (late,) = queue.finish(
        [Outcome(delivery_id, "first", attempt(200, now), lambda n: Decision(SUCCEEDED))]
    )
    assert late.attempt == 1
    assert late.decision is None
    (current,) = queue.finish(
        [Outcome(delivery_id, "second", attempt(500, now), lambda n: retry_in(n, now))]
    )
    assert current.attempt == 2
    assert current.decision == retry_in(2, now)  # two failures in a row, as the holder saw
    (row,) = deliveries(services)
    assert row["status"] == PENDING
    assert row["attempts"] == 2


def test_a_delivery_redelivered_mid_send_is_decided_by_its_newest_claim(
    webhook_api: Api,
) -> None:
    services, delivery_id = one_pending(webhook_api)
    queue = SqlDeliveries(services.db)
    now = datetime.now(UTC)
    tenant_id = UUID(str(services.db.query("SELECT tenant_id FROM webhook_deliveries")[0][0]))
    endpoint_id = UUID(str(services.db.query("SELECT endpoint_id FROM webhook_deliveries")[0][0]))
    queue.claim(now, now + LEASE, 10, "first")
    assert queue.redeliver(tenant_id, endpoint_id, delivery_id, now)
    (claimed,) = queue.claim(now, now + LEASE, 10, "second")
    # Both sends come back in one batch, the stale one first.
    stale, newest = queue.finish(
        [
            Outcome(delivery_id, "first", attempt(200, now), lambda n: Decision(SUCCEEDED)),
            Outcome(delivery_id, claimed.lease, attempt(503, now), lambda n: retry_in(n, now)),
        ]
    )
    assert (stale.attempt, stale.decision) == (1, None)
    assert newest.attempt == 2
    assert newest.decision == retry_in(2, now)
    (row,) = deliveries(services)
    assert row["attempts"] == 2
    assert row["status"] == PENDING
    history = services.db.query(
        "SELECT attempt, response_status FROM webhook_attempts ORDER BY attempt"
    )
    assert history == [(1, 200), (2, 503)]
    last = services.db.query("SELECT response_status, leased_by FROM webhook_deliveries")
    assert last == [(503, None)]
