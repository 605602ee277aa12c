"""The composition root: the one place that picks adapters and wires the application (punq).

Every entrypoint (HTTP app, worker, CLI) builds its object graph here. When tenants are spread
over cells (a store per group of tenants), the choice of store per tenant belongs here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import punq

from adapters.api_key_hashes import SqlApiKeyHashes
from adapters.api_key_usage import BufferedApiKeyUsage
from adapters.blobs import SqlBlobStore
from adapters.event_store import ensure_schema, open_event_log, postgres_conninfo
from adapters.idempotency_store import SqlIdempotencyStore
from adapters.network import WebhookTargetPolicy
from adapters.pdf import FpdfInvoiceRenderer
from adapters.rate_limits import CachedTenantPlans, LimitsRateLimitStore
from adapters.settings import Settings, postgres_parts
from adapters.sql import PostgresDatabase, SqliteDatabase
from adapters.system import RandomIds, SystemClock, SystemEntropy
from adapters.tokens import JwtTokens
from adapters.webhook_secrets import SqlWebhookSecrets
from adapters.webhook_sender import AiohttpWebhookSender
from application.api_keys import (
    ApiKeyAuthenticator,
    ApiKeyCommands,
    ApiKeyHashes,
    ApiKeyQueries,
    ApiKeyReadModel,
    ApiKeyUsage,
    KeyHasher,
)
from application.billing import BillingCommands, BillingQueries, BillingReadModel
from application.customers import CustomerCommands, CustomerQueries, CustomerReadModel
from application.engagements import EngagementCommands, EngagementQueries, EngagementReadModel
from application.event_log import EventLog
from application.invoice_documents import InvoiceDownloads, InvoiceRenderer
from application.people import PeopleCommands
from application.people_export import PeopleExport
from application.ports import (
    BlobStore,
    Clock,
    Entropy,
    IdempotencyStore,
    IdGenerator,
    SqlDatabase,
    TokenVerifier,
    WebhookSecrets,
    WebhookTargets,
)
from application.queries import (
    AuditQueries,
    AuditReadModel,
    PeopleQueries,
    PeopleReadModel,
    StateRenderer,
    TenantQueries,
    TenantReadModel,
)
from application.rate_limits import RateLimitPolicy, RateLimits, RateLimitStore, TenantPlans
from application.recruitment import RecruitmentImport
from application.reports import ReportQueries, ReportsReadModel
from application.squads import SquadCommands, SquadQueries, SquadReadModel
from application.tenants import TenantCommands
from application.webhook_deliveries import DeliveryReadModel, WebhookDeliveries
from application.webhook_dispatcher import Dispatcher
from application.webhooks import WebhookCommands, WebhookQueries, WebhookReadModel
from application.work import WorkCommands, WorkQueries, WorkReadModel
from projections.api_keys import ApiKeysProjection, ApiKeysView
from projections.audit import AuditProjection, AuditView, render_state
from projections.billing import BillingProjection, BillingView
from projections.customers import CustomersProjection, CustomersView
from projections.engagements import EngagementsProjection, EngagementsView
from projections.outbox import OUTBOX_LOCK_KEY, OutboxProjection
from projections.people import PeopleProjection, PeopleView
from projections.policies import MilestoneBilling, PolicyRunner
from projections.reports import ReportsProjection, ReportsView
from projections.runner import Projection, ProjectionRunner
from projections.squads import SquadsProjection, SquadsView
from projections.tenants import TenantsProjection, TenantsView
from projections.webhook_deliveries import SqlDeliveries
from projections.webhooks import WebhooksProjection, WebhooksView
from projections.work import WorkProjection, WorkView

T = TypeVar("T")


@dataclass
class Services:
    """The wired application, as entrypoints use it."""

    settings: Settings
    container: punq.Container
    log: EventLog
    db: SqlDatabase
    projections: ProjectionRunner
    tokens: JwtTokens
    policies: PolicyRunner
    # The webhook outbox (its own runner: never replayed) and the dispatcher that sends it.
    outbox: ProjectionRunner
    dispatcher: Dispatcher

    def get(self, cls: type[T]) -> T:
        resolved: T = self.container.resolve(cls)
        return resolved

    def follow(self) -> None:
        """Bring read models and policies up to the log's head (the follower's and worker's
        loop body): projections first, then policies, then the projections of what the
        policies wrote, then the webhook outbox."""
        self.projections.catch_up()
        if self.policies.catch_up():
            self.projections.catch_up()
        # The dispatcher catches the outbox up before each claim too; this keeps deliveries
        # listed promptly where no dispatcher runs.
        self.outbox.catch_up()

    def close(self) -> None:
        self.dispatcher.close()  # sends in flight finish (or are left to their lease) first
        self.get(ApiKeyUsage).close()  # writes the last usage counts, so before the database
        self.db.close()
        self.log.close()


def open_database(settings: Settings) -> SqlDatabase:
    if settings.is_postgres:
        ensure_schema(settings)
        schema = postgres_parts(settings.database_url)["schema"] or None
        return PostgresDatabase(postgres_conninfo(settings), schema=schema)
    return SqliteDatabase(settings.sqlite_path)


def projections() -> list[Projection]:
    """Every read model, in the order a batch applies them."""
    return [
        TenantsProjection(),
        PeopleProjection(),
        CustomersProjection(),
        EngagementsProjection(),
        SquadsProjection(),
        WorkProjection(),
        BillingProjection(),
        ReportsProjection(),
        WebhooksProjection(),
        ApiKeysProjection(),
        AuditProjection(),
    ]


def build(settings: Settings) -> Services:
    log = open_event_log(settings)
    db = open_database(settings)
    blobs = SqlBlobStore(db)
    blobs.setup()
    idempotency = SqlIdempotencyStore(db)
    idempotency.setup()
    webhook_secrets = SqlWebhookSecrets(db)
    webhook_secrets.setup()
    api_key_hashes = SqlApiKeyHashes(db)
    api_key_hashes.setup()
    api_key_usage = BufferedApiKeyUsage(db)
    api_key_usage.setup()
    runner = ProjectionRunner(log, db, projections())
    runner.setup()
    tokens = JwtTokens(
        secret=settings.jwt_secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        jwks_url=settings.jwks_url,
    )

    c = punq.Container()
    c.register(Settings, instance=settings)
    c.register(EventLog, instance=log)
    c.register(SqlDatabase, instance=db)
    c.register(BlobStore, instance=blobs)
    c.register(IdempotencyStore, instance=idempotency)
    c.register(Clock, instance=SystemClock())
    c.register(IdGenerator, instance=RandomIds())
    c.register(Entropy, instance=SystemEntropy())
    c.register(TokenVerifier, instance=tokens)
    c.register(ProjectionRunner, instance=runner)
    c.register(TenantReadModel, instance=TenantsView(db))
    c.register(PeopleReadModel, instance=PeopleView(db))
    c.register(AuditReadModel, instance=AuditView(db))
    c.register(CustomerReadModel, instance=CustomersView(db))
    c.register(EngagementReadModel, instance=EngagementsView(db))
    c.register(SquadReadModel, instance=SquadsView(db))
    c.register(WorkReadModel, instance=WorkView(db))
    c.register(BillingReadModel, instance=BillingView(db))
    c.register(ReportsReadModel, instance=ReportsView(db))
    c.register(InvoiceRenderer, instance=FpdfInvoiceRenderer())
    c.register(StateRenderer, instance=render_state)
    c.register(ApiKeyHashes, instance=api_key_hashes)
    c.register(ApiKeyUsage, instance=api_key_usage)
    c.register(ApiKeyReadModel, instance=ApiKeysView(db))
    c.register(KeyHasher, instance=KeyHasher(settings.api_key_secret))
    c.register(RateLimitStore, instance=LimitsRateLimitStore(settings.redis_url))
    c.register(TenantPlans, instance=CachedTenantPlans(TenantsView(db)))
    c.register(
        RateLimitPolicy,
        instance=RateLimitPolicy(plan_limits=settings.tenant_rate_limits)
        if settings.tenant_rate_limits
        else RateLimitPolicy(),
    )
    c.register(WebhookSecrets, instance=webhook_secrets)
    c.register(WebhookTargets, instance=WebhookTargetPolicy(settings.webhook_allow_private_targets))
    c.register(WebhookReadModel, instance=WebhooksView(db))
    for service in (
        TenantCommands,
        PeopleCommands,
        RecruitmentImport,
        TenantQueries,
        PeopleQueries,
        PeopleExport,
        AuditQueries,
        CustomerCommands,
        CustomerQueries,
        EngagementCommands,
        EngagementQueries,
        SquadCommands,
        SquadQueries,
        WorkCommands,
        WorkQueries,
        BillingCommands,
        BillingQueries,
        InvoiceDownloads,
        ReportQueries,
        ApiKeyCommands,
        ApiKeyQueries,
        ApiKeyAuthenticator,
        RateLimits,
        WebhookCommands,
        WebhookQueries,
    ):
        c.register(service, scope=punq.Scope.singleton)
    policies = PolicyRunner(log, db, [MilestoneBilling(c.resolve(BillingCommands))])
    policies.setup()
    outbox, dispatcher = _webhook_delivery(settings, log, db, c)
    return Services(
        settings=settings,
        container=c,
        log=log,
        db=db,
        projections=runner,
        tokens=tokens,
        policies=policies,
        outbox=outbox,
        dispatcher=dispatcher,
    )


def _webhook_delivery(
    settings: Settings, log: EventLog, db: SqlDatabase, c: punq.Container
) -> tuple[ProjectionRunner, Dispatcher]:
    """The outbox's runner and the dispatcher (started by `serve` and `worker`, not here)."""
    outbox = ProjectionRunner(log, db, [OutboxProjection(log)], lock_key=OUTBOX_LOCK_KEY)
    outbox.setup()
    deliveries = SqlDeliveries(db)
    c.register(DeliveryReadModel, instance=deliveries)
    c.register(WebhookDeliveries, scope=punq.Scope.singleton)
    dispatcher = Dispatcher(
        deliveries,
        lambda: AiohttpWebhookSender(allow_private=settings.webhook_allow_private_targets),
        c.resolve(WebhookSecrets),
        log,
        c.resolve(Clock),
        schedule=settings.webhook_retry_schedule,
        prepare=outbox.catch_up,
    )
    return outbox, dispatcher
