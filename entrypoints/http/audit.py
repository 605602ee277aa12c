"""/api/v1/audit: the tenant's event log, for auditors."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from litestar import Response, Router, get
from litestar.params import Parameter

from application.context import Context
from application.queries import DEFAULT_LIMIT, AuditFilter, AuditQueries
from entrypoints.container import Services
from entrypoints.http.responses import page
from projections.formats import instant


@get("/events", sync_to_thread=False)
def events(
    ctx: Context, services: Services,
    aggregate_id: UUID | None = Parameter(query="aggregateId", default=None),
    type_: str | None = Parameter(query="type", default=None),
    actor: str | None = None,
    from_: datetime | None = Parameter(query="from", default=None),
    to: datetime | None = None,
    limit: int = DEFAULT_LIMIT, cursor: str | None = None,
) -> Response[bytes]:
    where = AuditFilter(
        aggregate_id=aggregate_id, type=type_, actor=actor,
        from_=from_ and instant(from_), to=to and instant(to),
    )
    return page("events", services.get(AuditQueries).events(ctx, where, limit=limit, cursor=cursor))


@get("/streams/{aggregate_id:uuid}", sync_to_thread=False)
def stream(
    aggregate_id: UUID, ctx: Context, services: Services,
    limit: int = DEFAULT_LIMIT, cursor: str | None = None,
) -> Response[bytes]:
    result = services.get(AuditQueries).stream(ctx, aggregate_id, limit=limit, cursor=cursor)
    return page("events", result)


@get("/streams/{aggregate_id:uuid}/state", sync_to_thread=False)
def state(aggregate_id: UUID, version: int, ctx: Context, services: Services) -> Response[object]:
    return Response(services.get(AuditQueries).state(ctx, aggregate_id, version))


router = Router(path="/audit", route_handlers=[events, stream, state], tags=["audit"])
