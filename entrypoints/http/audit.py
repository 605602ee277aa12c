"""/api/v1/audit: the tenant's event log, for auditors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Response, Router, get
from litestar.params import FromPath, FromQuery, QueryParameter

from application.queries import DEFAULT_LIMIT, AuditFilter, AuditQueries
from entrypoints.http.deps import Ctx, Svc
from entrypoints.http.responses import page
from projections.formats import instant


@get("/events", sync_to_thread=False)
def events(
    ctx: Ctx,
    services: Svc,
    aggregate_id: Annotated[UUID | None, QueryParameter(name="aggregateId")] = None,
    type_: Annotated[str | None, QueryParameter(name="type")] = None,
    actor: FromQuery[str | None] = None,
    from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
    to: FromQuery[datetime | None] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    where = AuditFilter(
        aggregate_id=aggregate_id,
        type=type_,
        actor=actor,
        from_=from_ and instant(from_),
        to=to and instant(to),
    )
    return page("events", services.get(AuditQueries).events(ctx, where, limit=limit, cursor=cursor))


@get("/streams/{aggregate_id:uuid}", sync_to_thread=False)
def stream(
    aggregate_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = services.get(AuditQueries).stream(ctx, aggregate_id, limit=limit, cursor=cursor)
    return page("events", result)


@get("/streams/{aggregate_id:uuid}/state", sync_to_thread=False)
def state(
    aggregate_id: FromPath[UUID], version: FromQuery[int], ctx: Ctx, services: Svc
) -> Response[object]:
    return Response(services.get(AuditQueries).state(ctx, aggregate_id, version))


router = Router(path="/audit", route_handlers=[events, stream, state], tags=["audit"])
