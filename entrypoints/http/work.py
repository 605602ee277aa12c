"""/api/v1/work: epics, stories, tasks and sprints of engagements."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from application.queries import DEFAULT_LIMIT
from application.work import (
    CreateEpic,
    CreateSprint,
    CreateStory,
    CreateTask,
    UpdateTask,
    WorkCommands,
    WorkQueries,
)
from entrypoints.http.deps import Ctx, Svc, answer
from entrypoints.http.responses import document, if_match, page

Req = Request[Any, Any, Any]
EngagementFilter = Annotated[UUID | None, QueryParameter(name="engagementId")]


def _commands(services: Svc) -> WorkCommands:
    return services.get(WorkCommands)


def _queries(services: Svc) -> WorkQueries:
    return services.get(WorkQueries)


# -- epics --------------------------------------------------------------------------------


@post("/epics", sync_to_thread=False, status_code=201)
def create_epic(data: JSONBody[CreateEpic], ctx: Ctx, services: Svc) -> Response[bytes]:
    written = _commands(services).create_epic(ctx, data)
    return answer(
        services, written, partial(_queries(services).epic, ctx), "/api/v1/work/epics", 201
    )


@get("/epics", sync_to_thread=False)
def list_epics(
    ctx: Ctx,
    services: Svc,
    engagement_id: EngagementFilter = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = _queries(services).epics(ctx, engagement_id=engagement_id, limit=limit, cursor=cursor)
    return page("epics", result)


@get("/epics/{epic_id:uuid}", sync_to_thread=False)
def get_epic(epic_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(_queries(services).epic(ctx, epic_id))


# -- stories ------------------------------------------------------------------------------


@post("/epics/{epic_id:uuid}/stories", sync_to_thread=False, status_code=201)
def create_story(
    epic_id: FromPath[UUID], data: JSONBody[CreateStory], ctx: Ctx, services: Svc
) -> Response[bytes]:
    written = _commands(services).create_story(ctx, epic_id, data)
    return answer(
        services, written, partial(_queries(services).story, ctx), "/api/v1/work/stories", 201
    )


@get("/epics/{epic_id:uuid}/stories", sync_to_thread=False)
def list_stories(
    epic_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    return page("stories", _queries(services).stories(ctx, epic_id, limit=limit, cursor=cursor))


@get("/stories/{story_id:uuid}", sync_to_thread=False)
def get_story(story_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(_queries(services).story(ctx, story_id))


# -- tasks --------------------------------------------------------------------------------


@post("/stories/{story_id:uuid}/tasks", sync_to_thread=False, status_code=201)
def create_task(
    story_id: FromPath[UUID], data: JSONBody[CreateTask], ctx: Ctx, services: Svc
) -> Response[bytes]:
    written = _commands(services).create_task(ctx, story_id, data)
    return answer(
        services, written, partial(_queries(services).task, ctx), "/api/v1/work/tasks", 201
    )


@get("/stories/{story_id:uuid}/tasks", sync_to_thread=False)
def list_tasks(
    story_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    status: FromQuery[str | None] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = _queries(services).tasks(
        ctx, story_id, status=status or None, limit=limit, cursor=cursor
    )
    return page("tasks", result)


@get("/tasks/{task_id:uuid}", sync_to_thread=False)
def get_task(task_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(_queries(services).task(ctx, task_id))


@put("/tasks/{task_id:uuid}", sync_to_thread=False, status_code=200)
def update_task(
    task_id: FromPath[UUID], data: JSONBody[UpdateTask], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = _commands(services).update_task(ctx, task_id, data, if_match(request))
    return answer(services, written, partial(_queries(services).task, ctx), "/api/v1/work/tasks")


# -- sprints ------------------------------------------------------------------------------


@post("/sprints", sync_to_thread=False, status_code=201)
def create_sprint(data: JSONBody[CreateSprint], ctx: Ctx, services: Svc) -> Response[bytes]:
    written = _commands(services).create_sprint(ctx, data)
    return answer(
        services, written, partial(_queries(services).sprint, ctx), "/api/v1/work/sprints", 201
    )


@get("/sprints", sync_to_thread=False)
def list_sprints(
    ctx: Ctx,
    services: Svc,
    engagement_id: EngagementFilter = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    result = _queries(services).sprints(
        ctx, engagement_id=engagement_id, limit=limit, cursor=cursor
    )
    return page("sprints", result)


@get("/sprints/{sprint_id:uuid}", sync_to_thread=False)
def get_sprint(sprint_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(_queries(services).sprint(ctx, sprint_id))


router = Router(
    path="/work",
    route_handlers=[
        create_epic,
        list_epics,
        get_epic,
        create_story,
        list_stories,
        get_story,
        create_task,
        list_tasks,
        get_task,
        update_task,
        create_sprint,
        list_sprints,
        get_sprint,
    ],
    tags=["work"],
)
