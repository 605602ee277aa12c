"""/api/v1/people: staff records."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from application.errors import InvalidRequest
from application.people import (
    MAX_PHOTO_BYTES,
    AssignUnit,
    CreatePerson,
    DeactivatePerson,
    PatchPerson,
    PeopleCommands,
)
from application.people_export import FORMATS, PeopleExport, to_csv
from application.queries import DEFAULT_LIMIT, PeopleFilter, PeopleQueries
from application.results import Written
from entrypoints.http.deps import Ctx, Svc, answer
from entrypoints.http.responses import document, if_match, page

Req = Request[Any, Any, Any]


def _person(services: Svc, ctx: Ctx, written: Written, status: int = 200) -> Response[bytes]:
    return answer(
        services,
        written,
        lambda i: services.get(PeopleQueries).get(ctx, i),
        "/api/v1/people",
        status,
    )


def _commands(services: Svc) -> PeopleCommands:
    return services.get(PeopleCommands)


@post("/", sync_to_thread=False, status_code=201)
def create(data: JSONBody[CreatePerson], ctx: Ctx, services: Svc) -> Response[bytes]:
    return _person(services, ctx, _commands(services).create(ctx, data), 201)


@get("/", sync_to_thread=False)
def list_people(
    ctx: Ctx,
    services: Svc,
    include_inactive: Annotated[bool, QueryParameter(name="includeInactive")] = False,
    unit: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    where = PeopleFilter(include_inactive=include_inactive, unit=unit or None, q=q or None)
    return page("people", services.get(PeopleQueries).list(ctx, where, limit=limit, cursor=cursor))


@get("/export", sync_to_thread=False)
def export(
    ctx: Ctx,
    services: Svc,
    format_: Annotated[str, QueryParameter(name="format")] = "json",
    profile: FromQuery[str] = "hr",
    include_inactive: Annotated[bool, QueryParameter(name="includeInactive")] = False,
) -> Response[Any]:
    if format_ not in FORMATS:
        raise InvalidRequest("format", f"must be one of {', '.join(FORMATS)}")
    records = services.get(PeopleExport).records(ctx, profile, include_inactive)
    if format_ == "csv":
        return Response(
            to_csv(records),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="people-{profile}.csv"'},
        )
    return Response({"profile": profile, "people": records, "totalCount": len(records)})


@get("/{person_id:uuid}", sync_to_thread=False)
def get_person(person_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(PeopleQueries).get(ctx, person_id))


@patch("/{person_id:uuid}", sync_to_thread=False)
def patch_person(
    person_id: FromPath[UUID], data: JSONBody[PatchPerson], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    return _person(
        services, ctx, _commands(services).patch(ctx, person_id, data, if_match(request))
    )


@post("/{person_id:uuid}/deactivate", sync_to_thread=False, status_code=200)
def deactivate(
    person_id: FromPath[UUID],
    data: JSONBody[DeactivatePerson],
    ctx: Ctx,
    services: Svc,
    request: Req,
) -> Response[bytes]:
    written = _commands(services).deactivate(ctx, person_id, data, if_match(request))
    return _person(services, ctx, written)


@post("/{person_id:uuid}/reactivate", sync_to_thread=False, status_code=200)
def reactivate(person_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req) -> Response[bytes]:
    return _person(services, ctx, _commands(services).reactivate(ctx, person_id, if_match(request)))


@put("/{person_id:uuid}/photo", status_code=200, request_max_body_size=MAX_PHOTO_BYTES)
async def upload_photo(
    person_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    """Raw image bytes in the body (not JSON). Async only to read the body; the command itself
    runs inline like every other handler's."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise HTTPException(
            status_code=415, detail="send the photo as image/png, image/jpeg or image/webp"
        )
    data = await request.body()
    written = _commands(services).upload_photo(
        ctx, person_id, content_type, data, if_match(request)
    )
    return _person(services, ctx, written)


@post("/{person_id:uuid}/photo/approve", sync_to_thread=False, status_code=200)
def approve_photo(
    person_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    return _person(
        services, ctx, _commands(services).approve_photo(ctx, person_id, if_match(request))
    )


@post("/{person_id:uuid}/units", sync_to_thread=False, status_code=200)
def assign_unit(
    person_id: FromPath[UUID], data: JSONBody[AssignUnit], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = _commands(services).assign_unit(ctx, person_id, data, if_match(request))
    return _person(services, ctx, written)


@delete("/{person_id:uuid}/units/{unit:str}", sync_to_thread=False, status_code=200)
def remove_unit(
    person_id: FromPath[UUID], unit: FromPath[str], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = _commands(services).remove_unit(ctx, person_id, unit, if_match(request))
    return _person(services, ctx, written)


router = Router(
    path="/people",
    route_handlers=[
        create,
        list_people,
        export,
        get_person,
        patch_person,
        deactivate,
        reactivate,
        upload_photo,
        approve_photo,
        assign_unit,
        remove_unit,
    ],
    tags=["people"],
)
