"""/api/v1/people: staff records."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, QueryParameter

from application.people import (
    MAX_PHOTO_BYTES,
    AssignUnit,
    CreatePerson,
    DeactivatePerson,
    PatchPerson,
    PeopleCommands,
)
from application.queries import DEFAULT_LIMIT, PeopleFilter, PeopleQueries
from application.results import Written
from entrypoints.http.deps import Ctx, Svc, settled
from entrypoints.http.responses import document, if_match, page

Req = Request[Any, Any, Any]


def _person(services: Svc, ctx: Ctx, written: Written, status: int = 200) -> Response[bytes]:
    settled(services, written)
    doc = services.get(PeopleQueries).get(ctx, written.id)
    location = f"/api/v1/people/{written.id}" if written.created else None
    return document(doc, status=status, written=written, location=location)


def _commands(services: Svc) -> PeopleCommands:
    return services.get(PeopleCommands)


@post("/", sync_to_thread=False, status_code=201)
def create(data: CreatePerson, ctx: Ctx, services: Svc) -> Response[bytes]:
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


@get("/{person_id:uuid}", sync_to_thread=False)
def get_person(person_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(PeopleQueries).get(ctx, person_id))


@patch("/{person_id:uuid}", sync_to_thread=False)
def patch_person(
    person_id: FromPath[UUID], data: PatchPerson, ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    return _person(
        services, ctx, _commands(services).patch(ctx, person_id, data, if_match(request))
    )


@post("/{person_id:uuid}/deactivate", sync_to_thread=False, status_code=200)
def deactivate(
    person_id: FromPath[UUID], data: DeactivatePerson, ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = _commands(services).deactivate(ctx, person_id, data, if_match(request))
    return _person(services, ctx, written)


@post("/{person_id:uuid}/reactivate", sync_to_thread=False, status_code=200)
def reactivate(person_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req) -> Response[bytes]:
    return _person(services, ctx, _commands(services).reactivate(ctx, person_id, if_match(request)))


@put(
    "/{person_id:uuid}/photo",
    sync_to_thread=False,
    status_code=200,
    request_max_body_size=MAX_PHOTO_BYTES,
)
def upload_photo(
    person_id: FromPath[UUID], data: bytes, ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise HTTPException(
            status_code=415, detail="send the photo as image/png, image/jpeg or image/webp"
        )
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
    person_id: FromPath[UUID], data: AssignUnit, ctx: Ctx, services: Svc
) -> Response[bytes]:
    return _person(services, ctx, _commands(services).assign_unit(ctx, person_id, data))


@delete("/{person_id:uuid}/units/{unit:str}", sync_to_thread=False, status_code=200)
def remove_unit(
    person_id: FromPath[UUID], unit: FromPath[str], ctx: Ctx, services: Svc
) -> Response[bytes]:
    return _person(services, ctx, _commands(services).remove_unit(ctx, person_id, unit))


router = Router(
    path="/people",
    route_handlers=[
        create,
        list_people,
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
