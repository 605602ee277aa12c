"""The `workledger` command: serve, token, replay, worker.

click does argument parsing, help and errors; settings errors stop with one line naming the
setting (exit status 2).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from uuid import UUID

import click

from adapters.settings import Settings, SettingsError, load_settings
from application.authorization import PLATFORM_ROLES, ROLE_PERMISSIONS


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        click.echo(f"workledger: bad setting {error}", err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """workledger: the event-sourced core of an employment-services business."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Run the API, the projections and the webhook dispatcher."""
    import uvicorn

    settings = _settings()
    from entrypoints.container import build

    build(settings).close()  # create tables once, and fail here (not in a worker) if misconfigured
    store = "PostgreSQL" if settings.is_postgres else f"SQLite at {settings.sqlite_path}"
    click.echo(f"workledger listening on http://{host}:{port}  (event store: {store})")
    click.echo("get a token:  workledger token --role platform-admin")
    click.echo(f"API docs:     http://{host}:{port}/schema")
    uvicorn.run(
        "entrypoints.http.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@main.command()
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(sorted(ROLE_PERMISSIONS)),
    help="repeat for several roles",
)
@click.option("--tenant", "tenant", default=None, help="tenant id (required for tenant roles)")
@click.option("--sub", "subject", default="local-admin", show_default=True)
@click.option(
    "--ttl", default=3600, show_default=True, type=click.IntRange(1, 31 * 24 * 3600), help="seconds"
)
def token(roles: tuple[str, ...], tenant: str | None, subject: str, ttl: int) -> None:
    """Print a token the local server accepts."""
    tenant_id = None
    if tenant is not None:
        try:
            tenant_id = UUID(tenant)
        except ValueError:
            raise click.BadParameter(
                "must be a tenant id (a UUID)", param_hint="--tenant"
            ) from None
    if tenant_id is None and not set(roles) <= PLATFORM_ROLES:
        raise click.BadParameter("tenant roles need --tenant", param_hint="--tenant")
    settings = _settings()
    from adapters.tokens import JwtTokens

    tokens = JwtTokens(
        secret=settings.jwt_secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    click.echo(
        tokens.mint(
            subject=subject,
            roles=list(roles),
            tenant_id=tenant_id,
            ttl_seconds=ttl,
            now=datetime.now(UTC),
        )
    )


@main.command()
def replay() -> None:
    """Rebuild every read model from the event log."""
    from entrypoints.container import build

    services = build(_settings())
    try:
        started = time.perf_counter()
        position = services.projections.replay()
        seconds = time.perf_counter() - started
        click.echo(
            f"replayed {', '.join(services.projections.names)} to position {position}"
            f" in {seconds:.2f}s"
        )
    finally:
        services.close()


@main.command()
@click.option("--interval", default=0.2, show_default=True, type=click.FloatRange(0.01, 60))
def worker(interval: float) -> None:
    """Run the projections, policies and the webhook dispatcher, without HTTP."""
    from entrypoints.container import build

    services = build(_settings())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"workledger worker following the log (position {services.projections.position()})")
    services.dispatcher.start()
    try:
        while not stop.is_set():
            try:
                services.follow()
            except Exception:  # the database went away for a moment: the next poll retries
                logging.getLogger("workledger").exception("catch-up failed")
            stop.wait(interval)
    finally:
        services.close()  # stops the dispatcher first


if __name__ == "__main__":
    main()
