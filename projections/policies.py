"""Policies: events that cause more work. Each follows the log with its own tracking position,
like a projection, but its effect is a command (a write to the event log), so it runs outside
any read-model transaction and its position advances after the command. A crash in between
repeats the command, which is why every policy command is idempotent by construction (a
deterministic id for what it creates): a repeat collides with the first write instead of
repeating it. Any number of processes may run the same policy for the same reason.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from application.billing import BillingCommands
from application.context import system_context
from application.event_log import EventLog, RecordedEvent
from application.ports import SqlDatabase
from domain.engagement import Engagement
from projections.runner import TRACKING_DDL

log = logging.getLogger(__name__)


class Policy(Protocol):
    name: str

    def handle(self, recorded: RecordedEvent) -> None: ...


class MilestoneBilling:
    """A completed milestone with an amount gets one Draft invoice (API.md, billing)."""

    name = "policy:milestone-billing"

    def __init__(self, billing: BillingCommands) -> None:
        self._billing = billing

    def handle(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, Engagement.MilestoneCompleted):
            ctx = system_context("milestone-billing", f"milestone-billing:{recorded.position}")
            self._billing.bill_milestone(ctx, event)


class PolicyRunner:
    def __init__(
        self, log: EventLog, db: SqlDatabase, policies: list[Policy], batch_size: int = 200
    ) -> None:
        self._log = log
        self._db = db
        self._policies = policies
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def setup(self) -> None:
        with self._db.transaction() as cur:
            cur.execute(TRACKING_DDL)
            for policy in self._policies:
                cur.execute(
                    "INSERT INTO projection_tracking (name, position) VALUES (?, 0)"
                    " ON CONFLICT (name) DO NOTHING",
                    (policy.name,),
                )

    def catch_up(self) -> int:
        """Handle every event each policy has not handled yet. Returns how many were handled."""
        handled = 0
        with self._lock:
            for policy in self._policies:
                while True:
                    position = self._position(policy.name)
                    events = self._log.read(position, self._batch_size)
                    if not events:
                        break
                    for recorded in events:
                        policy.handle(recorded)
                        handled += 1
                    self._advance(policy.name, events[-1].position)
        return handled

    def _position(self, name: str) -> int:
        rows = self._db.query("SELECT position FROM projection_tracking WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def _advance(self, name: str, position: int) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE projection_tracking SET position = ? WHERE name = ? AND position < ?",
                (position, name, position),
            )
