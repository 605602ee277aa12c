"""/api/v1/engagements: contracts between a customer and a squad, and their milestones."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from application.context import Context
from application.engagements import (
    AddMilestone,
    CancelEngagement,
    CreateEngagement,
    EngagementCommands,
    EngagementFilter,
    EngagementQueries,
    UpdateEngagement,
)
from application.queries import DEFAULT_LIMIT
from application.results import Written
from entrypoints.container import Services
from entrypoints.http.deps import Ctx, Svc, answer, settled
from entrypoints.http.responses import document, if_match, page, raw

Req = Request[Any, Any, Any]
NO_REASON = CancelEngagement()


def _engagement(
    services: Services, ctx: Context, written: Written, status: int = 200
) -> Response[bytes]:
    return answer(
        services,
        written,
        lambda i: services.get(EngagementQueries).get(ctx, i),
        "/api/v1/engagements",
        status,
    )


def _commands(services: Services) -> EngagementCommands:
    return services.get(EngagementCommands)


@post("/", sync_to_thread=False, status_code=201)
def create(data: JSONBody[CreateEngagement], ctx: Ctx, services: Svc) -> Response[bytes]:
    return _engagement(services, ctx, _commands(services).create(ctx, data), 201)


@get("/", sync_to_thread=False)
def list_engagements(
    ctx: Ctx,
    services: Svc,
    status: FromQuery[str | None] = None,
    customer_id: Annotated[UUID | None, QueryParameter(name="customerId")] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    where = EngagementFilter(status=status or None, customer_id=customer_id)
    result = services.get(EngagementQueries).list(ctx, where, limit=limit, cursor=cursor)
    return page("engagements", result)


@get("/{engagement_id:uuid}", sync_to_thread=False)
def get_engagement(engagement_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(EngagementQueries).get(ctx, engagement_id))


@put("/{engagement_id:uuid}", sync_to_thread=False)
def update(
    engagement_id: FromPath[UUID],
    data: JSONBody[UpdateEngagement],
    ctx: Ctx,
    services: Svc,
    request: Req,
) -> Response[bytes]:
    written = _commands(services).update(ctx, engagement_id, data, if_match(request))
    return _engagement(services, ctx, written)


@post("/{engagement_id:uuid}/activate", sync_to_thread=False, status_code=200)
def activate(
    engagement_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = _commands(services).activate(ctx, engagement_id, if_match(request))
    return _engagement(services, ctx, written)


@post("/{engagement_id:uuid}/complete", sync_to_thread=False, status_code=200)
def complete(
    engagement_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = _commands(services).complete(ctx, engagement_id, if_match(request))
    return _engagement(services, ctx, written)


@post("/{engagement_id:uuid}/cancel", sync_to_thread=False, status_code=200)
def cancel(
    engagement_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    request: Req,
    data: JSONBody[CancelEngagement | None] = None,
) -> Response[bytes]:
    written = _commands(services).cancel(ctx, engagement_id, data or NO_REASON, if_match(request))
    return _engagement(services, ctx, written)


def _milestones(services: Services, ctx: Context, engagement_id: UUID) -> list[dict[str, Any]]:
    doc = services.get(EngagementQueries).get(ctx, engagement_id)
    milestones: list[dict[str, Any]] = msgspec.json.decode(doc.doc)["milestones"]
    return milestones


@get("/{engagement_id:uuid}/milestones", sync_to_thread=False)
def list_milestones(engagement_id: FromPath[UUID], ctx: Ctx, services: Svc) -> dict[str, Any]:
    milestones = _milestones(services, ctx, engagement_id)
    return {"milestones": milestones, "totalCount": len(milestones), "nextCursor": None}


@post("/{engagement_id:uuid}/milestones", sync_to_thread=False, status_code=201)
def add_milestone(
    engagement_id: FromPath[UUID], data: JSONBody[AddMilestone], ctx: Ctx, services: Svc
) -> Response[bytes]:
    written, milestone_id = _commands(services).add_milestone(ctx, engagement_id, data)
    settled(services, written)
    wanted = str(milestone_id)
    milestone = next(
        m for m in _milestones(services, ctx, engagement_id) if m["milestoneId"] == wanted
    )
    response = raw(msgspec.json.encode(milestone), position=written.position, status=201)
    response.headers["Location"] = f"/api/v1/engagements/{engagement_id}/milestones"
    return response


@post(
    "/{engagement_id:uuid}/milestones/{milestone_id:uuid}/complete",
    sync_to_thread=False,
    status_code=200,
)
def complete_milestone(
    engagement_id: FromPath[UUID], milestone_id: FromPath[UUID], ctx: Ctx, services: Svc
) -> Response[bytes]:
    written = _commands(services).complete_milestone(ctx, engagement_id, milestone_id)
    settled(services, written)
    wanted = str(milestone_id)
    milestone = next(
        m for m in _milestones(services, ctx, engagement_id) if m["milestoneId"] == wanted
    )
    return raw(msgspec.json.encode(milestone), position=written.position)


router = Router(
    path="/engagements",
    route_handlers=[
        create,
        list_engagements,
        get_engagement,
        update,
        activate,
        complete,
        cancel,
        list_milestones,
        add_milestone,
        complete_milestone,
    ],
    tags=["engagements"],
)
