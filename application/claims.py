"""Claiming and releasing natural keys (see domain.uniqueness), and the retry that turns a lost
race on a key into the right 409."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from application.errors import ConcurrentWrite
from application.event_log import EventLog
from domain.uniqueness import UniqueKey, normalise_key, unique_key_id

T = TypeVar("T")


def claim(
    log: EventLog,
    *,
    assume_new: bool = False,
    scope: str,
    value: str,
    owner_id: UUID,
    tenant_id: UUID,
    platform_wide: bool,
    at: datetime,
) -> UniqueKey:
    """The key aggregate with a pending claim for `owner_id`, to be saved with the owner.

    Raises KeyAlreadyClaimed when someone else holds the key. With `assume_new` the key is not
    read first (most keys are new: a read saved per key); if it does exist, the save fails with
    ConcurrentWrite and the caller runs again without assuming (see `optimistically`).
    """
    key_id = unique_key_id(scope, value, None if platform_wide else tenant_id)
    key = None if assume_new else log.load(UniqueKey, key_id)
    if key is None:
        return UniqueKey.claim_new(
            scope=scope,
            value=value,
            owner_id=owner_id,
            tenant_id=tenant_id,
            platform_wide=platform_wide,
            at=at,
        )
    key.reclaim(value=value, owner_id=owner_id, tenant_id=tenant_id, at=at)
    return key


def change_claim(
    log: EventLog,
    *,
    scope: str,
    old: str,
    new: str,
    owner_id: UUID,
    tenant_id: UUID,
    platform_wide: bool,
    at: datetime,
) -> list[UniqueKey]:
    """Move an owner's claim from `old` to `new`: nothing when they are the same key."""
    if normalise_key(old) == normalise_key(new):
        return []
    acquired = claim(
        log,
        scope=scope,
        value=new,
        owner_id=owner_id,
        tenant_id=tenant_id,
        platform_wide=platform_wide,
        at=at,
    )
    released = log.load(UniqueKey, unique_key_id(scope, old, None if platform_wide else tenant_id))
    if released is None:
        return [acquired]
    released.release(owner_id=owner_id, at=at)
    return [acquired, released]


def rerun_on_conflict(command: Callable[[], T], attempts: int = 5) -> T:
    """Run a command that re-reads everything it decides on, again each time it loses a race to
    a concurrent writer of the same aggregate (hot aggregates: a squad being staffed, a
    milestone's last tasks). Each rerun decides afresh against the winner's events; a short
    random pause keeps the losers from colliding again in lock-step."""
    for attempt in range(1, attempts + 1):
        try:
            return command()
        except ConcurrentWrite:
            if attempt == attempts:
                raise
            time.sleep(random.uniform(0, 0.002 * attempt))  # jitter, not security
    raise AssertionError("unreachable")


def retry_once(command: Callable[[], T]) -> T:
    """Run a command that re-reads everything it decides on; run it again once if it lost a race.

    The second run sees the winner's events, so a lost race on a natural key becomes
    KeyAlreadyClaimed (409 duplicate) and a lost race on an ordinary update simply applies on top
    of the winner's (If-Match, when sent, still guards the caller's intent).
    """
    return rerun_on_conflict(command, attempts=2)


def optimistically(command: Callable[[bool], T]) -> T:
    """Run `command(assume_new=True)`; if it lost a race or assumed wrongly, run it again reading
    everything (`assume_new=False`), which turns a taken key into KeyAlreadyClaimed."""
    try:
        return command(True)
    except ConcurrentWrite:
        return command(False)
