"""A log written by the first release (tests/fixtures/golden_events.jsonl, never regenerated)
must always load: topics resolve, states decode into today's events, aggregates rebuild and the
read models project it. A refactor that breaks a stored event's name or shape fails here."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.person import Person
from domain.tenant import Tenant
from entrypoints.container import Services

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden_events.jsonl"
TENANT = UUID("11111111-1111-4111-8111-111111111111")
ADA = UUID("22222222-2222-4222-8222-222222222222")
GRACE = UUID("33333333-3333-4333-8333-333333333333")


def load_golden(services: Services) -> int:
    rows = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
    for row in rows:  # one insert per event keeps the golden positions
        services.log.recorder.insert_events(
            [
                StoredEvent(
                    originator_id=UUID(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"].encode(),
                )
            ]
        )
    return len(rows)


def test_the_golden_log_rebuilds_every_aggregate(services: Services) -> None:
    assert load_golden(services) == 19
    tenant = services.log.load(Tenant, TENANT)
    assert tenant is not None
    assert (tenant.name, tenant.contact_email, tenant.status) == (
        "Golden Tenant",
        "billing@golden.example",
        "active",
    )
    assert (tenant.plan, tenant.seats, tenant.renews_on) == ("enterprise", 25, date(2027, 1, 1))
    assert tenant.feature_flags == {"beta": True, "legacy": False}
    assert tenant.payment_terms_days == 45
    ada = services.log.load(Person, ADA)
    assert ada is not None
    assert (ada.last_name, ada.job_title, ada.status) == ("King", "Principal Engineer", "inactive")
    assert ada.employment_end_date == date(2026, 12, 31)
    assert ada.line_manager_id == GRACE
    assert ada.organisational_units == ["platform"]
    assert ada.photo == "ab" * 32
    assert ada.version == 7


def test_the_golden_log_projects_and_keeps_its_audit_metadata(services: Services) -> None:
    load_golden(services)
    services.projections.replay()
    people = services.db.query(
        "SELECT person_id, status FROM rm_people WHERE tenant_id = ? ORDER BY seq", (str(TENANT),)
    )
    assert people == [(str(GRACE), "active"), (str(ADA), "inactive")]
    audit = services.db.query(
        "SELECT type, actor, request_id, occurred_at FROM rm_audit ORDER BY position"
    )
    assert len(audit) == 14  # the 5 uniqueness claims are bookkeeping, not audit
    assert audit[0] == (
        "TenantCreated",
        "user:golden-admin",
        "golden-1",
        "2026-01-05T09:00:00.000Z",
    )
    assert audit[-1][:3] == ("PersonDeactivated", "user:golden-hr", "golden-2")


DELIVERY = Path(__file__).parent.parent / "fixtures" / "golden_delivery_events.jsonl"


def test_the_golden_delivery_log_loads_and_projects(services: Services) -> None:
    """The delivery side's first stored events (customers, engagements, squads, work)."""
    rows = [json.loads(line) for line in DELIVERY.read_text().splitlines()]
    for row in rows:
        services.log.recorder.insert_events(
            [
                StoredEvent(
                    originator_id=UUID(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"].encode(),
                )
            ]
        )
    services.projections.replay()
    engagements = services.db.query("SELECT status, doc FROM rm_engagements ORDER BY seq")
    assert [status for status, _ in engagements] == ["Active", "Cancelled"]
    active = json.loads(engagements[0][1])
    assert active["contractTerms"]["pricing"] == {
        "model": "fixed-price",
        "amount": "12000.50",
        "currency": "EUR",
    }
    launch = next(m for m in active["milestones"] if m["name"] == "Launch")
    assert (launch["status"], launch["taskCount"], launch["completedTaskCount"]) == (
        "Completed",
        2,
        2,
    )
    completed = services.db.query(
        "SELECT data FROM rm_audit WHERE type = 'MilestoneCompleted' ORDER BY position"
    )
    assert [json.loads(d)["trigger"] for (d,) in completed] == ["manual", "tasks"]
    assert json.loads(completed[1][0])["amount"] == "2500.00"
    squad = json.loads(services.db.query("SELECT doc FROM rm_squads")[0][0])
    assert (squad["capacityHoursPerWeek"], squad["activeAssignments"]) == ("40.00", 2)
    contacts = services.db.query("SELECT doc FROM rm_customer_contacts")
    assert json.loads(contacts[0][0])["email"] == "pat@customer.example"
    tasks = services.db.query("SELECT doc FROM rm_tasks")
    assert sorted(json.loads(doc)["status"] for (doc,) in tasks) == ["Completed", "Completed"]
