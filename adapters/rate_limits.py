"""Rate-limit counting with the `limits` library (application.rate_limits.RateLimitStore), and
the tenant plans the limits follow (application.rate_limits.TenantPlans).

Fixed windows: one counter per quota and subject, created by the first request of a window and
expiring with it, so `Reset` is exact and a counter costs O(1) memory in Redis however high the
limit (a moving window would keep one entry per request). The price is that a client may burst
up to twice its limit across a window boundary; acceptable for protecting the service.

Memory storage counts per process (each `serve --workers N` worker on its own); Redis storage
counts for the whole deployment. Redis calls have short timeouts, and a failure switches the
limiter off for a few seconds (one log line each time), so a Redis outage neither fails requests
nor makes each of them wait for a timeout.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

import msgspec
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from application.queries import TenantReadModel
from application.rate_limits import Quota, QuotaState

log = logging.getLogger(__name__)


def _storage(redis_url: str | None, key_prefix: str, timeout: float) -> Storage:
    if redis_url is None:
        return MemoryStorage()
    # The settings accept unix:// (redis-py's name); limits calls it redis+unix://.
    uri = (
        "redis+unix://" + redis_url.removeprefix("unix://")
        if redis_url.startswith("unix://")
        else redis_url
    )
    return RedisStorage(
        uri,
        key_prefix=key_prefix,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )


class LimitsRateLimitStore:
    """Implements application.rate_limits.RateLimitStore over memory or Redis."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        key_prefix: str = "workledger",
        timeout_seconds: float = 0.25,
        pause_after_failure_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = "memory" if redis_url is None else "redis"
        self._storage = _storage(redis_url, key_prefix, timeout_seconds)
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._pause = pause_after_failure_seconds
        self._monotonic = monotonic
        self._off_until: float | None = None
        self._lock = threading.Lock()

    def hit(self, quota: Quota, subject: str) -> QuotaState | None:
        if self._off_until is not None and self._monotonic() < self._off_until:
            return None
        item = RateLimitItemPerSecond(quota.limit, quota.window_seconds)
        try:
            allowed = self._limiter.hit(item, quota.policy, subject)
            stats = self._limiter.get_window_stats(item, quota.policy, subject)
        except Exception as error:  # any failure of the store: fail open, never a 500
            self._switch_off(error)
            return None
        if self._off_until is not None:
            with self._lock:
                if self._off_until is not None:
                    self._off_until = None
                    log.warning("rate limits are on again: the %s store answers", self.kind)
        return QuotaState(
            quota=quota,
            allowed=allowed,
            remaining=max(0, stats.remaining),
            reset_seconds=max(1, math.ceil(stats.reset_time - time.time())),
        )

    def _switch_off(self, error: Exception) -> None:
        with self._lock:
            self._off_until = self._monotonic() + self._pause
        log.error(
            "rate limits are OFF for %.0f s (requests pass unlimited): the %s store failed: %r",
            self._pause,
            self.kind,
            error,
        )


class CachedTenantPlans:
    """Implements application.rate_limits.TenantPlans from the tenants read model, cached per
    process for `ttl_seconds`, so a request costs no query: a plan change reaches the limiter
    within that time (plus the read model's own lag, normally none)."""

    def __init__(
        self,
        tenants: TenantReadModel,
        *,
        ttl_seconds: float = 30.0,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenants = tenants
        self._ttl = ttl_seconds
        self._max = max_entries
        self._monotonic = monotonic
        self._cache: OrderedDict[UUID, tuple[float, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def plan_of(self, tenant_id: UUID) -> str | None:
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(tenant_id)
            if cached is not None and cached[0] > now:
                return cached[1]
        plan = self._read(tenant_id)
        with self._lock:
            self._cache[tenant_id] = (now + self._ttl, plan)
            self._cache.move_to_end(tenant_id)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return plan

    def _read(self, tenant_id: UUID) -> str | None:
        try:
            record = self._tenants.get(tenant_id)
        except Exception:  # a read-model hiccup must not fail the request: use the default plan
            log.exception("could not read the plan of tenant %s", tenant_id)
            return None
        if record is None:
            return None
        plan = msgspec.json.decode(record.tenant.doc).get("plan")
        return plan if isinstance(plan, str) else None
