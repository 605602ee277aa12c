"""Read models: replay equals live, crashes resume with nothing lost or applied twice,
concurrent runners never double-apply. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from application.event_log import RecordedEvent
from application.ports import SqlCursor
from application.tenants import ProvisionTenant, TenantCommands
from entrypoints.container import Services, projections
from projections.people import PeopleProjection
from projections.runner import ProjectionRunner
from projections.tenants import TenantsProjection
from tests.integration.workload import context, run_workload

TABLES = {
    "rm_tenants": "tenant_id",
    "rm_people": "tenant_id, person_id",
    "rm_person_units": "tenant_id, unit, person_id",
    "rm_customers": "tenant_id, customer_id",
    "rm_engagements": "tenant_id, engagement_id",
    "rm_squads": "tenant_id, squad_id",
    "rm_assignments": "tenant_id, assignment_id",
    "rm_epics": "tenant_id, epic_id",
    "rm_stories": "tenant_id, story_id",
    "rm_tasks": "tenant_id, task_id",
    "rm_sprints": "tenant_id, sprint_id",
    "rm_invoices": "tenant_id, invoice_id",
    "rm_payments": "tenant_id, payment_id",
    "rm_report_drafts": "tenant_id, invoice_id",
    "rm_report_receivables": "tenant_id, invoice_id",
    "rm_report_revenue": "tenant_id, month, currency",
    "rm_webhooks": "tenant_id, webhook_id",
    "rm_api_keys": "tenant_id, api_key_id",
    "rm_audit": "position",
}


def snapshot(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: services.db.query(f"SELECT * FROM {table} ORDER BY {order}")
        for table, order in TABLES.items()
    }


def test_replay_rebuilds_exactly_the_live_read_models(services: Services) -> None:
    run_workload(services)
    services.projections.catch_up()
    live = snapshot(services)
    assert len(live["rm_people"]) == 15
    assert len(live["rm_audit"]) > 40

    reached = services.projections.replay()

    assert reached == services.log.head()
    assert snapshot(services) == live


def test_replay_from_a_second_process_equals_live(
    services: Services, make_services: Any, database_url: str
) -> None:
    run_workload(services, tenants=2, people=3)
    services.projections.catch_up()
    live = snapshot(services)
    other = make_services(database_url)  # another "process": its own connections and runner
    other.projections.replay()
    assert snapshot(other) == live


class Explodes:
    """Wraps a projection and fails once, on the n-th event it is asked to apply."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner = inner
        self.name, self.ddl, self.tables = inner.name, inner.ddl, inner.tables
        self.fail_at = fail_at
        self.seen = 0

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        self.seen += 1
        if self.seen == self.fail_at:
            raise RuntimeError("crash in the middle of a batch")
        self.inner.apply(cur, recorded)


def test_a_crash_mid_batch_resumes_with_nothing_lost_or_applied_twice(services: Services) -> None:
    run_workload(services, tenants=2, people=4)
    expected = services.projections.catch_up()
    live = snapshot(services)

    with services.db.transaction() as cur:
        for table in TABLES:
            cur.execute(f"DELETE FROM {table}")
        cur.execute("UPDATE projection_tracking SET position = 0")
    crashing = [
        Explodes(p, fail_at=7) if isinstance(p, PeopleProjection) else p for p in projections()
    ]
    runner = ProjectionRunner(services.log, services.db, crashing, batch_size=5)
    with pytest.raises(RuntimeError):
        runner.catch_up()
    # The failed batch was rolled back whole: tracking and rows agree with what committed.
    committed = services.db.query("SELECT name, position FROM projection_tracking")
    positions = {name: position for name, position in committed if name in runner.names}
    assert len(set(positions.values())) == 1
    audited = services.db.query("SELECT MAX(position) FROM rm_audit")[0][0] or 0
    assert audited <= positions["audit"]

    assert runner.catch_up() == expected  # the crash was a one-off: the rerun completes
    assert snapshot(services) == live


def test_concurrent_runners_apply_each_event_once(
    services: Services, make_services: Any, database_url: str
) -> None:
    run_workload(services, tenants=2, people=4)
    with services.db.transaction() as cur:
        for table in TABLES:
            cur.execute(f"DELETE FROM {table}")
        cur.execute("UPDATE projection_tracking SET position = 0")
    others = [make_services(database_url) for _ in range(3)]
    runners = [ProjectionRunner(o.log, o.db, projections(), batch_size=3) for o in others]
    errors: list[BaseException] = []

    def run(r: ProjectionRunner) -> None:
        try:
            r.catch_up()
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    fresh = make_services(database_url)
    fresh.projections.replay()
    assert snapshot(services) == snapshot(fresh)


def test_a_read_with_a_log_position_sees_a_write_made_by_another_process(
    services: Services, make_services: Any, database_url: str
) -> None:
    from litestar.testing import TestClient

    from entrypoints.http.app import create_app
    from tests.conftest import Api

    writer = make_services(database_url)  # another process: its writes are not applied here
    tenant_ids = [
        writer.get(TenantCommands)
        .provision(
            context("platform-admin"), ProvisionTenant(name="Elsewhere", contact_email="a@b.co")
        )
        .id
    ]
    position = writer.log.head()
    with TestClient(create_app(services, follow_log=False)) as client:
        api = Api(client, services)
        auth = api.as_("platform-admin")
        path = f"/tenants/{tenant_ids[0]}"
        assert api.request("GET", path, auth=auth).status_code == 404  # not applied yet
        seen = api.request("GET", path, auth=auth, headers={"X-Log-Position": str(position)})
        assert seen.status_code == 200
        bad = api.request("GET", path, auth=auth, headers={"X-Log-Position": "soon"})
        assert bad.status_code == 400


def test_a_write_whose_read_models_fail_is_reported_as_recorded_not_as_a_500(
    sqlite_services: Services,
) -> None:
    from litestar.testing import TestClient

    from entrypoints.http.app import create_app
    from tests.conftest import Api

    broken = [
        Explodes(p, fail_at=1) if isinstance(p, TenantsProjection) else p for p in projections()
    ]
    sqlite_services.projections = ProjectionRunner(sqlite_services.log, sqlite_services.db, broken)
    with TestClient(create_app(sqlite_services, follow_log=False)) as client:
        api = Api(client, sqlite_services)
        response = api.request(
            "POST",
            "/tenants",
            json={"name": "Stalled", "contactEmail": "a@b.co"},
            auth=api.as_("platform-admin"),
        )
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "read-models-behind"
        assert body["position"] == sqlite_services.log.head()  # the write itself stands
        listed = api.request(
            "GET",
            "/tenants",
            auth=api.as_("platform-admin"),
            headers={"X-Log-Position": str(body["position"])},
        )
        assert listed.json()["totalCount"] == 1  # the one-off failure healed on the next try
