"""Tenant: a customer organisation, its lifecycle, subscription and settings.

Lifecycle: active <-> suspended, and either -> closed (terminal; history is kept).
Nothing inside a tenant that is not active may change; the tenant's own details may still be
corrected while it is suspended, but never once it is closed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import values
from domain.errors import IllegalTransition, InvalidValue, TenantNotActive
from domain.events import TenantEvent

PLANS = ("starter", "professional", "enterprise")
SUBSCRIPTION_STATUSES = ("trialing", "active", "past_due", "cancelled")
ACTIVE, SUSPENDED, CLOSED = "active", "suspended", "closed"


class Tenant(Aggregate):
    """A customer organisation. Its id is also its tenant id."""

    TOPIC = "workledger:Tenant"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:TenantCreated"
        webhook = "tenant.created"
        name: str
        contact_email: str
        phone_number: str | None
        industry: str | None
        plan: str
        currency: str
        timezone: str
        provisioned_by: str

    class Updated(Event):
        TOPIC = "workledger:TenantUpdated"
        webhook = "tenant.updated"
        name: str
        contact_email: str
        phone_number: str | None
        industry: str | None

        def apply(self, aggregate: Tenant) -> None:
            aggregate.name = self.name
            aggregate.contact_email = self.contact_email
            aggregate.phone_number = self.phone_number
            aggregate.industry = self.industry

    class Suspended(Event):
        TOPIC = "workledger:TenantSuspended"
        webhook = "tenant.suspended"
        reason: str | None

        def apply(self, aggregate: Tenant) -> None:
            aggregate.status = SUSPENDED

    class Reactivated(Event):
        TOPIC = "workledger:TenantReactivated"
        webhook = "tenant.reactivated"

        def apply(self, aggregate: Tenant) -> None:
            aggregate.status = ACTIVE

    class Closed(Event):
        TOPIC = "workledger:TenantClosed"
        webhook = "tenant.closed"
        reason: str | None

        def apply(self, aggregate: Tenant) -> None:
            aggregate.status = CLOSED

    class SubscriptionChanged(Event):
        TOPIC = "workledger:TenantSubscriptionChanged"
        webhook = "tenant.updated"
        plan: str
        seats: int
        status: str
        renews_on: date | None

        def apply(self, aggregate: Tenant) -> None:
            aggregate.plan = self.plan
            aggregate.seats = self.seats
            aggregate.subscription_status = self.status
            aggregate.renews_on = self.renews_on

    class SettingsChanged(Event):
        TOPIC = "workledger:TenantSettingsChanged"
        webhook = "tenant.updated"
        currency: str
        timezone: str
        payment_terms_days: int
        invoice_prefix: str
        feature_flags: dict[str, bool]

        def apply(self, aggregate: Tenant) -> None:
            aggregate.currency = self.currency
            aggregate.timezone = self.timezone
            aggregate.payment_terms_days = self.payment_terms_days
            aggregate.invoice_prefix = self.invoice_prefix
            aggregate.feature_flags = dict(self.feature_flags)

    def __init__(
        self,
        tenant_id: UUID,
        name: str,
        contact_email: str,
        phone_number: str | None,
        industry: str | None,
        plan: str,
        currency: str,
        timezone: str,
        provisioned_by: str,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.contact_email = contact_email
        self.phone_number = phone_number
        self.industry = industry
        self.status = ACTIVE
        self.provisioned_by = provisioned_by
        self.plan = plan
        self.seats = 1
        self.subscription_status = "active"
        self.renews_on: date | None = None
        self.currency = currency
        self.timezone = timezone
        self.payment_terms_days = 30
        self.invoice_prefix = "INV"
        self.feature_flags: dict[str, bool] = {}

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def provision(
        cls,
        *,
        tenant_id: UUID,
        name: str,
        contact_email: str,
        phone_number: str | None,
        industry: str | None,
        plan: str | None,
        currency: str | None,
        timezone: str | None,
        provisioned_by: str,
        at: datetime,
    ) -> Tenant:
        """A new, active tenant. Defaults: plan starter, USD, UTC."""
        return cls._create(
            cls.Created,
            id=tenant_id,
            tenant_id=tenant_id,
            name=values.required_text("name", name),
            contact_email=values.email("contactEmail", contact_email),
            phone_number=values.phone_number("phoneNumber", phone_number),
            industry=values.optional_text("industry", industry),
            plan=values.one_of("plan", plan or "starter", PLANS),
            currency=values.currency("currency", currency or "USD"),
            timezone=values.timezone_name("timezone", timezone or "UTC"),
            provisioned_by=provisioned_by,
            timestamp=at,
        )

    def update(
        self,
        *,
        name: str,
        contact_email: str,
        phone_number: str | None,
        industry: str | None,
        at: datetime,
    ) -> None:
        self._refuse_if_closed("update")
        details = {
            "name": values.required_text("name", name),
            "contact_email": values.email("contactEmail", contact_email),
            "phone_number": values.phone_number("phoneNumber", phone_number),
            "industry": values.optional_text("industry", industry),
        }
        if details == self._details():
            return  # a PUT of what is already there records nothing
        self.trigger_event(self.Updated, tenant_id=self.tenant_id, timestamp=at, **details)

    def suspend(self, *, reason: str | None, at: datetime) -> None:
        if self.status != ACTIVE:
            raise IllegalTransition("tenant", "suspend", self.status)
        self.trigger_event(
            self.Suspended,
            tenant_id=self.tenant_id,
            timestamp=at,
            reason=values.optional_text("reason", reason, 500),
        )

    def reactivate(self, *, at: datetime) -> None:
        if self.status != SUSPENDED:
            raise IllegalTransition("tenant", "reactivate", self.status)
        self.trigger_event(self.Reactivated, tenant_id=self.tenant_id, timestamp=at)

    def close(self, *, reason: str | None, at: datetime) -> None:
        self._refuse_if_closed("close")
        self.trigger_event(
            self.Closed,
            tenant_id=self.tenant_id,
            timestamp=at,
            reason=values.optional_text("reason", reason, 500),
        )

    def change_subscription(
        self, *, plan: str, seats: int, status: str, renews_on: date | None, at: datetime
    ) -> None:
        self._refuse_if_closed("change the subscription of")
        if seats < 1 or seats > 1_000_000:
            raise InvalidValue("seats", "must be between 1 and 1000000")
        self.trigger_event(
            self.SubscriptionChanged,
            tenant_id=self.tenant_id,
            timestamp=at,
            plan=values.one_of("plan", plan, PLANS),
            seats=seats,
            status=values.one_of("status", status, SUBSCRIPTION_STATUSES),
            renews_on=renews_on,
        )

    def change_settings(
        self,
        *,
        currency: str,
        timezone: str,
        payment_terms_days: int,
        invoice_prefix: str,
        feature_flags: dict[str, bool],
        at: datetime,
    ) -> None:
        self._refuse_if_closed("change the settings of")
        if not 0 <= payment_terms_days <= 365:
            raise InvalidValue("paymentTermsDays", "must be between 0 and 365")
        prefix = values.required_text("invoicePrefix", invoice_prefix, 12)
        if not prefix.replace("-", "").isalnum():
            raise InvalidValue("invoicePrefix", "must be letters, digits and '-' only")
        flags = {
            values.required_text("featureFlags", name, 64): on for name, on in feature_flags.items()
        }
        if len(flags) != len(feature_flags):
            raise InvalidValue("featureFlags", "names must differ after trimming spaces")
        self.trigger_event(
            self.SettingsChanged,
            tenant_id=self.tenant_id,
            timestamp=at,
            currency=values.currency("currency", currency),
            timezone=values.timezone_name("timezone", timezone),
            payment_terms_days=payment_terms_days,
            invoice_prefix=prefix,
            feature_flags=flags,
        )

    # -- queries --------------------------------------------------------------------------

    def ensure_accepts_writes(self) -> None:
        """Raise unless data inside this tenant may change (it is active)."""
        if self.status != ACTIVE:
            raise TenantNotActive(self.status)

    def _refuse_if_closed(self, action: str) -> None:
        if self.status == CLOSED:
            raise IllegalTransition("tenant", action, CLOSED)

    def _details(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "contact_email": self.contact_email,
            "phone_number": self.phone_number,
            "industry": self.industry,
        }
