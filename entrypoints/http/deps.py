"""Dependencies every route shares: the wired services and the caller's context."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from litestar import Request, Response
from litestar.di import NamedDependency, Provide

from application.context import Context
from application.errors import InvalidRequest, ReadModelsBehind
from application.queries import Document
from application.results import Written
from entrypoints.container import Services
from entrypoints.http.auth import context_for, principal_of
from entrypoints.http.rate_limits import enforce_rate_limits
from entrypoints.http.responses import document

log = logging.getLogger("workledger.http")


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def provide_ctx(request: Request[Any, Any, Any]) -> Context:
    services = services_of(request)
    principal = principal_of(request, services)
    enforce_rate_limits(request, services, principal)
    ctx = context_for(request, principal)
    _wait_for_position(request, services)
    return ctx


def _wait_for_position(request: Request[Any, Any, Any], services: Services) -> None:
    """A read may send the X-Log-Position a write answered (possibly from another process) and
    will see at least that write: the read models are brought up to it first."""
    wanted = request.headers.get("x-log-position")
    if wanted is None or request.method != "GET":
        return
    try:
        position = int(wanted)
    except ValueError:
        raise InvalidRequest("X-Log-Position", "must be a whole number") from None
    # Never wait past the log's head: a position from the future cannot be waited for.
    services.projections.catch_up(min(max(position, 0), services.log.head()))


def provide_services(request: Request[Any, Any, Any]) -> Services:
    return services_of(request)


def settle(services: Services, position: int) -> None:
    """Read-your-writes: bring the read models up to a command's last event before answering.

    If that fails the write still stands: the client is told so (503 with the position), never
    a 500 that would invite it to write again."""
    try:
        services.projections.catch_up(position)
    except Exception as error:
        log.exception("read models could not reach position %s", position)
        raise ReadModelsBehind(position) from error
    try:
        # What the write set off (a milestone's invoice) is visible when the client reads next.
        if services.policies.catch_up():
            services.projections.catch_up()
    except Exception:  # the follower retries; the client's own write is settled already
        log.exception("policies could not follow position %s", position)
    # The write may have webhook deliveries to make and send: no need to wait for a poll.
    services.dispatcher.wake()


def settled(services: Services, written: Written) -> Written:
    settle(services, written.position)
    return written


def answer(
    services: Services,
    written: Written,
    read: Callable[[UUID], Document],
    collection: str,
    status: int = 200,
) -> Response[bytes]:
    """The answer to a command: once the read models hold the write, the resource as it now
    reads, with its ETag and X-Log-Position, and a Location under `collection` if it is new."""
    settled(services, written)
    location = f"{collection}/{written.id}" if written.created else None
    return document(read(written.id), status=status, written=written, location=location)


DEPENDENCIES = {
    "ctx": Provide(provide_ctx, sync_to_thread=False),
    "services": Provide(provide_services, sync_to_thread=False),
}

# Handler parameters name their dependencies explicitly (Litestar 3 drops inferred ones).
Ctx = NamedDependency[Context]
Svc = NamedDependency[Services]
