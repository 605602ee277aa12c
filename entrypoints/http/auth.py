"""Who is calling: the bearer token or the API key becomes a Principal, and the request a
Context.

A request authenticates with `Authorization: Bearer <JWT>` or with `X-API-Key: <key>`, not both
(400: which identity acts must never be a guess). An API key's allowlist is checked against the
address of the TCP peer (the ASGI scope's client): X-Forwarded-For and the like are not trusted,
since any client can send them; behind a proxy, allowlists see the proxy's address.

The tenant a call acts in is the token's tenant. `?tenantId=` may only repeat it (403
otherwise), except for platform-admin, who names the tenant to act in that way.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request

from application.api_keys import ApiKeyAuthenticator
from application.authorization import Principal, permissions_for
from application.context import Context
from application.errors import Forbidden, InvalidRequest, NotAuthenticated
from application.ports import Clock, TokenVerifier
from entrypoints.container import Services
from entrypoints.http.middleware import request_id


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles = tuple(str(r) for r in claims.get("roles", []))
    tid = claims.get("tid")
    return Principal(
        subject=str(claims["sub"]),
        tenant_id=UUID(tid) if tid else None,
        roles=roles,
        permissions=permissions_for(roles),
        auth_method="jwt",
    )


def principal_of(request: Request[Any, Any, Any], services: Services) -> Principal:
    """The caller, established once per request (kept in the ASGI scope's state), so the
    idempotency middleware, the rate limiter and the routes all see the same Principal.

    Raises NotAuthenticated (401) like `authenticate`."""
    state = request.scope.setdefault("state", {})
    cached = state.get("principal")
    if isinstance(cached, Principal):
        return cached
    api_keys = request.headers.getall("x-api-key", [])
    if not api_keys:
        principal = authenticate(request, services.tokens)
    else:
        if request.headers.get("authorization") is not None:
            raise InvalidRequest(
                "X-API-Key", "send either an API key or an Authorization header, not both"
            )
        if len(api_keys) > 1:  # which of them acts would be a guess
            raise InvalidRequest("X-API-Key", "send one API key, not several")
        principal = services.get(ApiKeyAuthenticator).authenticate_key(
            api_keys[0].strip(), client_ip(request), services.get(Clock).now()
        )
    state["principal"] = principal
    return principal


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    """The address of the connection's peer (no proxy headers are trusted)."""
    client = request.scope.get("client")
    return str(client[0]) if client else None


def authenticate(request: Request[Any, Any, Any], tokens: TokenVerifier) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
    return principal_from_claims(tokens.verify(token.strip()))


def context_for(request: Request[Any, Any, Any], principal: Principal) -> Context:
    tenant_id = principal.tenant_id
    asked = request.query_params.get("tenantId")
    if asked:
        try:
            asked_id = UUID(asked)
        except ValueError:
            raise InvalidRequest("tenantId", "must be a UUID") from None
        if principal.is_platform_admin:
            tenant_id = asked_id
        elif asked_id != principal.tenant_id:
            raise Forbidden("tenantId may only name your own tenant")
    return Context(principal=principal, request_id=request_id(request.scope), tenant_id=tenant_id)
