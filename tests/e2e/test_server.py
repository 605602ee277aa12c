"""Black-box: a real `workledger serve` process, spoken to over real HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import STORES, WORKLEDGER, Server, environment, store_settings

pytestmark = pytest.mark.slow


def worker_processes(pid: int) -> list[int]:
    """The uvicorn worker processes `serve` (process `pid`) spawned, from /proc (its other
    child is multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:  # the process went away meanwhile
            continue
        if int(fields[1]) == pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with Server(environment(tmp_path, store_settings(request)), tmp_path) as srv:
        yield srv


def test_the_tour_works_over_http(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.token('--role', 'platform-admin')}"}
    with httpx.Client(base_url=server.base + "/api/v1", timeout=10) as http:
        created = http.post(
            "/tenants",
            headers=admin,
            json={"name": "Over The Wire", "contactEmail": "ops@wire.example"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["etag"] == '"1"'
        assert int(created.headers["x-log-position"]) >= 1
        tenant_id = created.json()["tenantId"]

        hr = {
            "Authorization": "Bearer "
            + server.token("--role", "customer-admin", "--tenant", tenant_id, "--sub", "hr-lead")
        }
        hired = http.post(
            "/people",
            headers={**hr, "X-Request-Id": "tour-42"},
            json={
                "firstName": "Ada",
                "lastName": "Lovelace",
                "email": "ada@wire.example",
                "employeeReference": "W-1",
                "jobTitle": "Engineer",
                "employmentStartDate": "2026-02-01",
            },
        )
        assert hired.status_code == 201, hired.text
        assert hired.headers["x-request-id"] == "tour-42"
        person_id = hired.json()["personId"]

        # Read-your-writes with no sleep: the list already holds the new person.
        listed = http.get("/people", headers=hr).json()
        assert [p["personId"] for p in listed["people"]] == [person_id]

        trail = http.get("/audit/events", headers=hr, params={"aggregateId": person_id}).json()
        assert [(e["type"], e["actor"], e["requestId"]) for e in trail["events"]] == [
            ("PersonCreated", "user:hr-lead", "tour-42")
        ]
        duplicate = http.post(
            "/tenants", headers=admin, json={"name": "over the wire", "contactEmail": "x@y.example"}
        )
        assert duplicate.status_code == 409
        assert duplicate.headers["content-type"].startswith("application/problem+json")
        assert http.get("/people", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_bad_setting_stops_start_up_with_one_line_naming_it(tmp_path: Path) -> None:
    env = environment(tmp_path, {"WORKLEDGER_DATABASE_URL": "mysql://nope"})
    out = subprocess.run(
        [WORKLEDGER, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "WORKLEDGER_DATABASE_URL" in lines[0]


def test_two_worker_processes_share_one_store_and_never_double_apply(tmp_path: Path) -> None:
    """`serve --workers 2` on SQLite: writes land on either process, every read sees them (the
    writer's own read models, or another's via X-Log-Position), and each event is projected once."""
    with Server(environment(tmp_path), tmp_path, "--workers", "2") as server:
        assert len(worker_processes(server.pid)) == 2, "--workers 2 runs two workers"
        admin = {"Authorization": f"Bearer {server.token('--role', 'platform-admin')}"}
        with httpx.Client(base_url=server.base + "/api/v1", timeout=10) as http:
            positions = []
            for i in range(12):  # new connections spread over both workers
                created = http.post(
                    "/tenants",
                    headers={**admin, "Connection": "close"},
                    json={"name": f"Worker Co {i}", "contactEmail": "ops@example.com"},
                )
                assert created.status_code == 201, created.text
                positions.append(int(created.headers["x-log-position"]))
            for _ in range(4):
                listed = http.get(
                    "/tenants",
                    headers={**admin, "Connection": "close", "X-Log-Position": str(max(positions))},
                )
                assert listed.json()["totalCount"] == 12
            trail = http.get(
                "/tenants",
                headers={**admin, "X-Log-Position": str(max(positions))},
                params={"limit": 200},
            ).json()
            assert len({t["tenantId"] for t in trail["tenants"]}) == 12
