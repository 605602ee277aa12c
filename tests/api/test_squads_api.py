"""Squads, capacity and assignments over HTTP, and the capacity invariant under a real race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from application.squads import AssignSquad, SquadCommands
from domain.errors import CapacityExceeded
from entrypoints.container import Services
from tests.api.problems import problem
from tests.api.world import Tenancy
from tests.integration.workload import context


def test_capacity_is_reported_per_week_and_never_exceeded(world: Tenancy) -> None:
    engagement = world.engagement()["engagementId"]
    squad = world.squad(capacity=40)
    first = world.post(
        f"/squads/{squad}/assign",
        {
            "engagementId": engagement,
            "hoursPerWeek": 30,
            "from": "2026-01-05",
            "to": "2026-02-27",
        },
    )
    assert first.status_code == 201, first.text
    assert first.json()["hoursPerWeek"] == "30.00"
    too_much = world.post(
        f"/squads/{squad}/assign",
        {
            "engagementId": engagement,
            "hoursPerWeek": 20,
            "from": "2026-02-23",
            "to": "2026-03-27",
        },
    )
    body = problem(too_much, 409, code="over-capacity")
    assert "2026-02-23" in body["detail"]
    fits = world.post(
        f"/squads/{squad}/assign",
        {
            "engagementId": engagement,
            "hoursPerWeek": 10,
            "from": "2026-02-01",
            "to": "2026-03-27",
        },
    )
    assert fits.status_code == 201, fits.text
    week = world.api.request(
        "GET", f"/squads/{squad}/capacity?weekOf=2026-02-04", auth=world.pm
    ).json()
    assert week == {
        "squadId": squad,
        "weekOf": "2026-02-02",
        "capacityHoursPerWeek": "40.00",
        "allocatedHoursPerWeek": "40.00",
        "availableHoursPerWeek": "0.00",
    }
    listed = world.api.request("GET", f"/assignments?squadId={squad}", auth=world.pm).json()
    assert listed["totalCount"] == 2
    ended = world.api.request(
        "DELETE", f"/squads/{squad}/assignments/{first.json()['assignmentId']}", auth=world.pm
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    after = world.api.request(
        "GET", f"/squads/{squad}/capacity?weekOf=2026-02-04", auth=world.pm
    ).json()
    assert after["allocatedHoursPerWeek"] == "10.00"
    # Lowering capacity below what is allocated is refused.
    lowered = world.api.request(
        "PUT",
        f"/squads/{squad}",
        auth=world.pm,
        json={
            "name": "Alpha",
            "capacityHoursPerWeek": 5,
            "memberIds": [world.person],
        },
    )
    problem(lowered, 409, code="over-capacity")


def test_bad_assignments_are_400(world: Tenancy) -> None:
    engagement = world.engagement()["engagementId"]
    squad = world.squad()
    for body, field in (
        ({"hoursPerWeek": 0}, "hoursPerWeek"),
        ({"hoursPerWeek": 10.001}, "hoursPerWeek"),
        ({"to": "2026-01-01"}, "to"),
        ({"engagementId": world.customer}, "engagementId"),
    ):
        sent = {
            "engagementId": engagement,
            "hoursPerWeek": 10,
            "from": "2026-01-05",
            "to": "2026-02-27",
            **body,
        }
        problem(world.post(f"/squads/{squad}/assign", sent), 400, field=field)
    problem(
        world.post(
            "/squads", {"name": "B", "capacityHoursPerWeek": 10, "memberIds": [world.customer]}
        ),
        400,
        field="memberIds",
    )


def test_squad_roles_and_tenancy(world: Tenancy) -> None:
    squad = world.squad()
    api = world.api
    member = api.as_("member", tenant=world.tenant)
    assert api.request("GET", f"/squads/{squad}", auth=member).status_code == 200
    problem(world.post("/squads", {"name": "C", "capacityHoursPerWeek": 1}, auth=member), 403)
    stranger = api.as_("customer-admin", tenant=api.provision()["tenantId"])
    problem(api.request("GET", f"/squads/{squad}", auth=stranger), 404)
    problem(api.request("GET", f"/squads/{squad}/capacity", auth=stranger), 404)


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = calls[i]()
        except Exception as error:  # collected and asserted on
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_assignments_never_exceed_capacity(
    world: Tenancy,
    make_services: Any,
    database_url: str,
) -> None:
    """Six processes at once each ask for 10 of the squad's 40 hours in the same weeks: exactly
    four win, two get CapacityExceeded, and the stored assignments add up to at most 40."""
    engagement = world.engagement()["engagementId"]
    squad = world.squad(capacity=40)
    racers: list[Services] = [make_services(database_url) for _ in range(6)]
    ctx = context("project-manager", tenant=UUID(world.tenant))
    command = AssignSquad(
        engagement_id=UUID(engagement),
        hours_per_week=Decimal(10),
        from_=date(2026, 3, 2),
        to=date(2026, 3, 27),
    )
    outcomes = race(
        [(lambda r=r: r.get(SquadCommands).assign(ctx, UUID(squad), command)) for r in racers]
    )
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert len(wins) == 4, outcomes
    assert all(isinstance(e, CapacityExceeded) for e in losses), losses
    capacity = world.api.request(
        "GET",
        f"/squads/{squad}/capacity?weekOf=2026-03-10",
        auth=world.pm,
        headers={"X-Log-Position": str(max(w.position for w in wins))},
    ).json()
    assert capacity["allocatedHoursPerWeek"] == "40.00"
