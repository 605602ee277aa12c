"""Tenant use cases: provisioning (one or in bulk), details, lifecycle, subscription, settings."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from application.claims import change_claim, claim, optimistically, retry_once
from application.commands import Command
from application.context import Context
from application.errors import ApplicationError, NotFound
from application.event_log import EventLog
from application.ports import Clock, IdGenerator
from application.problems import invalid_input, problem_for
from application.results import Written
from domain.errors import DomainError
from domain.tenant import Tenant

NAME_SCOPE = "tenant.name"
MAX_BULK = 500


class ProvisionTenant(Command):
    name: str
    contact_email: str
    phone_number: str | None = None
    industry: str | None = None
    plan: str | None = None
    currency: str | None = None
    timezone: str | None = None


class ProvisionTenants(Command):
    # Items are decoded one by one, so a malformed item fails alone (API.md: bulk).
    tenants: Annotated[list[Any], msgspec.Meta(min_length=1, max_length=MAX_BULK)]


class UpdateTenant(Command):
    name: str
    contact_email: str
    phone_number: str | None = None
    industry: str | None = None


class ChangeTenantStatus(Command):
    reason: str | None = None


class ChangeSubscription(Command):
    plan: str
    seats: int
    status: str
    renews_on: date | None = None


class ChangeSettings(Command):
    currency: str
    timezone: str
    payment_terms_days: int
    invoice_prefix: str
    feature_flags: dict[str, bool] = {}


class BulkResult(msgspec.Struct, rename="camel", omit_defaults=True):
    index: int
    status: int
    tenant_id: UUID | None = None
    error: dict[str, Any] | None = None


def visible_to(ctx: Context, tenant: Tenant) -> bool:
    """Platform admins see every tenant, partner admins the ones they provisioned, tenant
    users their own. Anything else is reported as not found, never as forbidden."""
    principal = ctx.principal
    if principal.is_platform_admin:
        return True
    if principal.is_partner_admin and tenant.provisioned_by == principal.actor:
        return True
    return principal.tenant_id == tenant.id


class TenantCommands:
    def __init__(self, log: EventLog, clock: Clock, ids: IdGenerator) -> None:
        self._log = log
        self._clock = clock
        self._ids = ids

    def provision(self, ctx: Context, cmd: ProvisionTenant) -> Written:
        ctx.require("tenant:create")
        return optimistically(lambda assume_new: self._provision(ctx, cmd, assume_new))

    def _provision(self, ctx: Context, cmd: ProvisionTenant, assume_new: bool) -> Written:
        now = self._clock.now()
        tenant_id = self._ids.new_id()
        tenant = Tenant.provision(
            tenant_id=tenant_id,
            name=cmd.name,
            contact_email=cmd.contact_email,
            phone_number=cmd.phone_number,
            industry=cmd.industry,
            plan=cmd.plan,
            currency=cmd.currency,
            timezone=cmd.timezone,
            provisioned_by=ctx.principal.actor,
            at=now,
        )
        key = claim(
            self._log,
            assume_new=assume_new,
            scope=NAME_SCOPE,
            value=tenant.name,
            owner_id=tenant_id,
            tenant_id=tenant_id,
            platform_wide=True,
            at=now,
        )
        position = self._log.record(tenant, key, meta=ctx.meta)
        return Written(id=tenant_id, version=tenant.version, position=position, created=True)

    def provision_many(self, ctx: Context, cmd: ProvisionTenants) -> tuple[list[BulkResult], int]:
        """Each item succeeds or fails alone. Returns the results and the last position written."""
        ctx.require("tenant:create")
        results: list[BulkResult] = []
        position = 0
        for index, raw_item in enumerate(cmd.tenants):
            try:
                item = msgspec.convert(raw_item, ProvisionTenant)
                written = self.provision(ctx, item)
            except (DomainError, ApplicationError, msgspec.ValidationError) as error:
                problem = (
                    invalid_input(error)
                    if isinstance(error, msgspec.ValidationError)
                    else problem_for(error)
                )
                results.append(
                    BulkResult(
                        index=index,
                        status=problem["status"],
                        error={
                            k: v for k, v in problem.items() if k in ("code", "detail", "errors")
                        },
                    )
                )
            else:
                position = written.position
                results.append(BulkResult(index=index, status=201, tenant_id=written.id))
        return results, position

    def update(
        self, ctx: Context, tenant_id: UUID, cmd: UpdateTenant, if_match: int | None
    ) -> Written:
        ctx.require("tenant:write")

        def run() -> Written:
            now = self._clock.now()
            tenant = self._writable(ctx, tenant_id, if_match)
            old_name = tenant.name
            tenant.update(
                name=cmd.name,
                contact_email=cmd.contact_email,
                phone_number=cmd.phone_number,
                industry=cmd.industry,
                at=now,
            )
            keys = change_claim(
                self._log,
                scope=NAME_SCOPE,
                old=old_name,
                new=tenant.name,
                owner_id=tenant.id,
                tenant_id=tenant.id,
                platform_wide=True,
                at=now,
            )
            return self._save(ctx, tenant, *keys)

        return retry_once(run)

    def suspend(
        self, ctx: Context, tenant_id: UUID, cmd: ChangeTenantStatus, if_match: int | None
    ) -> Written:
        ctx.require("tenant:manage")
        tenant = self._visible(ctx, tenant_id, if_match)
        tenant.suspend(reason=cmd.reason, at=self._clock.now())
        return self._save(ctx, tenant)

    def reactivate(self, ctx: Context, tenant_id: UUID, if_match: int | None) -> Written:
        ctx.require("tenant:manage")
        tenant = self._visible(ctx, tenant_id, if_match)
        tenant.reactivate(at=self._clock.now())
        return self._save(ctx, tenant)

    def close(
        self, ctx: Context, tenant_id: UUID, cmd: ChangeTenantStatus, if_match: int | None
    ) -> Written:
        ctx.require("tenant:manage")
        tenant = self._visible(ctx, tenant_id, if_match)
        tenant.close(reason=cmd.reason, at=self._clock.now())
        return self._save(ctx, tenant)

    def change_subscription(
        self, ctx: Context, tenant_id: UUID, cmd: ChangeSubscription, if_match: int | None
    ) -> Written:
        ctx.require("tenant:write")
        tenant = self._writable(ctx, tenant_id, if_match)
        tenant.change_subscription(
            plan=cmd.plan,
            seats=cmd.seats,
            status=cmd.status,
            renews_on=cmd.renews_on,
            at=self._clock.now(),
        )
        return self._save(ctx, tenant)

    def change_settings(
        self, ctx: Context, tenant_id: UUID, cmd: ChangeSettings, if_match: int | None
    ) -> Written:
        ctx.require("tenant:write")
        tenant = self._writable(ctx, tenant_id, if_match)
        tenant.change_settings(
            currency=cmd.currency,
            timezone=cmd.timezone,
            payment_terms_days=cmd.payment_terms_days,
            invoice_prefix=cmd.invoice_prefix,
            feature_flags=cmd.feature_flags,
            at=self._clock.now(),
        )
        return self._save(ctx, tenant)

    # -- helpers --------------------------------------------------------------------------

    def _visible(self, ctx: Context, tenant_id: UUID, if_match: int | None) -> Tenant:
        tenant = self._log.load(Tenant, tenant_id)
        if tenant is None or not visible_to(ctx, tenant):
            raise NotFound("tenant", tenant_id)
        # Checked after visibility, so a version mismatch never reveals another tenant exists.
        self._log.check_version(tenant, if_match)
        return tenant

    def _writable(self, ctx: Context, tenant_id: UUID, if_match: int | None) -> Tenant:
        tenant = self._visible(ctx, tenant_id, if_match)
        if ctx.principal.tenant_id is not None:
            # A suspended tenant's own users may not change anything, its settings included.
            tenant.ensure_accepts_writes()
        return tenant

    def _save(self, ctx: Context, tenant: Tenant, *others: Aggregate) -> Written:
        position = self._log.record(tenant, *others, meta=ctx.meta)
        return Written(id=tenant.id, version=tenant.version, position=position)
