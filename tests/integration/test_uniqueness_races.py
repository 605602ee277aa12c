"""Natural keys under real concurrency: of N simultaneous creates with the same key exactly one
wins and the others get the duplicate error; nothing half-written remains. Both stores."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID

from application.people import CreatePerson, PeopleCommands
from application.results import Written
from application.tenants import ProvisionTenant, TenantCommands
from domain.errors import KeyAlreadyClaimed
from domain.person import Person
from domain.tenant import Tenant
from entrypoints.container import Services
from tests.integration.workload import context

RACERS = 6


def race(make: Callable[[int], Written]) -> tuple[list[Written], list[BaseException]]:
    barrier = threading.Barrier(RACERS)
    wins: list[Written] = []
    losses: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            wins.append(make(i))
        except BaseException as error:
            losses.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wins, losses


def each_own_services(make_services: Any, database_url: str) -> list[Services]:
    # One set of connections per racer, like separate server processes.
    return [make_services(database_url) for _ in range(RACERS)]


def test_simultaneous_tenants_with_one_name_give_one_winner(
    make_services: Any, database_url: str
) -> None:
    racers = each_own_services(make_services, database_url)
    admin = context("platform-admin")
    wins, losses = race(
        lambda i: (
            racers[i]
            .get(TenantCommands)
            .provision(
                admin,
                ProvisionTenant(
                    name="Contested" if i % 2 else "  CONTESTED ", contact_email="a@b.co"
                ),
            )
        )
    )
    assert len(wins) == 1
    assert len(losses) == RACERS - 1
    assert all(isinstance(e, KeyAlreadyClaimed) and e.field == "name" for e in losses), losses
    log = racers[0].log
    tenants = {
        r.event.originator_id for r in log.read(0, 1000) if isinstance(r.event, Tenant.Created)
    }
    assert tenants == {wins[0].id}


def test_simultaneous_hires_with_one_reference_give_one_winner(
    make_services: Any, database_url: str
) -> None:
    racers = each_own_services(make_services, database_url)
    tenant = (
        racers[0]
        .get(TenantCommands)
        .provision(
            context("platform-admin"), ProvisionTenant(name="Hiring Co", contact_email="a@b.co")
        )
        .id
    )
    hr = context("customer-admin", tenant=tenant)

    def hire(i: int) -> Written:
        return (
            racers[i]
            .get(PeopleCommands)
            .create(
                hr,
                CreatePerson(
                    first_name="Same",
                    last_name="Person",
                    email=f"person{i}@example.com",
                    employee_reference="E-0001",
                    job_title="Dev",
                    employment_start_date=date(2026, 1, 1),
                ),
            )
        )

    wins, losses = race(hire)
    assert len(wins) == 1
    assert all(isinstance(e, KeyAlreadyClaimed) and e.field == "employeeReference" for e in losses)
    people = [r for r in racers[0].log.read(0, 1000) if isinstance(r.event, Person.Created)]
    assert [UUID(str(p.event.originator_id)) for p in people] == [wins[0].id]
