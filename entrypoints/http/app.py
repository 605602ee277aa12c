"""The Litestar application: routes, auth, problem+json, request ids, metrics, OpenAPI."""

from __future__ import annotations

import logging
import threading
from typing import Any

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from adapters.settings import Settings
from entrypoints.container import Services, build
from entrypoints.http import (
    api_keys,
    audit,
    billing,
    customers,
    engagements,
    invoice_downloads,
    people,
    recruitment,
    reports,
    squads,
    tenants,
    webhook_deliveries,
    webhooks,
    work,
)
from entrypoints.http.deps import DEPENDENCIES
from entrypoints.http.idempotency import idempotency_keys
from entrypoints.http.middleware import json_body_middleware, send_request_id
from entrypoints.http.operations import live, me, ready
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.rate_limits import send_rate_limit_headers

log = logging.getLogger("workledger")

MAX_JSON_BODY = 1024 * 1024


class MetricsController(PrometheusController):
    path = "/metrics"


def create_app(services: Services, *, follow_log: bool = True) -> Litestar:
    """The HTTP app over wired services. With `follow_log`, a background thread keeps the read
    models following writes made by other processes (this process's own writes are applied
    before each command answers), and the webhook dispatcher sends the outbox's deliveries
    (woken at once by this process's writes, polling for those of others)."""
    api = Router(
        path="/api/v1",
        route_handlers=[
            tenants.router,
            people.router,
            recruitment.router,
            customers.router,
            engagements.router,
            squads.router,
            squads.assignments_router,
            work.router,
            billing.router,
            invoice_downloads.router,
            reports.router,
            audit.router,
            api_keys.router,
            webhooks.router,
            webhook_deliveries.router,
        ],
    )
    stop = threading.Event()

    def start_follower() -> None:
        if follow_log:
            threading.Thread(
                target=_follow, args=(services, stop), name="projections", daemon=True
            ).start()
            services.dispatcher.start()

    def shutdown() -> None:
        stop.set()
        services.close()

    prometheus = PrometheusConfig(app_name="workledger", group_path=True)
    return Litestar(
        route_handlers=[api, me, live, ready, MetricsController],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[json_body_middleware, idempotency_keys(MAX_JSON_BODY), prometheus.middleware],
        before_send=[send_request_id, send_rate_limit_headers],
        openapi_config=OpenAPIConfig(title="workledger", version="1.0.0", path="/schema"),
        request_max_body_size=MAX_JSON_BODY,
        on_startup=[start_follower],
        on_shutdown=[shutdown],
        state=_state(services),
        debug=False,
        logging_config=None,  # the process configures logging (CLI), not the app
    )


def _state(services: Services) -> Any:
    from litestar.datastructures import State

    return State({"services": services})


def _follow(services: Services, stop: threading.Event, interval: float = 0.2) -> None:
    """Poll the log (SQLite has no subscription; PostgreSQL's LISTEN/NOTIFY can stall, so
    polling is the fallback anyway) and apply what other processes wrote."""
    while not stop.is_set():
        try:
            services.follow()
        except Exception:  # keep following; the next poll retries the same batch
            log.exception("projection catch-up failed")
        stop.wait(interval)


def app_from_environment(settings: Settings | None = None) -> Litestar:
    """The factory `workledger serve` hands to uvicorn (one per worker process)."""
    from adapters.settings import load_settings

    return create_app(build(settings or load_settings()))
