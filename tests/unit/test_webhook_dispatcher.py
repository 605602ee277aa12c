"""The dispatcher's own logic with fakes behind its ports: attempts are recorded in batches,
and one attempt that cannot be recorded does not take the others down with it."""

from __future__ import annotations

import base64
import itertools
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.webhook_delivery import (
    SUCCEEDED,
    ClaimedDelivery,
    Finished,
    Outcome,
    SendResult,
)
from application.webhook_dispatcher import Dispatcher

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Secrets:
    def put(self, tenant_id: UUID, secret_id: UUID, secret: str) -> None:
        raise NotImplementedError

    def get(self, tenant_id: UUID, secret_ids: Sequence[UUID]) -> dict[UUID, str]:
        return dict.fromkeys(secret_ids, SECRET)


class Sender:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult:
        self.sent.append(headers["webhook-id"])
        return SendResult(duration_ms=1, status=200, body="")

    async def close(self) -> None:
        pass


class Queue:
    """Hands out `n` deliveries once; refuses to record any batch holding `bad`."""

    def __init__(self, n: int, bad: UUID | None = None) -> None:
        self.due = [self._delivery() for _ in range(n)]
        self.bad = bad or self.due[-1].delivery_id
        self.batches: list[int] = []
        self.refused: list[int] = []  # sizes of the batches refused

    @staticmethod
    def _delivery() -> ClaimedDelivery:
        return ClaimedDelivery(
            lease="",
            delivery_id=uuid.uuid4(),
            tenant_id=uuid.uuid4(),
            endpoint_id=uuid.uuid4(),
            url="https://example.com/hook",
            body=b"{}",
            secret_id=uuid.uuid4(),
            previous_secret_id=None,
            previous_valid_until=None,
        )

    def claim(self, now: Any, lease_until: Any, limit: int, lease: str) -> list[ClaimedDelivery]:
        claimed, self.due = self.due[:limit], self.due[limit:]
        return claimed

    def finish(self, outcomes: Sequence[Outcome]) -> list[Finished]:
        self.batches.append(len(outcomes))
        if any(o.delivery_id == self.bad for o in outcomes):
            self.refused.append(len(outcomes))
            raise ValueError("cannot record this one")
        return [
            Finished(
                delivery_id=o.delivery_id,
                endpoint_id=uuid.uuid4(),
                attempt=1,
                decision=o.decide(1),
            )
            for o in outcomes
        ]

    def failing_since(self, endpoint_id: UUID) -> datetime | None:
        return None


def dispatcher(queue: Queue, sender: Sender) -> Dispatcher:
    return Dispatcher(
        queue,
        lambda: sender,
        Secrets(),
        log=None,  # type: ignore[arg-type]  # nothing here disables an endpoint
        clock=Clock(),
        schedule=(1.0,),
    )


def test_attempts_are_recorded_in_batches() -> None:
    queue, sender = Queue(50, bad=uuid.uuid4()), Sender()
    finished = dispatcher(queue, sender).run_once()
    assert len(sender.sent) == len(set(sender.sent)) == 50
    assert len(finished) == 50
    assert {f.decision.status for f in finished if f.decision} == {SUCCEEDED}
    assert sum(queue.batches) == 50
    assert len(queue.batches) < 50  # more than one attempt per transaction


def test_an_attempt_that_cannot_be_recorded_does_not_sink_the_others() -> None:
    queue, sender = Queue(20), Sender()
    bad = queue.bad
    finished = dispatcher(queue, sender).run_once()
    assert len(sender.sent) == 20
    assert {f.delivery_id for f in finished} == _ids(sender) - {bad}
    assert len(finished) == 19
    assert max(queue.refused) > 1  # it was refused in company, and the others still recorded


def _ids(sender: Sender) -> set[UUID]:
    return {UUID(hex=msg_id.removeprefix("msg_")) for msg_id in sender.sent}


def test_a_burst_of_wakes_costs_a_few_looks_not_one_each() -> None:
    """Every write of the process wakes its dispatcher; each look is an outbox batch and a claim
    (write transactions competing with the writes), so looks are kept min_look_seconds apart."""
    looks: list[float] = []
    running = Dispatcher(
        Queue(0, bad=uuid.uuid4()),
        Sender,
        Secrets(),
        log=None,  # type: ignore[arg-type]
        clock=Clock(),
        schedule=(1.0,),
        prepare=lambda: looks.append(time.monotonic()),
        poll_seconds=10.0,  # no polling inside the test's second: every look is a wake's
        min_look_seconds=0.1,
    )
    running.start()
    try:
        deadline = time.monotonic() + 2
        while not looks and time.monotonic() < deadline:  # the first look, at start
            time.sleep(0.01)
        begun = len(looks)
        burst_end = time.monotonic() + 0.5
        while time.monotonic() < burst_end:  # 500 wakes over half a second
            running.wake()
            time.sleep(0.001)
        time.sleep(0.2)
    finally:
        running.stop()
    woken = looks[begun:]
    assert 1 <= len(woken) <= 8, f"{len(woken)} looks for a burst of wakes"
    gaps = [b - a for a, b in itertools.pairwise(looks)]
    assert min(gaps) >= 0.09
