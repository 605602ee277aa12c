"""A small closed-loop HTTP load generator: N connections, each sending its next request as soon
as the previous answer arrives, bounded by a duration and a request cap.

Two interchangeable clients: aiohttp (fast; not a project dependency) and httpx (a dev
dependency, but its pool costs ~1 ms of client CPU per request, so it saturates before a fast
server does). Only loopback URLs are accepted.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

# (method, path, body) for the next request; bodies are pre-encoded JSON bytes.
RequestMaker = Callable[[], tuple[str, str, bytes | None]]
# Called with (status, body, Location header) for every 2xx answer.
OnOk = Callable[[int, bytes, str | None], None]

MAX_ERROR_SAMPLES = 8
GIVE_UP_AFTER_TRANSPORT_ERRORS = 1000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Set (e.g. by a SIGINT/SIGTERM handler) to end the running scenario after the requests in
# flight; run_scenario then raises KeyboardInterrupt. Cancelling tasks instead is not reliable:
# a cancelled client request may surface as an ordinary exception the worker counts and survives.
STOP = threading.Event()


class Client(Protocol):
    name: str

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes, str | None]: ...

    async def aclose(self) -> None: ...


def _loopback_only(base: str) -> None:
    if urlparse(base).hostname != "127.0.0.1":
        raise ValueError(f"the load generator only talks to 127.0.0.1, not {base}")


class HttpxClient:
    name = "httpx"

    def __init__(self, base: str, concurrency: int) -> None:
        import httpx

        _loopback_only(base)
        self._client = httpx.AsyncClient(
            base_url=base,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=30,
            trust_env=False,
        )

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes, str | None]:
        response = await self._client.request(method, path, content=body, headers=headers)
        return response.status_code, response.content, response.headers.get("location")

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpClient:
    name = "aiohttp"

    def __init__(self, base: str, concurrency: int) -> None:
        import aiohttp

        _loopback_only(base)
        self._session = aiohttp.ClientSession(
            base_url=base,
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes, str | None]:
        async with self._session.request(method, path, data=body, headers=headers) as response:
            data = await response.read()
            return response.status, data, response.headers.get("Location")

    async def aclose(self) -> None:
        await self._session.close()


def aiohttp_available() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def make_client(kind: str, base: str, concurrency: int) -> Client:
    """kind: "aiohttp", "httpx" or "auto" (aiohttp when installed). Call inside a running loop."""
    if kind == "auto":
        kind = "aiohttp" if aiohttp_available() else "httpx"
    if kind == "aiohttp":
        return AiohttpClient(base, concurrency)
    return HttpxClient(base, concurrency)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc; 0.0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot, from /proc/stat; 0.0 where unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass
class Result:
    """One scenario, accumulated over the rounds (slices) it was measured in."""

    scenario: str
    client: str
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    errors: int = 0  # non-2xx answers and transport failures, warm-up included
    statuses: Counter[int] = field(default_factory=Counter)  # warm-up included; 0 = no answer
    error_samples: list[str] = field(default_factory=list)
    slice_rps: list[float] = field(default_factory=list)  # req/s of each round
    client_cpu_s: float = 0.0  # CPU seconds of this (load generator) process
    server_cpu_s: float = 0.0  # CPU seconds of the server process, all its threads
    machine_busy_s: float = 0.0  # CPU seconds of the whole machine, all cores

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def client_cpu(self) -> float:
        """Share of one core used by the load generator."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0

    @property
    def server_cpu(self) -> float:
        """Share of one core used by the server process."""
        return self.server_cpu_s / self.seconds if self.seconds else 0.0

    @property
    def other_cpu(self) -> float:
        """Cores' worth of CPU used by everything else meanwhile: the database server, and
        anyone else's work (noise, unless it is PostgreSQL serving this benchmark)."""
        if not self.seconds:
            return 0.0
        return max(0.0, self.machine_busy_s / self.seconds - self.client_cpu - self.server_cpu)

    @property
    def spread(self) -> float:
        """(max - min) / mean of the rounds' req/s: how much the machine drifted."""
        if len(self.slice_rps) < 2 or not self.rps:
            return 0.0
        return (max(self.slice_rps) - min(self.slice_rps)) / self.rps

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "client": self.client,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "round_rps": [round(r, 1) for r in self.slice_rps],
            "p50_ms": round(self.percentile_ms(50), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "max_ms": round(max(self.latencies) * 1000, 3) if self.latencies else None,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "error_samples": self.error_samples,
            "client_cpu": round(self.client_cpu, 2),
            "server_cpu": round(self.server_cpu, 2),
            "other_cpu": round(self.other_cpu, 2),
        }


class _Phase:
    def __init__(self, result: Result, record: bool, deadline: float, cap: int) -> None:
        self.result, self.record, self.deadline, self.cap = result, record, deadline, cap
        self.started = 0
        self.transport_errors = 0

    def take(self) -> bool:
        if STOP.is_set():
            return False
        if self.started >= self.cap or time.perf_counter() >= self.deadline:
            return False
        if self.transport_errors >= GIVE_UP_AFTER_TRANSPORT_ERRORS:
            return False
        self.started += 1
        return True


def _sample(result: Result, text: str) -> None:
    if len(result.error_samples) < MAX_ERROR_SAMPLES:
        result.error_samples.append(text)


async def _worker(
    client: Client,
    phase: _Phase,
    make: RequestMaker,
    headers: dict[str, str],
    on_ok: OnOk | None,
) -> None:
    result = phase.result
    clock = time.perf_counter
    while phase.take():
        method, path, body = make()
        started = clock()
        try:
            status, data, location = await client.send(method, path, headers, body)
        except Exception as error:  # a benchmark reports failures instead of dying on them
            phase.transport_errors += 1
            result.errors += 1
            result.statuses[0] += 1
            _sample(result, f"{method} {path} -> {type(error).__name__}: {error}")
            continue
        elapsed = clock() - started
        if phase.record:
            result.latencies.append(elapsed)
        result.statuses[status] += 1
        if 200 <= status < 300:
            if on_ok is not None:
                on_ok(status, data, location)
        else:
            result.errors += 1
            _sample(
                result,
                f"{method} {path} -> {status}: {data[:600].decode('utf-8', 'replace')}",
            )


async def run_scenario(
    client: Client,
    scenario: str,
    make: RequestMaker,
    *,
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    warmup: float,
    max_requests: int,
    server_pid: int | None = None,
    on_ok: OnOk | None = None,
    into: Result | None = None,
) -> Result:
    """Warm up (not recorded), then measure for `seconds` or `max_requests`, whichever comes
    first. With `into`, the measurement is added to an earlier one (another round)."""
    import asyncio

    result = into or Result(scenario=scenario, client=client.name, concurrency=concurrency)

    async def phase(record: bool, duration: float, cap: int) -> _Phase:
        p = _Phase(result, record, time.perf_counter() + duration, cap)
        await asyncio.gather(
            *(_worker(client, p, make, headers, on_ok) for _ in range(concurrency))
        )
        return p

    if warmup > 0:
        await phase(False, warmup, max_requests)
    if STOP.is_set():
        raise KeyboardInterrupt(f"stopped during {scenario}")
    before = len(result.latencies)
    busy0, cpu0 = machine_busy_seconds(), time.process_time()
    server0, t0 = _server_cpu(server_pid), time.perf_counter()
    measured = await phase(True, seconds, max_requests)
    elapsed = time.perf_counter() - t0
    result.server_cpu_s += _server_cpu(server_pid) - server0
    result.client_cpu_s += time.process_time() - cpu0
    result.machine_busy_s += machine_busy_seconds() - busy0
    result.seconds += elapsed
    result.requests = len(result.latencies)
    result.slice_rps.append((result.requests - before) / elapsed)
    if STOP.is_set():
        raise KeyboardInterrupt(f"stopped during {scenario}")
    if measured.transport_errors >= GIVE_UP_AFTER_TRANSPORT_ERRORS:
        _sample(result, f"gave up after {measured.transport_errors} transport errors")
    return result


def _server_cpu(pid: int | None) -> float:
    return process_cpu_seconds(pid) if pid else 0.0
