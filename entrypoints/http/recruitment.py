"""/api/v1/recruitment: new hires arriving from recruitment systems."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, post
from litestar.params import JSONBody

from application.recruitment import ImportHire, RecruitmentImport
from entrypoints.http.deps import Ctx, Svc, settle


@post("/import", sync_to_thread=False, status_code=201)
def import_hire(data: JSONBody[ImportHire], ctx: Ctx, services: Svc) -> Response[Any]:
    result = services.get(RecruitmentImport).import_hire(ctx, data)
    settle(services, result.position)
    status = 201 if result.status == "created" else 200
    return Response(
        {"personId": str(result.person_id), "status": result.status},
        status_code=status,
        headers={"X-Log-Position": str(result.position)},
    )


router = Router(path="/recruitment", route_handlers=[import_hire], tags=["recruitment"])
