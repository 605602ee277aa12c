"""A small, varied workload through the application services (no HTTP), used by the
integration tests to fill an event log."""

from __future__ import annotations

from datetime import date
from uuid import UUID, uuid4

from application.authorization import Principal, permissions_for
from application.context import Context
from application.people import (
    AssignUnit,
    CreatePerson,
    DeactivatePerson,
    PatchPerson,
    PeopleCommands,
)
from application.tenants import ChangeSettings, ProvisionTenant, TenantCommands, UpdateTenant
from entrypoints.container import Services


def context(*roles: str, tenant: UUID | None = None, sub: str = "worker") -> Context:
    principal = Principal(
        subject=sub, tenant_id=tenant, roles=roles, permissions=permissions_for(roles)
    )
    return Context(principal=principal, request_id=f"req-{uuid4().hex[:8]}", tenant_id=tenant)


def run_workload(services: Services, tenants: int = 3, people: int = 5) -> list[UUID]:
    """Provision tenants, hire and change people; returns the tenant ids."""
    tenant_commands = services.get(TenantCommands)
    people_commands = services.get(PeopleCommands)
    admin = context("platform-admin")
    tenant_ids = []
    for t in range(tenants):
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
            people_commands.assign_unit(hr, pid, AssignUnit(unit="all-staff"), None)
            if p % 3 == 0:
                people_commands.patch(
                    hr, pid, PatchPerson(job_title="Lead", email=f"lead{p}@t{t}.example"), None
                )
            if p % 4 == 0:
                people_commands.deactivate(
                    hr, pid, DeactivatePerson(employment_end_date=date(2026, 6, 30)), None
                )
    return tenant_ids
