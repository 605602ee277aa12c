"""/api/v1/squads and /api/v1/assignments: squads, their capacity and their assignments."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from application.context import Context
from application.queries import DEFAULT_LIMIT
from application.results import Written
from application.squads import (
    AssignSquad,
    Capacity,
    CreateSquad,
    SquadCommands,
    SquadQueries,
    UpdateSquad,
)
from entrypoints.container import Services
from entrypoints.http.deps import Ctx, Svc, answer, settled
from entrypoints.http.responses import document, if_match, page, raw

Req = Request[Any, Any, Any]


def _squad(
    services: Services, ctx: Context, written: Written, status: int = 200
) -> Response[bytes]:
    return answer(
        services,
        written,
        lambda i: services.get(SquadQueries).get(ctx, i),
        "/api/v1/squads",
        status,
    )


def _assignment(
    services: Services, ctx: Context, written: Written, status: int = 200
) -> Response[bytes]:
    settled(services, written)
    doc = services.get(SquadQueries).assignment(ctx, written.id)
    response = raw(doc.doc, position=written.position, status=status)
    if written.created:
        response.headers["Location"] = f"/api/v1/assignments/{written.id}"
    return response


@post("/", sync_to_thread=False, status_code=201)
def create(data: JSONBody[CreateSquad], ctx: Ctx, services: Svc) -> Response[bytes]:
    return _squad(services, ctx, services.get(SquadCommands).create(ctx, data), 201)


@get("/", sync_to_thread=False)
def list_squads(
    ctx: Ctx,
    services: Svc,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    return page("squads", services.get(SquadQueries).list(ctx, limit=limit, cursor=cursor))


@get("/{squad_id:uuid}", sync_to_thread=False)
def get_squad(squad_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(SquadQueries).get(ctx, squad_id))


@put("/{squad_id:uuid}", sync_to_thread=False)
def update(
    squad_id: FromPath[UUID], data: JSONBody[UpdateSquad], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = services.get(SquadCommands).update(ctx, squad_id, data, if_match(request))
    return _squad(services, ctx, written)


@get("/{squad_id:uuid}/capacity", sync_to_thread=False)
def capacity(
    squad_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    on: Annotated[date | None, QueryParameter(name="weekOf")] = None,
) -> Capacity:
    return services.get(SquadQueries).capacity(ctx, squad_id, on)


@post("/{squad_id:uuid}/assign", sync_to_thread=False, status_code=201)
def assign(
    squad_id: FromPath[UUID], data: JSONBody[AssignSquad], ctx: Ctx, services: Svc
) -> Response[bytes]:
    written = services.get(SquadCommands).assign(ctx, squad_id, data)
    return _assignment(services, ctx, written, 201)


@delete("/{squad_id:uuid}/assignments/{assignment_id:uuid}", sync_to_thread=False, status_code=200)
def end_assignment(
    squad_id: FromPath[UUID], assignment_id: FromPath[UUID], ctx: Ctx, services: Svc
) -> Response[bytes]:
    written = services.get(SquadCommands).end_assignment(ctx, squad_id, assignment_id)
    return _assignment(services, ctx, written)


@get("/", sync_to_thread=False)
def list_assignments(
    ctx: Ctx,
    services: Svc,
    squad_id: Annotated[UUID | None, QueryParameter(name="squadId")] = None,
    engagement_id: Annotated[UUID | None, QueryParameter(name="engagementId")] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = services.get(SquadQueries).assignments(
        ctx, squad_id=squad_id, engagement_id=engagement_id, limit=limit, cursor=cursor
    )
    return page("assignments", result)


@get("/{assignment_id:uuid}", sync_to_thread=False)
def get_assignment(assignment_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return raw(services.get(SquadQueries).assignment(ctx, assignment_id).doc)


router = Router(
    path="/squads",
    route_handlers=[create, list_squads, get_squad, update, capacity, assign, end_assignment],
    tags=["squads"],
)
assignments_router = Router(
    path="/assignments", route_handlers=[list_assignments, get_assignment], tags=["squads"]
)
