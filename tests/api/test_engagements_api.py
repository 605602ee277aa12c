"""Engagements over HTTP: contract terms, lifecycle, milestones, the role matrix and tenancy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.problems import problem
from tests.api.world import TERMS, Tenancy


def test_an_engagement_is_drafted_with_exact_money(world: Tenancy) -> None:
    created = world.engagement()
    assert created["status"] == "Draft"
    assert created["contractTerms"]["pricing"] == {
        "model": "fixed-price",
        "amount": "50000.10",
        "currency": "USD",
    }
    again = world.api.request("GET", f"/engagements/{created['engagementId']}", auth=world.pm)
    assert again.json() == created
    assert again.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        (
            {**TERMS, "timeline": {"startDate": "2026-06-30", "endDate": "2026-01-01"}},
            "contractTerms.timeline.endDate",
        ),
        ({**TERMS, "pricing": {**TERMS["pricing"], "amount": -1}}, "contractTerms.pricing.amount"),
        ({**TERMS, "pricing": {**TERMS["pricing"], "amount": "lots"}}, "amount"),
        (
            {**TERMS, "pricing": {**TERMS["pricing"], "model": "barter"}},
            "contractTerms.pricing.model",
        ),
        (
            {**TERMS, "pricing": {**TERMS["pricing"], "currency": "XYZ"}},
            "contractTerms.pricing.currency",
        ),
    ],
)
def test_bad_terms_are_400_naming_the_field(world: Tenancy, terms: Any, field: str) -> None:
    response = world.post("/engagements", {"customerId": world.customer, "contractTerms": terms})
    body = problem(response, 400)
    assert any(field in e["field"] for e in body["errors"]), body
    listed = world.api.request("GET", "/engagements", auth=world.pm).json()
    assert listed["totalCount"] == 0  # nothing was written


def test_an_unknown_customer_is_400(world: Tenancy) -> None:
    response = world.post(
        "/engagements",
        {"customerId": "00000000-0000-4000-8000-000000000000", "contractTerms": TERMS},
    )
    problem(response, 400, field="customerId")


def test_the_lifecycle_needs_a_squad_and_refuses_illegal_moves(world: Tenancy) -> None:
    engagement = world.engagement()["engagementId"]
    no_squad = world.post(f"/engagements/{engagement}/activate")
    body = problem(no_squad, 409, code="illegal-transition")
    assert body["transition"]["action"] == "activate"
    squad = world.squad()
    assigned = world.post(
        f"/squads/{squad}/assign",
        {
            "engagementId": engagement,
            "hoursPerWeek": 10,
            "from": "2026-01-05",
            "to": "2026-02-27",
        },
    )
    assert assigned.status_code == 201, assigned.text
    active = world.post(f"/engagements/{engagement}/activate")
    assert active.status_code == 200, active.text
    assert active.json()["status"] == "Active"
    assert active.json()["squadId"] == squad
    edit = world.api.request(
        "PUT",
        f"/engagements/{engagement}",
        json={"customerId": world.customer, "contractTerms": TERMS},
        auth=world.pm,
    )
    assert problem(edit, 409, code="illegal-transition")["transition"]["from"] == "Active"
    assert world.post(f"/engagements/{engagement}/complete").json()["status"] == "Completed"
    problem(world.post(f"/engagements/{engagement}/cancel"), 409, code="illegal-transition")
    problem(world.post(f"/engagements/{engagement}/activate"), 409, code="illegal-transition")


def test_draft_terms_can_be_replaced_with_if_match(world: Tenancy) -> None:
    engagement = world.engagement()["engagementId"]
    changed = {**TERMS, "scope": "Build the portal and the app"}
    stale = world.api.request(
        "PUT",
        f"/engagements/{engagement}",
        headers={"If-Match": '"7"'},
        json={"customerId": world.customer, "contractTerms": changed},
        auth=world.pm,
    )
    problem(stale, 412)
    fresh = world.api.request(
        "PUT",
        f"/engagements/{engagement}",
        headers={"If-Match": '"1"'},
        json={"customerId": world.customer, "contractTerms": changed},
        auth=world.pm,
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["contractTerms"]["scope"] == "Build the portal and the app"
    assert fresh.headers["etag"] == '"2"'


def test_milestones_round_and_complete_exactly_once(world: Tenancy) -> None:
    engagement = world.engagement()["engagementId"]
    added = world.post(
        f"/engagements/{engagement}/milestones",
        {"name": "Design signed off", "dueDate": "2026-03-01", "amount": "1000.005"},
    )
    assert added.status_code == 201, added.text
    milestone = added.json()
    assert milestone["amount"] == "1000.00"  # half-even to cents
    outside = world.post(
        f"/engagements/{engagement}/milestones", {"name": "Late", "dueDate": "2027-01-01"}
    )
    problem(outside, 400, field="dueDate")
    path = f"/engagements/{engagement}/milestones/{milestone['milestoneId']}/complete"
    problem(world.post(path), 409, code="illegal-transition")  # a Draft engagement
    squad = world.squad()
    world.post(
        f"/squads/{squad}/assign",
        {"engagementId": engagement, "hoursPerWeek": 5, "from": "2026-01-05", "to": "2026-01-30"},
    )
    world.post(f"/engagements/{engagement}/activate")
    done = world.post(path)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "Completed"
    problem(world.post(path), 409, code="illegal-transition")
    problem(world.post(f"/engagements/{engagement}/milestones/{world.customer}/complete"), 404)
    events = world.api.request(
        "GET", "/audit/events", params={"type": "MilestoneCompleted"}, auth=world.admin
    ).json()
    assert events["totalCount"] == 1
    assert events["events"][0]["data"]["amount"] == "1000.00"
    listed = world.api.request("GET", f"/engagements/{engagement}/milestones", auth=world.pm)
    assert [m["status"] for m in listed.json()["milestones"]] == ["Completed"]


def test_lists_filter_by_status_and_customer(world: Tenancy) -> None:
    first = world.engagement()["engagementId"]
    world.engagement()
    world.post(f"/engagements/{first}/cancel", {"reason": "budget"})
    cancelled = world.api.request("GET", "/engagements?status=Cancelled", auth=world.pm).json()
    assert [e["engagementId"] for e in cancelled["engagements"]] == [first]
    by_customer = world.api.request(
        "GET", f"/engagements?customerId={world.customer}", auth=world.pm
    ).json()
    assert by_customer["totalCount"] == 2
    problem(
        world.api.request("GET", "/engagements?status=Dormant", auth=world.pm), 400, field="status"
    )


def test_roles_and_tenancy(world: Tenancy) -> None:
    engagement = world.engagement()["engagementId"]
    api, tenant = world.api, world.tenant
    for role in ("member", "squad-lead", "finance", "auditor"):
        problem(
            world.post(f"/engagements/{engagement}/cancel", auth=api.as_(role, tenant=tenant)), 403
        )
        read = api.request("GET", f"/engagements/{engagement}", auth=api.as_(role, tenant=tenant))
        assert read.status_code == 200
    other = api.provision()["tenantId"]
    stranger = api.as_("customer-admin", tenant=other)
    problem(api.request("GET", f"/engagements/{engagement}", auth=stranger), 404)
    problem(world.post(f"/engagements/{engagement}/cancel", auth=stranger), 404)
    assert api.request("GET", "/engagements", auth=stranger).json()["totalCount"] == 0
