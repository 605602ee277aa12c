"""A small, varied workload through the application services (no HTTP), used by the
integration tests to fill an event log."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

from application.authorization import Principal, permissions_for
from application.billing import (
    BillingCommands,
    CreateInvoice,
    LineBody,
    RecordPayment,
    VoidInvoice,
)
from application.context import Context
from application.customers import CreateCustomer, CustomerCommands
from application.engagements import (
    AddMilestone,
    CancelEngagement,
    ContractTerms,
    CreateEngagement,
    EngagementCommands,
    Pricing,
    Timeline,
)
from application.people import (
    AssignUnit,
    CreatePerson,
    DeactivatePerson,
    PatchPerson,
    PeopleCommands,
)
from application.squads import AssignSquad, CreateSquad, SquadCommands
from application.tenants import ChangeSettings, ProvisionTenant, TenantCommands, UpdateTenant
from entrypoints.container import Services


def context(*roles: str, tenant: UUID | None = None, sub: str = "worker") -> Context:
    principal = Principal(
        subject=sub, tenant_id=tenant, roles=roles, permissions=permissions_for(roles)
    )
    return Context(principal=principal, request_id=f"req-{uuid4().hex[:8]}", tenant_id=tenant)


def run_delivery(services: Services, tenant_id: UUID, person_ids: list[UUID]) -> None:
    """A customer, two engagements with milestones, a squad staffed on them, a cancellation."""
    pm = context("project-manager", tenant=tenant_id, sub="pm")
    admin = context("customer-admin", tenant=tenant_id, sub="admin")
    customer = (
        services.get(CustomerCommands)
        .create(admin, CreateCustomer(name=f"Customer {uuid4().hex[:6]}"))
        .id
    )
    engagements = services.get(EngagementCommands)
    terms = ContractTerms(
        scope="Build it",
        pricing=Pricing(model="fixed-price", amount=Decimal("12000.50"), currency="EUR"),
        timeline=Timeline(start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)),
    )
    squad = (
        services.get(SquadCommands)
        .create(
            pm,
            CreateSquad(
                name="Alpha", capacity_hours_per_week=Decimal(40), member_ids=person_ids[:2]
            ),
        )
        .id
    )
    for n in range(2):
        engagement = engagements.create(
            pm, CreateEngagement(customer_id=customer, contract_terms=terms)
        ).id
        _, milestone = engagements.add_milestone(
            pm,
            engagement,
            AddMilestone(name=f"M{n}", due_date=date(2026, 6, 1), amount=Decimal("500")),
        )
        services.get(SquadCommands).assign(
            pm,
            squad,
            AssignSquad(
                engagement_id=engagement,
                hours_per_week=Decimal(15),
                from_=date(2026, 2, 2),
                to=date(2026, 5, 29),
            ),
        )
        engagements.activate(pm, engagement, None)
        if n == 0:
            engagements.complete_milestone(pm, engagement, milestone)
            services.follow()  # the milestone-billing policy drafts its invoice
            bill(services, tenant_id, customer)
        else:
            engagements.cancel(pm, engagement, CancelEngagement(reason="budget"), None)


def bill(services: Services, tenant_id: UUID, customer: UUID) -> None:
    """An invoice issued and partly paid, another voided."""
    finance = context("finance", tenant=tenant_id, sub="finance")
    billing = services.get(BillingCommands)
    for n in range(2):
        invoice = billing.create(
            finance,
            CreateInvoice(
                customer_id=customer,
                currency="EUR",
                lines=[
                    LineBody(
                        description="Work", quantity=Decimal("7.5"), unit_price=Decimal("99.99")
                    )
                ],
            ),
        ).id
        billing.issue(finance, invoice, None)
        if n == 0:
            billing.record_payment(
                finance,
                RecordPayment(
                    invoice_id=invoice,
                    amount=Decimal(100),
                    method="card",
                    received_on=date(2026, 3, 1),
                ),
            )
        else:
            billing.void(finance, invoice, VoidInvoice(), None)


def run_workload(services: Services, tenants: int = 3, people: int = 5) -> list[UUID]:
    """Provision tenants, hire and change people, and staff engagements; returns the tenant ids."""
    tenant_commands = services.get(TenantCommands)
    people_commands = services.get(PeopleCommands)
    admin = context("platform-admin")
    tenant_ids = []
    for t in range(tenants):
        hired: list[UUID] = []
        tid = tenant_commands.provision(
            admin, ProvisionTenant(name=f"Tenant {t} {uuid4().hex[:6]}", contact_email="a@b.co")
        ).id
        tenant_ids.append(tid)
        tenant_commands.update(
            admin,
            tid,
            UpdateTenant(name=f"Renamed {t} {uuid4().hex[:6]}", contact_email="c@d.co"),
            None,
        )
        tenant_commands.change_settings(
            admin,
            tid,
            ChangeSettings(
                currency="EUR",
                timezone="Europe/Paris",
                payment_terms_days=14,
                invoice_prefix="ACME",
                feature_flags={"beta": True},
            ),
            None,
        )
        hr = context("customer-admin", tenant=tid, sub=f"hr-{t}")
        for p in range(people):
            pid = people_commands.create(
                hr,
                CreatePerson(
                    first_name=f"P{p}",
                    last_name="Test",
                    email=f"p{p}@t{t}.example",
                    employee_reference=f"E{p}",
                    job_title="Dev",
                    employment_start_date=date(2026, 1, 1),
                    organisational_units=["eng"] if p % 2 else [],
                ),
            ).id
            hired.append(pid)
            people_commands.assign_unit(hr, pid, AssignUnit(unit="all-staff"), None)
            if p % 3 == 0:
                people_commands.patch(
                    hr, pid, PatchPerson(job_title="Lead", email=f"lead{p}@t{t}.example"), None
                )
            if p % 4 == 0:
                people_commands.deactivate(
                    hr, pid, DeactivatePerson(employment_end_date=date(2026, 6, 30)), None
                )
        run_delivery(services, tid, hired)
    return tenant_ids
