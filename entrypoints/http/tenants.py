"""/api/v1/tenants: provisioning and management of tenants."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from application.queries import DEFAULT_LIMIT, TenantQueries
from application.results import Written
from application.tenants import (
    ChangeSettings,
    ChangeSubscription,
    ChangeTenantStatus,
    ProvisionTenant,
    ProvisionTenants,
    TenantCommands,
    UpdateTenant,
)
from entrypoints.http.deps import Ctx, Svc, answer, settle, settled
from entrypoints.http.responses import document, if_match, page, raw

Req = Request[Any, Any, Any]
NO_STATUS_CHANGE = ChangeTenantStatus()


def _tenant(services: Svc, ctx: Ctx, written: Written, status: int = 200) -> Response[bytes]:
    return answer(
        services,
        written,
        lambda i: services.get(TenantQueries).get(ctx, i).tenant,
        "/api/v1/tenants",
        status,
    )


@post("/", sync_to_thread=False, status_code=201)
def provision(data: JSONBody[ProvisionTenant], ctx: Ctx, services: Svc) -> Response[bytes]:
    written = services.get(TenantCommands).provision(ctx, data)
    return _tenant(services, ctx, written, 201)


@post("/bulk", sync_to_thread=False, status_code=207)
def provision_many(data: JSONBody[ProvisionTenants], ctx: Ctx, services: Svc) -> Response[Any]:
    results, position = services.get(TenantCommands).provision_many(ctx, data)
    if position:
        settle(services, position)
    headers = {"X-Log-Position": str(position or services.log.head())}
    return Response({"results": results}, status_code=207, headers=headers)


@get("/", sync_to_thread=False)
def list_tenants(
    ctx: Ctx,
    services: Svc,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Response[bytes]:
    return page("tenants", services.get(TenantQueries).list(ctx, limit=limit, cursor=cursor))


@get("/{tenant_id:uuid}", sync_to_thread=False)
def get_tenant(tenant_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    return document(services.get(TenantQueries).get(ctx, tenant_id).tenant)


@put("/{tenant_id:uuid}", sync_to_thread=False)
def update_tenant(
    tenant_id: FromPath[UUID], data: JSONBody[UpdateTenant], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = services.get(TenantCommands).update(ctx, tenant_id, data, if_match(request))
    return _tenant(services, ctx, written)


@post("/{tenant_id:uuid}/suspend", sync_to_thread=False, status_code=200)
def suspend(
    tenant_id: FromPath[UUID],
    ctx: Ctx,
    services: Svc,
    request: Req,
    data: JSONBody[ChangeTenantStatus | None] = None,
) -> Response[bytes]:
    written = services.get(TenantCommands).suspend(
        ctx, tenant_id, data or NO_STATUS_CHANGE, if_match(request)
    )
    return _tenant(services, ctx, written)


@post("/{tenant_id:uuid}/reactivate", sync_to_thread=False, status_code=200)
def reactivate(tenant_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req) -> Response[bytes]:
    written = services.get(TenantCommands).reactivate(ctx, tenant_id, if_match(request))
    return _tenant(services, ctx, written)


@delete("/{tenant_id:uuid}", sync_to_thread=False, status_code=200)
def close(tenant_id: FromPath[UUID], ctx: Ctx, services: Svc, request: Req) -> Response[bytes]:
    written = services.get(TenantCommands).close(
        ctx, tenant_id, NO_STATUS_CHANGE, if_match(request)
    )
    return _tenant(services, ctx, written)


@get("/{tenant_id:uuid}/subscription", sync_to_thread=False)
def get_subscription(tenant_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    record = services.get(TenantQueries).get(ctx, tenant_id)
    return raw(record.subscription, version=record.tenant.version)


@put("/{tenant_id:uuid}/subscription", sync_to_thread=False)
def put_subscription(
    tenant_id: FromPath[UUID],
    data: JSONBody[ChangeSubscription],
    ctx: Ctx,
    services: Svc,
    request: Req,
) -> Response[bytes]:
    written = settled(
        services,
        services.get(TenantCommands).change_subscription(ctx, tenant_id, data, if_match(request)),
    )
    record = services.get(TenantQueries).get(ctx, tenant_id)
    return raw(record.subscription, version=record.tenant.version, position=written.position)


@get("/{tenant_id:uuid}/settings", sync_to_thread=False)
def get_settings(tenant_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    record = services.get(TenantQueries).get(ctx, tenant_id)
    return raw(record.settings, version=record.tenant.version)


@put("/{tenant_id:uuid}/settings", sync_to_thread=False)
def put_settings(
    tenant_id: FromPath[UUID], data: JSONBody[ChangeSettings], ctx: Ctx, services: Svc, request: Req
) -> Response[bytes]:
    written = settled(
        services,
        services.get(TenantCommands).change_settings(ctx, tenant_id, data, if_match(request)),
    )
    record = services.get(TenantQueries).get(ctx, tenant_id)
    return raw(record.settings, version=record.tenant.version, position=written.position)


router = Router(
    path="/tenants",
    route_handlers=[
        provision,
        provision_many,
        list_tenants,
        get_tenant,
        update_tenant,
        suspend,
        reactivate,
        close,
        get_subscription,
        put_subscription,
        get_settings,
        put_settings,
    ],
    tags=["tenants"],
)
