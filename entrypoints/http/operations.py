"""Operations: who am I, liveness, readiness."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from entrypoints.http.deps import Ctx, Svc
from entrypoints.http.problems import PROBLEM_JSON, generic_problem


@get("/api/v1/me", sync_to_thread=False, tags=["me"])
def me(ctx: Ctx) -> dict[str, Any]:
    p = ctx.principal
    return {
        "subject": p.subject,
        "tenantId": str(p.tenant_id) if p.tenant_id else None,
        "roles": list(p.roles),
        "permissions": sorted(p.permissions),
        "authMethod": p.auth_method,
        "apiKeyId": str(p.api_key_id) if p.api_key_id else None,
    }


@get("/health/live", sync_to_thread=False, tags=["health"])
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", sync_to_thread=False, tags=["health"])
def ready(services: Svc) -> Response[Any]:
    checks: dict[str, str] = {}
    try:
        checks["eventStore"] = f"ok (position {services.log.head()})"
    except Exception as error:  # readiness reports failures instead of raising them
        checks["eventStore"] = f"failing: {type(error).__name__}"
    try:
        checks["readModels"] = f"ok (position {services.projections.position()})"
    except Exception as error:
        checks["readModels"] = f"failing: {type(error).__name__}"
    if all(v.startswith("ok") for v in checks.values()):
        return Response({"status": "ready", "checks": checks})
    problem = generic_problem(503, "a store is not reachable", checks=checks)
    return Response(problem, status_code=503, media_type=PROBLEM_JSON)
