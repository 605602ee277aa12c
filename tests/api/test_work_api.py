"""Black-box tests of /api/v1/work: epics, stories, tasks and sprints; task status transitions;
milestones that complete by themselves exactly once, also under concurrent completions; roles
and tenant isolation; the audit trail (API.md, "Customers, engagements, squads, work").

Engagements are made through the domain here (their HTTP API lives elsewhere), and the app is
wired in this module with the work services and read model.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import punq
import pytest
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.testing import TestClient

from application.context import EventMeta
from application.work import WorkCommands, WorkQueries, WorkReadModel
from domain.engagement import Engagement, Terms
from entrypoints.container import Services
from entrypoints.http import audit, people, tenants, work
from entrypoints.http.deps import DEPENDENCIES
from entrypoints.http.middleware import json_body_middleware, send_request_id
from entrypoints.http.problems import EXCEPTION_HANDLERS
from projections.audit import AuditProjection
from projections.people import PeopleProjection
from projections.runner import ProjectionRunner
from projections.tenants import TenantsProjection
from projections.work import WorkProjection, WorkView
from tests.api.problems import problem
from tests.conftest import Api

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SETUP = EventMeta(actor="user:setup", request_id="setup")
WRITERS = ("customer-admin", "project-manager", "squad-lead", "member")


# -- wiring (until entrypoints/container.py and app.py know about work) -------------------


def wire(services: Services) -> Services:
    """Register the work services and run the work projection next to the others."""
    c = services.container
    c.register(WorkReadModel, instance=WorkView(services.db))
    c.register(WorkCommands, scope=punq.Scope.singleton)
    c.register(WorkQueries, scope=punq.Scope.singleton)
    runner = ProjectionRunner(
        services.log,
        services.db,
        [TenantsProjection(), PeopleProjection(), AuditProjection(), WorkProjection()],
    )
    runner.setup()
    c.register(ProjectionRunner, instance=runner)
    services.projections = runner
    return services


def app_for(services: Services) -> Litestar:
    api = Router(
        path="/api/v1",
        route_handlers=[work.router, tenants.router, people.router, audit.router],
    )
    return Litestar(
        route_handlers=[api],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[send_request_id],
        middleware=[json_body_middleware],
        state=State({"services": services}),
    )


@pytest.fixture
def client_for() -> Iterator[Callable[[Services], Api]]:
    clients: list[TestClient[Any]] = []

    def make(services: Services) -> Api:
        client = TestClient(app_for(wire(services)))
        client.__enter__()
        clients.append(client)
        return Api(client, services)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(services: Services, client_for: Callable[[Services], Api]) -> Api:
    """Over SQLite and PostgreSQL (conftest's `database_url`)."""
    return client_for(services)


@pytest.fixture
def sqlite_api(sqlite_services: Services, client_for: Callable[[Services], Api]) -> Api:
    """Over SQLite only: for contract details where the store is immaterial."""
    return client_for(sqlite_services)


# -- helpers ------------------------------------------------------------------------------


class Engaged:
    """A tenant with an engagement (made through the domain) and its milestones."""

    def __init__(
        self,
        api: Api,
        *,
        milestones: int = 1,
        activate: bool = True,
        tenant_id: str | None = None,
    ) -> None:
        self.api = api
        self.tenant_id = tenant_id or api.provision()["tenantId"]
        now = datetime.now(UTC)
        engagement = Engagement.draft(
            engagement_id=uuid.uuid4(),
            tenant_id=uuid.UUID(self.tenant_id),
            terms=Terms(
                customer_id=uuid.uuid4(),
                project_id=None,
                scope="Build the portal",
                pricing_model="fixed-price",
                amount=Decimal("50000.00"),
                currency="USD",
                start_date=date(2026, 1, 1),
                end_date=date(2026, 12, 31),
            ),
            squad_id=uuid.uuid4(),
            at=now,
        )
        self.milestone_ids = []
        for n in range(milestones):
            milestone_id = uuid.uuid4()
            engagement.add_milestone(
                milestone_id=milestone_id,
                name=f"Milestone {n}",
                due_date=date(2026, 6, 30),
                amount=Decimal("1000.00"),
                at=now,
            )
            self.milestone_ids.append(str(milestone_id))
        if activate:
            engagement.activate(at=now)
        api.services.log.record(engagement, meta=SETUP)
        self.engagement_id = str(engagement.id)
        self.pm = api.as_("project-manager", tenant=self.tenant_id, sub="pm")

    def engagement(self) -> Engagement:
        loaded = self.api.services.log.load(Engagement, uuid.UUID(self.engagement_id))
        assert loaded is not None
        return loaded

    def change(self, action: Callable[[Engagement], None]) -> None:
        engagement = self.engagement()
        action(engagement)
        self.api.services.log.record(engagement, meta=SETUP)

    def post(self, path: str, body: dict[str, Any], auth: dict[str, str] | None = None) -> Any:
        return self.api.request("POST", "/work" + path, json=body, auth=auth or self.pm)

    def created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(path, body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def epic(self, **fields: Any) -> dict[str, Any]:
        return self.created(
            "/epics", {"engagementId": self.engagement_id, "name": "Onboarding", **fields}
        )

    def story(self, epic_id: str, **fields: Any) -> dict[str, Any]:
        return self.created(f"/epics/{epic_id}/stories", {"title": "Sign-up", **fields})

    def task(self, story_id: str, **fields: Any) -> dict[str, Any]:
        return self.created(f"/stories/{story_id}/tasks", {"title": "Build the form", **fields})

    def a_story(self) -> dict[str, Any]:
        return self.story(self.epic()["epicId"])

    def put(
        self, task_id: str, status: str, auth: dict[str, str] | None = None, **fields: Any
    ) -> Any:
        return self.api.request(
            "PUT",
            f"/work/tasks/{task_id}",
            json={"status": status, **fields},
            auth=auth or self.pm,
        )

    def move(self, task_id: str, *statuses: str) -> dict[str, Any]:
        response = None
        for status in statuses:
            response = self.put(task_id, status)
            assert response.status_code == 200, response.text
        assert response is not None
        return dict(response.json())

    def get(self, path: str, auth: dict[str, str] | None = None) -> Any:
        return self.api.request("GET", "/work" + path, auth=auth or self.pm)


def topics(services: Services, topic: str) -> list[Any]:
    return [r for r in services.log.read(0, 1_000_000) if r.topic == topic]


def ids(response: Any, name: str, key: str) -> list[str]:
    assert response.status_code == 200, response.text
    return [item[key] for item in response.json()[name]]


# -- creating, reading and listing ----------------------------------------------------------


def test_an_epic_is_created_listed_and_read(api: Api) -> None:
    e = Engaged(api)
    response = e.post(
        "/epics",
        {"engagementId": e.engagement_id, "name": " Onboarding ", "description": "All of it"},
    )

    assert response.status_code == 201, response.text
    epic = response.json()
    epic_id = epic["epicId"]
    assert str(uuid.UUID(epic_id)) == epic_id
    assert response.headers["location"] == f"/api/v1/work/epics/{epic_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) == api.services.log.head()
    assert epic == {
        "epicId": epic_id,
        "engagementId": e.engagement_id,
        "name": "Onboarding",
        "description": "All of it",
        "status": "Open",
        "createdAt": epic["createdAt"],
        "updatedAt": epic["createdAt"],
    }
    assert INSTANT.match(epic["createdAt"])

    fetched = e.get(f"/epics/{epic_id}", auth=api.as_("member", tenant=e.tenant_id))
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert fetched.json() == epic

    second = e.epic(name="Billing")
    other = Engaged(api, tenant_id=e.tenant_id)
    elsewhere = other.epic(name="Elsewhere")
    listed = e.get("/epics")
    assert listed.json()["totalCount"] == 3
    assert ids(listed, "epics", "epicId") == [epic_id, second["epicId"], elsewhere["epicId"]]
    assert listed.json()["epics"][0] == epic
    only = e.get(f"/epics?engagementId={e.engagement_id}")
    assert ids(only, "epics", "epicId") == [epic_id, second["epicId"]]
    assert only.json()["totalCount"] == 2
    assert ids(e.get(f"/epics?engagementId={uuid.uuid4()}"), "epics", "epicId") == []

    first_page = e.get("/epics?limit=2").json()
    assert [x["epicId"] for x in first_page["epics"]] == [epic_id, second["epicId"]]
    assert first_page["totalCount"] == 3
    rest = e.get(f"/epics?limit=2&cursor={first_page['nextCursor']}").json()
    assert [x["epicId"] for x in rest["epics"]] == [elsewhere["epicId"]]
    assert rest["nextCursor"] is None


def test_stories_belong_to_an_epic_and_its_engagement(api: Api) -> None:
    e = Engaged(api)
    epic, other_epic = e.epic(), e.epic(name="Other")
    response = e.post(
        f"/epics/{epic['epicId']}/stories",
        {"title": "Sign-up form", "description": "With email", "points": 8},
    )

    assert response.status_code == 201, response.text
    story = response.json()
    story_id = story["storyId"]
    assert response.headers["location"] == f"/api/v1/work/stories/{story_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) >= 1
    assert story == {
        "storyId": story_id,
        "epicId": epic["epicId"],
        "engagementId": e.engagement_id,
        "title": "Sign-up form",
        "description": "With email",
        "points": 8,
        "createdAt": story["createdAt"],
        "updatedAt": story["createdAt"],
    }
    assert e.get(f"/stories/{story_id}").json() == story
    assert e.get(f"/stories/{story_id}").headers["etag"] == '"1"'

    second = e.story(epic["epicId"])
    assert second["points"] is None
    e.story(other_epic["epicId"])
    listed = e.get(f"/epics/{epic['epicId']}/stories")
    assert ids(listed, "stories", "storyId") == [story_id, second["storyId"]]
    assert listed.json()["totalCount"] == 2
    assert listed.json()["nextCursor"] is None

    missing = uuid.uuid4()
    problem(e.post(f"/epics/{missing}/stories", {"title": "x"}), 404)
    problem(e.get(f"/epics/{missing}/stories"), 404)
    problem(e.get(f"/stories/{missing}"), 404)


@pytest.mark.parametrize(("points", "status"), [(-1, 400), (101, 400), (0, 201), (100, 201)])
def test_story_points_are_0_to_100(sqlite_api: Api, points: int, status: int) -> None:
    e = Engaged(sqlite_api)
    response = e.post(f"/epics/{e.epic()['epicId']}/stories", {"title": "x", "points": points})
    if status == 400:
        problem(response, 400, field="points")
    else:
        assert response.status_code == 201, response.text
        assert response.json()["points"] == points


def test_tasks_belong_to_a_story_and_list_by_status(api: Api) -> None:
    e = Engaged(api)
    person = api.hire(e.tenant_id)
    story = e.a_story()
    response = e.post(
        f"/stories/{story['storyId']}/tasks",
        {"title": "Build the form", "assigneeId": person["personId"]},
    )

    assert response.status_code == 201, response.text
    task = response.json()
    task_id = task["taskId"]
    assert response.headers["location"] == f"/api/v1/work/tasks/{task_id}"
    assert response.headers["etag"] == '"1"'
    assert task == {
        "taskId": task_id,
        "storyId": story["storyId"],
        "engagementId": e.engagement_id,
        "milestoneId": None,
        "title": "Build the form",
        "assigneeId": person["personId"],
        "status": "Todo",
        "completedAt": None,
        "createdAt": task["createdAt"],
        "updatedAt": task["createdAt"],
    }
    assert e.get(f"/tasks/{task_id}").json() == task

    doing = e.task(story["storyId"])
    done = e.task(story["storyId"])
    e.move(doing["taskId"], "InProgress")
    e.move(done["taskId"], "InProgress", "Completed")
    e.task(e.a_story()["storyId"])  # another story's task

    path = f"/stories/{story['storyId']}/tasks"
    everything = e.get(path)
    assert ids(everything, "tasks", "taskId") == [task_id, doing["taskId"], done["taskId"]]
    assert everything.json()["totalCount"] == 3
    for status, expected in [
        ("Todo", [task_id]),
        ("InProgress", [doing["taskId"]]),
        ("Completed", [done["taskId"]]),
    ]:
        listed = e.get(f"{path}?status={status}")
        assert ids(listed, "tasks", "taskId") == expected
        assert listed.json()["totalCount"] == 1
    problem(e.get(f"{path}?status=Done"), 400, field="status")
    missing = uuid.uuid4()
    problem(e.post(f"/stories/{missing}/tasks", {"title": "x"}), 404)
    problem(e.get(f"/stories/{missing}/tasks"), 404)
    problem(e.get(f"/tasks/{missing}"), 404)


def test_sprints_are_created_listed_and_read(api: Api) -> None:
    e = Engaged(api)
    body = {
        "engagementId": e.engagement_id,
        "name": "Sprint 1",
        "startDate": "2026-03-02",
        "endDate": "2026-03-13",
        "goal": "Sign-up works",
    }
    response = e.post("/sprints", body)

    assert response.status_code == 201, response.text
    sprint = response.json()
    sprint_id = sprint["sprintId"]
    assert response.headers["location"] == f"/api/v1/work/sprints/{sprint_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) >= 1
    assert sprint == {
        "sprintId": sprint_id,
        **body,
        "createdAt": sprint["createdAt"],
        "updatedAt": sprint["createdAt"],
    }
    assert e.get(f"/sprints/{sprint_id}").json() == sprint

    other = Engaged(api, tenant_id=e.tenant_id)
    elsewhere = other.created(
        "/sprints",
        {**body, "engagementId": other.engagement_id, "name": "Sprint A"},
    )
    assert ids(e.get("/sprints"), "sprints", "sprintId") == [sprint_id, elsewhere["sprintId"]]
    only = e.get(f"/sprints?engagementId={other.engagement_id}")
    assert ids(only, "sprints", "sprintId") == [elsewhere["sprintId"]]
    assert only.json()["totalCount"] == 1
    problem(e.get(f"/sprints/{uuid.uuid4()}"), 404)


def test_bad_sprint_and_epic_bodies_are_400_naming_the_field(sqlite_api: Api) -> None:
    e = Engaged(sqlite_api)
    sprint = {
        "engagementId": e.engagement_id,
        "name": "Sprint 1",
        "startDate": "2026-03-02",
        "endDate": "2026-03-13",
    }
    problem(e.post("/sprints", {**sprint, "endDate": "2026-03-01"}), 400, field="endDate")
    problem(e.post("/sprints", {**sprint, "startDate": "2026-02-30"}), 400, field="startDate")
    problem(e.post("/sprints", {**sprint, "name": " "}), 400, field="name")
    problem(e.post("/sprints", {**sprint, "goal": "g" * 1001}), 400, field="goal")
    problem(e.post("/sprints", {**sprint, "velocity": 3}), 400, field="velocity")
    epic = {"engagementId": e.engagement_id, "name": "Epic"}
    problem(e.post("/epics", {**epic, "name": ""}), 400, field="name")
    problem(e.post("/epics", {**epic, "name": "a\u0000b"}), 400, field="name")
    problem(e.post("/epics", {**epic, "description": "d" * 5001}), 400, field="description")
    problem(e.post("/epics", {"name": "Epic"}), 400, field="engagementId")
    problem(e.post("/epics", {**epic, "engagementId": "nope"}), 400, field="engagementId")
    problem(e.post("/epics", {**epic, "status": "Closed"}), 400, field="status")
    problem(e.get("/epics?engagementId=nope"), 400, field="engagementId")
    problem(e.get("/epics?limit=0"), 400, field="limit")
    problem(e.get("/epics?cursor=bogus"), 400, field="cursor")
    story = e.a_story()
    for body in ({"title": "a\u0000b"}, {"title": " "}, {"title": "t" * 201}):
        problem(e.post(f"/stories/{story['storyId']}/tasks", body), 400, field="title")
    problem(e.post(f"/stories/{story['storyId']}/tasks", {"title": "x", "status": "Todo"}), 400)
    assert e.get("/epics").json()["totalCount"] == 1
    assert e.get("/sprints").json()["totalCount"] == 0
    assert e.get(f"/stories/{story['storyId']}/tasks").json()["totalCount"] == 0


def test_an_unknown_or_foreign_engagement_is_400(api: Api) -> None:
    e = Engaged(api)
    foreign = Engaged(api)
    for engagement_id in (str(uuid.uuid4()), foreign.engagement_id):
        problem(
            e.post("/epics", {"engagementId": engagement_id, "name": "x"}),
            400,
            field="engagementId",
        )
        body = {
            "engagementId": engagement_id,
            "name": "x",
            "startDate": "2026-03-02",
            "endDate": "2026-03-13",
        }
        problem(e.post("/sprints", body), 400, field="engagementId")
    assert e.get("/epics").json()["totalCount"] == 0
    assert e.get("/sprints").json()["totalCount"] == 0


def test_an_assignee_must_be_a_person_of_the_tenant(api: Api) -> None:
    e = Engaged(api)
    stranger = api.hire(api.provision()["tenantId"])
    story = e.a_story()
    for person_id in (str(uuid.uuid4()), stranger["personId"], e.engagement_id):
        response = e.post(
            f"/stories/{story['storyId']}/tasks", {"title": "x", "assigneeId": person_id}
        )
        problem(response, 400, field="assigneeId")
    assert e.get(f"/stories/{story['storyId']}/tasks").json()["totalCount"] == 0


# -- task status ----------------------------------------------------------------------------


def test_a_task_moves_todo_inprogress_completed_and_completed_is_final(api: Api) -> None:
    e = Engaged(api)
    task_id = e.task(e.a_story()["storyId"])["taskId"]

    started = e.put(task_id, "InProgress")
    assert started.status_code == 200, started.text
    assert started.headers["etag"] == '"2"'
    assert int(started.headers["x-log-position"]) == api.services.log.head()
    assert started.json()["status"] == "InProgress"
    assert "location" not in started.headers
    back = e.move(task_id, "Todo")
    assert back["status"] == "Todo"
    assert back["updatedAt"] >= back["createdAt"]
    problem(e.put(task_id, "Completed"), 409, code="illegal-transition")  # Todo -> Completed

    e.move(task_id, "InProgress")
    completed_at = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=123000)
    done = e.put(task_id, "Completed", completedAt=completed_at.isoformat())
    assert done.status_code == 200, done.text
    assert done.headers["etag"] == '"5"'
    task = done.json()
    assert task["status"] == "Completed"
    assert task["completedAt"] == completed_at.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    assert e.get(f"/tasks/{task_id}").json() == task

    head = api.services.log.head()
    again = e.put(task_id, "Completed")
    assert again.status_code == 200, again.text
    assert again.headers["etag"] == '"5"'
    assert again.headers["x-log-position"] == str(head)
    assert again.json() == task
    assert api.services.log.head() == head
    for status in ("Todo", "InProgress"):
        body = problem(e.put(task_id, status), 409, code="illegal-transition")
        assert body["transition"]["from"] == "Completed"
    assert api.services.log.head() == head
    assert e.get(f"/tasks/{task_id}").headers["etag"] == '"5"'


def test_completed_at_defaults_to_now(api: Api) -> None:
    e = Engaged(api)
    task_id = e.task(e.a_story()["storyId"])["taskId"]
    before = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    done = e.move(task_id, "InProgress", "Completed")
    assert INSTANT.match(done["completedAt"])
    assert done["completedAt"] >= before
    assert done["completedAt"] == done["updatedAt"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "Done"}, "status"),
        ({"status": "completed"}, "status"),
        ({}, "status"),
        ({"status": "Completed", "completedAt": "2999-01-01T00:00:00Z"}, "completedAt"),
        ({"status": "Completed", "completedAt": "2026-01-01T10:00:00"}, "completedAt"),
        ({"status": "Completed", "completedAt": "yesterday"}, "completedAt"),
        ({"status": "Todo", "completedAt": "2026-01-01T10:00:00Z"}, "completedAt"),
        ({"status": "Completed", "title": "x"}, "title"),
    ],
)
def test_bad_task_updates_are_400_and_change_nothing(
    sqlite_api: Api, body: dict[str, Any], field: str
) -> None:
    e = Engaged(sqlite_api)
    task_id = e.task(e.a_story()["storyId"])["taskId"]
    e.move(task_id, "InProgress")
    response = sqlite_api.request("PUT", f"/work/tasks/{task_id}", json=body, auth=e.pm)
    problem(response, 400, field=field)
    task = e.get(f"/tasks/{task_id}")
    assert task.headers["etag"] == '"2"'
    assert task.json()["status"] == "InProgress"


def test_if_match_guards_task_updates(api: Api) -> None:
    e = Engaged(api)
    task_id = e.task(e.a_story()["storyId"])["taskId"]
    path = f"/work/tasks/{task_id}"
    stale = api.request(
        "PUT", path, json={"status": "InProgress"}, auth=e.pm, headers={"If-Match": '"2"'}
    )
    problem(stale, 412)
    assert e.get(f"/tasks/{task_id}").json()["status"] == "Todo"
    fresh = api.request(
        "PUT", path, json={"status": "InProgress"}, auth=e.pm, headers={"If-Match": '"1"'}
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["etag"] == '"2"'


# -- milestones -----------------------------------------------------------------------------


def test_a_milestone_completes_exactly_once_when_its_last_task_completes(api: Api) -> None:
    e = Engaged(api)
    (milestone_id,) = e.milestone_ids
    story_id = e.a_story()["storyId"]
    first = e.task(story_id, milestoneId=milestone_id)
    second = e.task(story_id, milestoneId=milestone_id)
    unlinked = e.task(story_id)
    assert first["milestoneId"] == milestone_id
    assert e.engagement().milestones[uuid.UUID(milestone_id)].task_ids == {
        uuid.UUID(first["taskId"]),
        uuid.UUID(second["taskId"]),
    }
    e.move(unlinked["taskId"], "InProgress", "Completed")
    e.move(first["taskId"], "InProgress", "Completed")
    assert topics(api.services, "workledger:MilestoneCompleted") == []
    assert e.engagement().milestones[uuid.UUID(milestone_id)].status == "Open"

    e.move(second["taskId"], "InProgress", "Completed")

    (completed,) = topics(api.services, "workledger:MilestoneCompleted")
    assert str(completed.event.originator_id) == e.engagement_id
    assert str(completed.event.milestone_id) == milestone_id
    assert completed.event.trigger == "tasks"
    assert completed.event.amount == Decimal("1000.00")
    assert e.engagement().milestones[uuid.UUID(milestone_id)].status == "Completed"

    for task in (first, second):
        assert e.put(task["taskId"], "Completed").status_code == 200
    head = api.services.log.head()
    tasks_before = api.services.db.query("SELECT * FROM rm_tasks ORDER BY task_id")
    assert api.services.projections.replay() == head
    assert api.services.log.head() == head
    assert len(topics(api.services, "workledger:MilestoneCompleted")) == 1
    assert api.services.db.query("SELECT * FROM rm_tasks ORDER BY task_id") == tasks_before


def test_a_task_on_an_unknown_milestone_is_400_and_writes_nothing(api: Api) -> None:
    e = Engaged(api, milestones=1)
    other = Engaged(api, tenant_id=e.tenant_id)
    foreign = Engaged(api)
    story_id = e.a_story()["storyId"]
    head = api.services.log.head()
    for milestone_id in (str(uuid.uuid4()), other.milestone_ids[0], foreign.milestone_ids[0]):
        response = e.post(f"/stories/{story_id}/tasks", {"title": "x", "milestoneId": milestone_id})
        problem(response, 400, field="milestoneId")
    problem(e.post(f"/stories/{story_id}/tasks", {"title": "x", "milestoneId": "m1"}), 400)
    assert api.services.log.head() == head
    assert e.get(f"/stories/{story_id}/tasks").json()["totalCount"] == 0


def test_tasks_are_added_only_while_the_engagement_is_draft_or_active(api: Api) -> None:
    draft = Engaged(api, activate=False)
    assert draft.task(draft.a_story()["storyId"])["status"] == "Todo"

    e = Engaged(api)
    story_id = e.a_story()["storyId"]
    e.change(lambda engagement: engagement.cancel(reason="budget", at=datetime.now(UTC)))
    body = problem(e.post(f"/stories/{story_id}/tasks", {"title": "x"}), 409)
    assert body["code"] == "illegal-transition"

    done = Engaged(api)
    (milestone_id,) = done.milestone_ids
    story_id = done.a_story()["storyId"]
    done.change(
        lambda g: g.complete_milestone(milestone_id=uuid.UUID(milestone_id), at=datetime.now(UTC))
    )
    response = done.post(f"/stories/{story_id}/tasks", {"title": "x", "milestoneId": milestone_id})
    problem(response, 409, code="illegal-transition")
    assert done.get(f"/stories/{story_id}/tasks").json()["totalCount"] == 0


def _two_tasks_in_progress(api: Api) -> tuple[Engaged, str, list[str]]:
    e = Engaged(api)
    (milestone_id,) = e.milestone_ids
    story_id = e.a_story()["storyId"]
    task_ids = [e.task(story_id, milestoneId=milestone_id)["taskId"] for _ in range(2)]
    for task_id in task_ids:
        e.move(task_id, "InProgress")
    return e, milestone_id, task_ids


def _completed_by_both(
    e: Engaged,
    racers: list[Api],
    task_ids: list[str],
    before: Callable[[int], None],
    after: Callable[[int], None] = lambda i: None,
) -> list[Any]:
    """Racer i completes task i, each in its own thread with its own services."""
    responses: list[Any] = [None, None]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            before(i)
            responses[i] = racers[i].request(
                "PUT",
                f"/work/tasks/{task_ids[i]}",
                json={"status": "Completed"},
                auth=racers[i].as_("member", tenant=e.tenant_id, sub=f"racer-{i}"),
                headers={"X-Request-Id": f"racer-{i}"},
            )
        except BaseException as error:
            errors.append(error)
        finally:
            after(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return responses


def _completed_once_and_replay_writes_nothing(api: Api, e: Engaged, milestone_id: str) -> Any:
    services = api.services
    (completed,) = topics(services, "workledger:MilestoneCompleted")
    assert str(completed.event.milestone_id) == milestone_id
    assert str(completed.event.originator_id) == e.engagement_id
    assert len(topics(services, "workledger:TaskCompleted")) == 2
    head = services.log.head()
    assert services.projections.replay() == head
    assert services.log.head() == head
    assert len(topics(services, "workledger:MilestoneCompleted")) == 1
    return completed


def test_racing_completions_in_two_processes_complete_the_milestone_once(
    api: Api,
    database_url: str,
    make_services: Callable[[str], Services],
    client_for: Callable[[Services], Api],
) -> None:
    e, milestone_id, task_ids = _two_tasks_in_progress(api)
    racers = [client_for(make_services(database_url)) for _ in range(2)]
    barrier = threading.Barrier(2)

    responses = _completed_by_both(e, racers, task_ids, lambda i: barrier.wait(timeout=30))

    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Completed"
    _completed_once_and_replay_writes_nothing(api, e, milestone_id)
    for task_id in task_ids:
        assert e.get(f"/tasks/{task_id}").json()["status"] == "Completed"


def test_the_loser_of_a_completion_race_rereads_and_completes_the_milestone(
    api: Api,
    database_url: str,
    make_services: Callable[[str], Services],
    client_for: Callable[[Services], Api],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forced interleaving: racer 0 decides on a stale engagement, racer 1 writes in between;
    racer 0's write is refused, it reads again, and it is the one that completes the milestone."""
    e, milestone_id, task_ids = _two_tasks_in_progress(api)
    racers = [client_for(make_services(database_url)) for _ in range(2)]
    decided, written = threading.Event(), threading.Event()
    log = racers[0].services.log
    record = log.record
    calls: list[int] = []

    def stalled_record(*aggregates: Any, meta: EventMeta) -> int:
        calls.append(len(aggregates))
        if len(calls) == 1:  # racer 0's first attempt: let racer 1 write first
            decided.set()
            assert written.wait(timeout=30)
        return record(*aggregates, meta=meta)

    monkeypatch.setattr(log, "record", stalled_record)

    def before(i: int) -> None:
        if i == 1:  # racer 1 starts once racer 0 has decided
            assert decided.wait(timeout=30)

    def after(i: int) -> None:
        if i == 1:
            written.set()

    responses = _completed_by_both(e, racers, task_ids, before, after)

    # Task and engagement, twice: refused once, then written. (A third, single write may
    # follow: the milestone-billing policy drafting the milestone's invoice.)
    assert calls[:2] == [2, 2]
    assert calls[2:] in ([], [1])
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Completed"
    completed = _completed_once_and_replay_writes_nothing(api, e, milestone_id)
    assert completed.meta.request_id == "racer-0"
    assert completed.meta.actor == "user:racer-0"


# -- roles and tenants ----------------------------------------------------------------------


@pytest.mark.parametrize("role", WRITERS)
def test_work_writers_create_items_and_update_tasks(api: Api, role: str) -> None:
    e = Engaged(api)
    auth = api.as_(role, tenant=e.tenant_id)
    epic = e.post("/epics", {"engagementId": e.engagement_id, "name": "x"}, auth=auth)
    assert epic.status_code == 201, epic.text
    story = e.post(f"/epics/{epic.json()['epicId']}/stories", {"title": "x"}, auth=auth)
    assert story.status_code == 201, story.text
    task = e.post(f"/stories/{story.json()['storyId']}/tasks", {"title": "x"}, auth=auth)
    assert task.status_code == 201, task.text
    moved = e.put(task.json()["taskId"], "InProgress", auth=auth)
    assert moved.status_code == 200, moved.text
    sprint = e.post(
        "/sprints",
        {
            "engagementId": e.engagement_id,
            "name": "S",
            "startDate": "2026-03-02",
            "endDate": "2026-03-13",
        },
        auth=auth,
    )
    assert sprint.status_code == 201, sprint.text
    assert e.get("/epics", auth=auth).json()["totalCount"] == 1


@pytest.mark.parametrize("role", ["auditor", "finance"])
def test_auditor_and_finance_may_not_change_work(api: Api, role: str) -> None:
    e = Engaged(api)
    epic = e.epic()
    story = e.story(epic["epicId"])
    task = e.task(story["storyId"])
    auth = api.as_(role, tenant=e.tenant_id)
    head = api.services.log.head()
    sprint = {
        "engagementId": e.engagement_id,
        "name": "S",
        "startDate": "2026-03-02",
        "endDate": "2026-03-13",
    }
    for response in (
        e.post("/epics", {"engagementId": e.engagement_id, "name": "x"}, auth=auth),
        e.post(f"/epics/{epic['epicId']}/stories", {"title": "x"}, auth=auth),
        e.post(f"/stories/{story['storyId']}/tasks", {"title": "x"}, auth=auth),
        e.put(task["taskId"], "InProgress", auth=auth),
        e.post("/sprints", sprint, auth=auth),
    ):
        problem(response, 403, code="forbidden")
    assert api.services.log.head() == head


def test_auditors_read_work_and_finance_does_not(api: Api) -> None:
    e = Engaged(api)
    epic = e.epic()
    story = e.story(epic["epicId"])
    task = e.task(story["storyId"])
    paths = [
        "/epics",
        f"/epics/{epic['epicId']}",
        f"/epics/{epic['epicId']}/stories",
        f"/stories/{story['storyId']}",
        f"/stories/{story['storyId']}/tasks",
        f"/tasks/{task['taskId']}",
        "/sprints",
    ]
    auditor = api.as_("auditor", tenant=e.tenant_id)
    finance = api.as_("finance", tenant=e.tenant_id)
    for path in paths:
        assert e.get(path, auth=auditor).status_code == 200, path
        problem(e.get(path, auth=finance), 403, code="forbidden")
    problem(api.request("GET", "/work/epics"), 401)


def test_another_tenants_work_is_404(api: Api) -> None:
    e = Engaged(api)
    epic = e.epic()
    story = e.story(epic["epicId"])
    task = e.task(story["storyId"])
    sprint = e.created(
        "/sprints",
        {
            "engagementId": e.engagement_id,
            "name": "S",
            "startDate": "2026-03-02",
            "endDate": "2026-03-13",
        },
    )
    intruder = Engaged(api)
    auth = api.as_("customer-admin", tenant=intruder.tenant_id)
    head = api.services.log.head()
    for path in (
        f"/epics/{epic['epicId']}",
        f"/epics/{epic['epicId']}/stories",
        f"/stories/{story['storyId']}",
        f"/stories/{story['storyId']}/tasks",
        f"/tasks/{task['taskId']}",
        f"/sprints/{sprint['sprintId']}",
    ):
        problem(e.get(path, auth=auth), 404, code="not-found")
    problem(e.post(f"/epics/{epic['epicId']}/stories", {"title": "x"}, auth=auth), 404)
    problem(e.post(f"/stories/{story['storyId']}/tasks", {"title": "x"}, auth=auth), 404)
    problem(e.put(task["taskId"], "InProgress", auth=auth), 404)
    stale = api.request(
        "PUT",
        f"/work/tasks/{task['taskId']}",
        json={"status": "InProgress"},
        auth=auth,
        headers={"If-Match": '"7"'},
    )
    problem(stale, 404)  # not 412: that would reveal the task exists
    for name in ("epics", "sprints"):
        assert e.get(f"/{name}", auth=auth).json() == {
            name: [],
            "totalCount": 0,
            "nextCursor": None,
        }
    assert api.services.log.head() == head
    assert e.get(f"/tasks/{task['taskId']}").json()["status"] == "Todo"


def test_a_suspended_tenant_cannot_change_work(api: Api) -> None:
    e = Engaged(api)
    task_id = e.task(e.a_story()["storyId"])["taskId"]
    suspended = api.request(
        "POST", f"/tenants/{e.tenant_id}/suspend", json={}, auth=api.as_("platform-admin")
    )
    assert suspended.status_code == 200, suspended.text
    problem(e.put(task_id, "InProgress"), 403, code="tenant-not-active")
    problem(e.post("/epics", {"engagementId": e.engagement_id, "name": "x"}), 403)
    assert e.get(f"/tasks/{task_id}").json()["status"] == "Todo"


# -- the audit trail ------------------------------------------------------------------------


def test_the_audit_trail_shows_task_and_milestone_completion(api: Api) -> None:
    e = Engaged(api)
    (milestone_id,) = e.milestone_ids
    story_id = e.a_story()["storyId"]
    task_id = e.task(story_id, milestoneId=milestone_id)["taskId"]
    lead = api.as_("squad-lead", tenant=e.tenant_id, sub="lena")
    for status, request_id in (("InProgress", "req-start"), ("Completed", "req-done")):
        response = api.request(
            "PUT",
            f"/work/tasks/{task_id}",
            json={"status": status},
            auth=lead,
            headers={"X-Request-Id": request_id},
        )
        assert response.status_code == 200, response.text
    auditor = api.as_("auditor", tenant=e.tenant_id)

    trail = api.request("GET", f"/audit/events?aggregateId={task_id}", auth=auditor)
    assert trail.status_code == 200, trail.text
    events = trail.json()["events"]
    assert [x["type"] for x in events] == ["TaskCreated", "TaskStatusChanged", "TaskCompleted"]
    assert {x["aggregateType"] for x in events} == {"Task"}
    created, started, done = events
    assert created["actor"] == "user:pm"
    assert (started["actor"], started["requestId"]) == ("user:lena", "req-start")
    assert (done["actor"], done["requestId"], done["version"]) == ("user:lena", "req-done", 3)
    assert done["data"]["milestoneId"] == milestone_id
    assert done["data"]["engagementId"] == e.engagement_id
    assert datetime.fromisoformat(done["data"]["completedAt"]) <= datetime.now(UTC)

    milestones = api.request("GET", "/audit/events?type=MilestoneCompleted", auth=auditor)
    (completed,) = milestones.json()["events"]
    assert completed["aggregateId"] == e.engagement_id
    assert completed["aggregateType"] == "Engagement"
    assert (completed["actor"], completed["requestId"]) == ("user:lena", "req-done")
    assert completed["data"]["milestoneId"] == milestone_id
    assert completed["data"]["trigger"] == "tasks"
    assert completed["position"] > done["position"]  # written with the task, after it
