"""Rate limits over HTTP: the check once the caller is known, 429 when over, and the headers.

Every limited response (a success or the 429) carries, per draft-ietf-httpapi-ratelimit-headers
(structured fields):
    RateLimit-Policy: "apikey";q=100;w=60, "tenant";q=600;w=60   every quota that applies
    RateLimit: "apikey";r=42;t=17                                 the most constraining one
and the older de-facto trio for that same quota: X-RateLimit-Limit, X-RateLimit-Remaining and
X-RateLimit-Reset (seconds until the window resets, like `t`; not an epoch time).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.types import Message, Scope

from application.authorization import Principal
from application.rate_limits import RateLimitDecision, RateLimits
from entrypoints.container import Services

STATE_KEY = "rate_limit"


def enforce_rate_limits(
    request: Request[Any, Any, Any], services: Services, principal: Principal
) -> None:
    """Count the request against its caller's quotas, once per request (the decision is kept
    in the ASGI scope's state for the response headers); raise 429 when it is over one."""
    state = request.scope.setdefault("state", {})
    if STATE_KEY in state:
        decision = state[STATE_KEY]
    else:
        decision = services.get(RateLimits).check(principal)
        state[STATE_KEY] = decision
    if isinstance(decision, RateLimitDecision) and not decision.allowed:
        over = decision.binding
        quota = over.quota
        owner = "this API key" if quota.policy == "apikey" else "this tenant"
        raise TooManyRequestsException(
            detail=(
                f"rate limit exceeded: {owner} may make {quota.limit} requests per"
                f" {quota.window_seconds} s; retry in {over.reset_seconds} s"
            ),
            headers={"Retry-After": str(over.reset_seconds)},
        )


def rate_limit_headers(decision: RateLimitDecision) -> list[tuple[bytes, bytes]]:
    binding = decision.binding
    policy = ", ".join(f'"{q.policy}";q={q.limit};w={q.window_seconds}' for q in decision.quotas)
    headers = {
        "ratelimit-policy": policy,
        "ratelimit": f'"{binding.quota.policy}";r={binding.remaining};t={binding.reset_seconds}',
        "x-ratelimit-limit": str(binding.quota.limit),
        "x-ratelimit-remaining": str(binding.remaining),
        "x-ratelimit-reset": str(binding.reset_seconds),
    }
    return [(name.encode(), value.encode()) for name, value in headers.items()]


async def send_rate_limit_headers(message: Message, scope: Scope) -> None:
    """before_send hook: the rate-limit headers on every response of a limited request."""
    if message["type"] != "http.response.start":
        return
    decision = scope.get("state", {}).get(STATE_KEY)
    if isinstance(decision, RateLimitDecision) and decision.states:
        message["headers"] = [*message.get("headers", []), *rate_limit_headers(decision)]
