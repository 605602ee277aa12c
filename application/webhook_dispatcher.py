"""The webhook dispatcher: sends the outbox's due deliveries, records every attempt and decides
what happens next (application/webhook_delivery.py).

It runs in a thread of its own with its own asyncio loop (`start`/`stop`), in every `serve`
process and in `workledger worker`; any number may run at once. A delivery is leased before
it is sent, so two dispatchers never send it at the same time, and a dispatcher killed
mid-send leaves it due again once the lease runs out: delivery is at least once, under the
same `webhook-id`.

The loop keeps up to `concurrency` sends in flight and claims more as slots free up, so a
slow send never holds up the rest of a batch; attempts are recorded in batches too. Claims go
in due order (first come, first served): an endpoint with a large backlog that answers slowly
can fill every slot for up to the send timeout; per-endpoint fairness is not attempted yet.
It looks for due work when woken (`wake()`, after a write in this process), when an attempt
it made is due for a retry, and at least every `poll_seconds` (for writes of other processes
and their retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar
from uuid import UUID

from application.context import system_context
from application.errors import ConcurrentWrite
from application.event_log import EventLog
from application.ports import Clock, WebhookSecrets
from application.webhook_delivery import (
    PENDING,
    AttemptRecord,
    ClaimedDelivery,
    Decision,
    DeliveryQueue,
    Finished,
    Outcome,
    SendResult,
    WebhookSender,
    decide,
    failing_for_too_long,
    headers_for,
    message_id,
    signature_header,
    signing_secret_ids,
)
from domain.errors import DomainError
from domain.webhook import DELETED, WebhookEndpoint

log = logging.getLogger(__name__)
T = TypeVar("T")

DISPATCHER = "webhook-dispatcher"  # the audit trail's actor: system:webhook-dispatcher


class Dispatcher:
    def __init__(
        self,
        queue: DeliveryQueue,
        senders: Callable[[], WebhookSender],
        secrets: WebhookSecrets,
        log: EventLog,
        clock: Clock,
        *,
        schedule: tuple[float, ...],
        prepare: Callable[[], object] = lambda: None,
        concurrency: int = 32,
        lease_seconds: float = 60.0,
        poll_seconds: float = 0.2,
        min_look_seconds: float = 0.05,
        disable_after: timedelta = timedelta(days=5),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """`senders` opens a sender inside the loop that uses it; `prepare` runs before each
        claim (the outbox catching up, so a new event's deliveries go out in the same round).
        The lease must outlast a send (the sender's timeout) by a good margin. Wakes (one per
        write of this process) are answered at most every `min_look_seconds`: under a burst of
        writes one outbox batch and one claim serve many of them, instead of two more write
        transactions per write competing with the writes themselves."""
        self._queue = queue
        self._senders = senders
        self._secrets = secrets
        self._log = log
        self._clock = clock
        self._schedule = schedule
        self._prepare = prepare
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._min_look = min_look_seconds
        self._disable_after = disable_after
        self._jitter = jitter
        self._owner = uuid.uuid4().hex  # whose leases are whose; each claim adds a number
        self._claims = itertools.count(1)
        self._secret_cache: dict[tuple[UUID, UUID], str] = {}
        # Database calls leave the event loop for these threads; a fixed few, so a SQLite
        # store keeps a fixed few connections.
        self._db_threads: ThreadPoolExecutor | None = None
        self._db_threads_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._next_due: datetime | None = None  # the earliest retry this dispatcher scheduled

    # -- running ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run in a background thread until `stop()`."""
        if self.running:
            return
        self._stopping.clear()
        started = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(started)), name=DISPATCHER, daemon=True
        )
        self._thread.start()
        started.wait(5)

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop claiming; give sends in flight `grace_seconds` to finish (what is cut short is
        retried after its lease, here or elsewhere)."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(grace_seconds + 5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        with self._db_threads_lock:
            if self._db_threads is not None:
                self._db_threads.shutdown(wait=True)
                self._db_threads = None

    def wake(self) -> None:
        """Look for due deliveries now (thread-safe; a no-op when not running)."""
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    def run_once(self, limit: int = 1000) -> list[Finished]:
        """One round in the caller's thread: catch the outbox up, send every due delivery (up
        to `limit`) and wait for the outcomes. For tests and tools."""
        return asyncio.run(self._once(limit))

    async def _once(self, limit: int) -> list[Finished]:
        await self._in_db(self._prepare)
        claimed = await self._claim(limit)
        sender = self._senders()
        recorder = _Recorder(self)
        slots = asyncio.Semaphore(self._concurrency)

        async def one(delivery: ClaimedDelivery) -> Finished | None:
            async with slots:
                return await self._deliver(sender, recorder, delivery)

        try:
            finished = await asyncio.gather(*(one(d) for d in claimed))
        finally:
            await sender.close()
        return [f for f in finished if f is not None]

    async def _serve(self, started: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wakeup = wakeup = asyncio.Event()
        started.set()
        sender = self._senders()
        recorder = _Recorder(self)
        busy: set[asyncio.Task[Finished | None]] = set()
        # Claim once a quarter of the slots are free, not for every slot that frees: each
        # claim is a write transaction.
        batch = max(1, self._concurrency // 4)
        saturated = False  # the last claim filled every free slot: more may be due
        next_look = 0.0
        try:
            while not self._stopping.is_set():
                busy = {task for task in busy if not task.done()}
                free = self._concurrency - len(busy)
                claimed: list[ClaimedDelivery] = []
                if free >= batch or (free > 0 and not busy):
                    try:
                        if wakeup.is_set() or loop.time() >= next_look:
                            wakeup.clear()
                            next_look = loop.time() + self._poll
                            await self._in_db(self._prepare)
                        claimed = await self._claim(free)
                    except Exception:  # the database is away: try again at the next poll
                        log.exception("could not claim webhook deliveries")
                        claimed = []
                    saturated = len(claimed) == free
                    for delivery in claimed:
                        task = asyncio.create_task(self._deliver(sender, recorder, delivery))
                        busy.add(task)
                if self._stopping.is_set():
                    break
                if busy and (saturated or free < batch):  # go on once slots free up
                    await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
                    continue
                until = max(0.0, min(next_look - loop.time(), self._until_next_due()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), timeout=until)
                # next_look - poll is when the last look began: keep looks min_look apart.
                gap = next_look - self._poll + self._min_look - loop.time()
                if gap > 0 and not self._stopping.is_set():
                    await asyncio.sleep(gap)
                next_look = min(next_look, loop.time())  # woken or due: look now
        finally:
            if busy:
                await asyncio.wait(busy, timeout=5.0)
                for task in busy:
                    task.cancel()
            await sender.close()
            self._loop = None
            self._wakeup = None

    def _until_next_due(self) -> float:
        """Seconds until the earliest retry this dispatcher scheduled (the poll's length when
        there is none)."""
        if self._next_due is None:
            return self._poll
        return max((self._next_due - self._clock.now()).total_seconds(), 0.0)

    # -- one delivery -----------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[ClaimedDelivery]:
        now = self._clock.now()
        if self._next_due is not None and self._next_due <= now:
            self._next_due = None
        lease = f"{self._owner}:{next(self._claims)}"
        return await self._in_db(lambda: self._queue.claim(now, now + self._lease, limit, lease))

    async def _deliver(
        self, sender: WebhookSender, recorder: _Recorder, delivery: ClaimedDelivery
    ) -> Finished | None:
        """Send one claimed delivery and record the attempt; never raises (a delivery whose
        attempt cannot be recorded is due again after its lease)."""
        try:
            now = self._clock.now()
            timestamp = int(now.timestamp())
            msg_id = message_id(delivery.delivery_id)
            secrets = await self._signing_secrets(delivery, now)
            if secrets:
                signature = signature_header(secrets, msg_id, timestamp, delivery.body)
                result = await sender.send(
                    delivery.url, headers_for(msg_id, timestamp, signature), delivery.body
                )
            else:  # cannot happen unless the secret store lost a row: never send unsigned
                result = SendResult(duration_ms=0, error="the endpoint's signing secret is missing")
            finished = await recorder.record(self._outcome(delivery, now, result))
            decision = finished.decision
            if decision is not None and decision.status == PENDING:
                due = decision.next_attempt_at
                if due is not None and (self._next_due is None or due < self._next_due):
                    self._next_due = due
            await self._maybe_disable(delivery.endpoint_id, finished)
            return finished
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", delivery.delivery_id)
            return None

    def _outcome(self, delivery: ClaimedDelivery, sent_at: datetime, result: SendResult) -> Outcome:
        attempt = AttemptRecord(
            at=sent_at,
            duration_ms=result.duration_ms,
            response_status=result.status,
            response_body=result.body,
            error=result.error,
        )
        now = self._clock.now()
        jitter = self._jitter()

        def decision(failures: int) -> Decision:
            return decide(result, failures, self._schedule, now, jitter)

        return Outcome(delivery.delivery_id, delivery.lease, attempt, decision)

    async def _signing_secrets(self, delivery: ClaimedDelivery, now: datetime) -> list[str]:
        ids = signing_secret_ids(
            delivery.secret_id, delivery.previous_secret_id, delivery.previous_valid_until, now
        )
        missing = [i for i in ids if (delivery.tenant_id, i) not in self._secret_cache]
        if missing:
            found = await self._in_db(lambda: self._secrets.get(delivery.tenant_id, missing))
            for secret_id, secret in found.items():
                self._secret_cache[(delivery.tenant_id, secret_id)] = secret
        return [
            self._secret_cache[(delivery.tenant_id, i)]
            for i in ids
            if (delivery.tenant_id, i) in self._secret_cache
        ]

    # -- disabling --------------------------------------------------------------------------

    async def _maybe_disable(self, endpoint_id: UUID, finished: Finished) -> None:
        decision = finished.decision
        if decision is None or decision.status == PENDING:
            return
        reason = decision.disable_endpoint
        if reason is None and decision.reason is not None:  # failed for good: for how long?
            now = self._clock.now()
            since = await self._in_db(lambda: self._queue.failing_since(endpoint_id))
            if since is not None and failing_for_too_long(now, since, self._disable_after):
                reason = f"no successful delivery since {since.isoformat()}"
        if reason is not None:
            await self._in_db(lambda: self.disable_endpoint(endpoint_id, reason))

    def disable_endpoint(self, endpoint_id: UUID, reason: str) -> bool:
        """Record WebhookEndpoint.Disabled as the dispatcher (audited as
        system:webhook-dispatcher). False when it is disabled or deleted already."""
        ctx = system_context(DISPATCHER, f"{DISPATCHER}:{endpoint_id}")
        for _ in range(3):  # a concurrent write (a client, another dispatcher): look again
            endpoint = self._log.load(WebhookEndpoint, endpoint_id)
            if endpoint is None or endpoint.status == DELETED:
                return False
            try:
                if not endpoint.disable(reason=reason, at=self._clock.now()):
                    return False
                self._log.record(endpoint, meta=ctx.meta)
                log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
                return True
            except ConcurrentWrite:
                continue
            except DomainError:
                return False
        return False

    # -- plumbing ---------------------------------------------------------------------------

    async def _in_db(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), call)

    def _executor(self) -> ThreadPoolExecutor:
        with self._db_threads_lock:
            if self._db_threads is None:
                self._db_threads = ThreadPoolExecutor(4, thread_name_prefix="webhook-db")
            return self._db_threads


class _Recorder:
    """Records attempts in batches: whatever has finished while the previous batch was being
    written goes in the next transaction, so a busy dispatcher writes far fewer of them."""

    MAX_BATCH = 256

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._waiting: list[tuple[Outcome, asyncio.Future[Finished]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, outcome: Outcome) -> Finished:
        future: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        queue = self._dispatcher._queue
        while self._waiting:
            batch = self._waiting[: self.MAX_BATCH]
            del self._waiting[: self.MAX_BATCH]
            outcomes = [outcome for outcome, _ in batch]
            try:
                finished = await self._dispatcher._in_db(partial(queue.finish, outcomes))
            except Exception as error:
                if len(batch) == 1:  # the sender logs it; the lease makes it due again
                    _settle(batch[0][1], error=error)
                    continue
                # One bad attempt must not sink the others: write them one at a time.
                for outcome, future in batch:
                    try:
                        (one,) = await self._dispatcher._in_db(partial(queue.finish, [outcome]))
                    except Exception as each:
                        _settle(future, error=each)
                    else:
                        _settle(future, one)
                continue
            for (_, future), done in zip(batch, finished, strict=True):
                _settle(future, done)


def _settle(
    future: asyncio.Future[Finished],
    result: Finished | None = None,
    *,
    error: BaseException | None = None,
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    elif result is not None:
        future.set_result(result)
