"""Rate limits: how many requests a caller may make per window, and the decision per request.

Two policies, both counted per fixed window of a minute:
- `tenant`: every request authenticated into a tenant (by token or API key) counts against its
  tenant, whose limit follows its plan;
- `apikey`: a request made with an API key also counts against the key's own limit (its
  `rateLimitPerMinute`, or the default).
Platform callers (no tenant of their own) are not limited: they operate the service, and a
tenant's traffic must never lock them out of it.

The key is counted first and, when it is over its limit, the tenant is not counted at all, so
one runaway key does not use up its tenant's allowance for every other caller.

The counting itself is a port (`RateLimitStore`): memory by default, Redis when configured.
A store that fails answers None and the request goes through unlimited (fail open): a limiter
outage must not take the API down.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

import msgspec

from application.authorization import Principal

TENANT, APIKEY = "tenant", "apikey"
WINDOW_SECONDS = 60
# Requests per minute by tenant plan (domain.tenant.PLANS); docs/rate-limits.md tells clients.
PLAN_LIMITS = {"starter": 600, "professional": 3000, "enterprise": 12000}
DEFAULT_PLAN = "starter"
# An API key created without `rateLimitPerMinute`.
DEFAULT_KEY_LIMIT = 300


class Quota(msgspec.Struct, frozen=True):
    """A policy's allowance: `limit` requests per `window_seconds`."""

    policy: str
    limit: int
    window_seconds: int


class QuotaState(msgspec.Struct, frozen=True):
    """A quota after counting one request: whether the request fits, what is left, and in how
    many seconds the window starts afresh (at least 1)."""

    quota: Quota
    allowed: bool
    remaining: int
    reset_seconds: int


class RateLimitStore(Protocol):
    def hit(self, quota: Quota, subject: str) -> QuotaState | None:
        """Count one request of `subject` against `quota`. None when the store cannot answer
        (it is down): the caller lets the request through."""
        ...


class TenantPlans(Protocol):
    def plan_of(self, tenant_id: UUID) -> str | None:
        """The tenant's plan, possibly a little out of date (None: no such tenant known)."""
        ...


class RateLimitPolicy(msgspec.Struct, frozen=True):
    """The numbers; the defaults are the service's, tests and deployments may choose others."""

    plan_limits: dict[str, int] = msgspec.field(default_factory=lambda: dict(PLAN_LIMITS))
    default_plan: str = DEFAULT_PLAN
    default_key_limit: int = DEFAULT_KEY_LIMIT
    window_seconds: int = WINDOW_SECONDS


class RateLimitDecision(msgspec.Struct, frozen=True):
    """What applies to one request: every quota that limits the caller (in the order they were
    counted), and the state of each one counted."""

    quotas: list[Quota]
    states: list[QuotaState]

    @property
    def allowed(self) -> bool:
        return all(state.allowed for state in self.states)

    @property
    def binding(self) -> QuotaState:
        """The most constraining quota: the one that refused the request, else the one with
        the fewest requests left (of equals, the one that resets last)."""
        refused = [state for state in self.states if not state.allowed]
        if refused:
            return refused[0]
        return min(self.states, key=lambda s: (s.remaining, -s.reset_seconds))


class RateLimits:
    def __init__(self, store: RateLimitStore, plans: TenantPlans, policy: RateLimitPolicy) -> None:
        self._store = store
        self._plans = plans
        self._policy = policy

    def quotas(self, principal: Principal) -> list[Quota]:
        """The quotas that apply to the caller, API key first (none for platform callers)."""
        if principal.tenant_id is None:
            return []
        policy = self._policy
        plan = self._plans.plan_of(principal.tenant_id) or policy.default_plan
        tenant_limit = policy.plan_limits.get(plan, policy.plan_limits[policy.default_plan])
        quotas = [Quota(TENANT, tenant_limit, policy.window_seconds)]
        if principal.api_key_id is not None:
            key_limit = principal.rate_limit_per_minute or policy.default_key_limit
            quotas.insert(0, Quota(APIKEY, key_limit, policy.window_seconds))
        return quotas

    def check(self, principal: Principal) -> RateLimitDecision | None:
        """Count the request against every quota of its caller. None when the caller is not
        limited, or the store could not count (fail open)."""
        quotas = self.quotas(principal)
        if not quotas:
            return None
        states: list[QuotaState] = []
        for quota in quotas:
            subject = (
                f"{APIKEY}:{principal.api_key_id}"
                if quota.policy == APIKEY
                else f"{TENANT}:{principal.tenant_id}"
            )
            state = self._store.hit(quota, subject)
            if state is None:
                return None
            states.append(state)
            if not state.allowed:
                break  # a refused request does not count against the quotas after it
        return RateLimitDecision(quotas=quotas, states=states)
