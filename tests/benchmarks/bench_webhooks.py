"""Benchmark: webhook delivery throughput and commit-to-consumer latency, against a raw aiohttp
client in the same run.

    .venv/bin/python -m tests.benchmarks.bench_webhooks [--store sqlite|postgres]
        [--events 300] [--endpoints 10] [--rounds 3] [--latency-events 100] [--json out.json]

All on this machine, every process real:
  - a fast consumer (tests/benchmarks/webhook_consumer.py: aiohttp, its own process) records
    each request's arrival time;
  - throughput: a real `workledger worker` sends the deliveries of `--events` events, recorded
    in one commit, to `--endpoints` endpoints of one tenant (events x endpoints deliveries);
    deliveries/s is counted at the consumer from the first arrival to the last. Baseline: a
    raw aiohttp client (32 connections, as the dispatcher) POSTing as many requests of the same
    size to the same consumer, counted the same way. Rounds alternate the two;
  - latency: a real `workledger serve`; events are written one at a time, through its API
    (the dispatcher is woken by the write) and by another process (found by polling), and the
    latency is the consumer's arrival time minus the event's `occurredAt` (taken before the
    commit, so it bounds commit-to-first-attempt from above). Baseline: one raw aiohttp POST at
    a time, arrival minus the moment before sending.
Prints a table and the ratios, then the results as JSON (last stdout line, or --json PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.benchmarks.loadgen import process_cpu_seconds

ROOT = Path(__file__).resolve().parents[2]
WORKLEDGER = str(Path(sys.executable).parent / "workledger")
DEFAULT_PG = os.environ.get("WORKLEDGER_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
CONCURRENCY = 32  # the dispatcher's default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A subprocess whose output goes to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT
        )

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log.read_text(errors='replace')}")

    def cpu(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()

    def problems(self) -> list[str]:
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or " ERROR " in line]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


class ConsumerClient:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30, trust_env=False)

    def count(self) -> int:
        return int(self.http.get("/count").json())

    def received(self, after: int) -> list[tuple[float, str, str]]:
        return [tuple(r) for r in self.http.get("/received", params={"after": after}).json()]

    def ready(self) -> bool:
        try:
            self.count()
        except httpx.TransportError:
            return False
        return True


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def rate_of(arrivals: list[float]) -> float:
    """Requests per second from the first arrival to the last."""
    span = max(arrivals) - min(arrivals)
    return (len(arrivals) - 1) / span if span > 0 else float("inf")


# ---------------------------------------------------------------------------- baselines


async def _raw_burst(url: str, body: bytes, headers: dict[str, str], n: int) -> None:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _raw_latencies(url: str, body: bytes, headers: dict[str, str], n: int) -> list[float]:
    sent: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            await asyncio.sleep(random.uniform(0.005, 0.03))
            sent.append(time.time())
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
    return sent


# ---------------------------------------------------------------------------- workledger


def make_services(env: dict[str, str]) -> Any:
    from adapters.settings import load_settings
    from entrypoints.container import build

    return build(load_settings(env, read_dotenv=False))


def provision(services: Any, name: str) -> uuid.UUID:
    from application.tenants import ProvisionTenant, TenantCommands
    from tests.integration.workload import context

    written = services.get(TenantCommands).provision(
        context("platform-admin"), ProvisionTenant(name=name, contact_email="ops@example.com")
    )
    services.projections.catch_up()
    return uuid.UUID(str(written.id))


def customers_in_one_commit(services: Any, tenant_id: uuid.UUID, n: int) -> None:
    """`n` customer.created events recorded in one save: the outbox meets them all at once."""
    from application.context import EventMeta
    from domain.customer import Customer, Details

    now = datetime.now(UTC)
    made = [
        Customer.register(
            customer_id=uuid.uuid4(),
            tenant_id=tenant_id,
            details=Details(
                name=f"Bench {uuid.uuid4().hex[:8]}",
                email=None,
                phone_number=None,
                billing_address=None,
                currency=None,
            ),
            at=now,
        )
        for _ in range(n)
    ]
    services.log.record(*made, meta=EventMeta(actor="user:bench", request_id="bench"))


def one_customer(services: Any, tenant_id: uuid.UUID) -> None:
    from application.customers import CreateCustomer, CustomerCommands
    from tests.integration.workload import context

    ctx = context("customer-admin", tenant=tenant_id, sub="elsewhere")
    services.get(CustomerCommands).create(ctx, CreateCustomer(name=f"C {uuid.uuid4().hex[:10]}"))


def token(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [WORKLEDGER, "token", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def occurred(body: str) -> float:
    stamp = json.loads(body)["timestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------- the run


@contextlib.contextmanager
def store(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    if args.store == "sqlite":
        yield f"sqlite:///{tmp}/workledger.db"
        return
    import psycopg

    schema = f"wl_bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{args.pg_url}?schema={schema}"
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run(args: argparse.Namespace, tmp: Path, database_url: str) -> dict[str, Any]:
    from tests.webhooks.consumers import register_endpoint

    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKLEDGER_")}
    env.update(
        {
            "WORKLEDGER_DATABASE_URL": database_url,
            "WORKLEDGER_VAR_DIR": str(tmp / "var"),
            "WORKLEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        }
    )
    procs: list[Proc] = []
    services = make_services(env)
    try:
        port = free_port()
        consumer = Proc(
            "consumer",
            [sys.executable, "-m", "tests.benchmarks.webhook_consumer", "--port", str(port)],
            env,
            tmp / "consumer.log",
        )
        procs.append(consumer)
        hook = ConsumerClient(f"http://127.0.0.1:{port}")
        wait_for(hook.ready, 30, "the consumer")

        # -- throughput -------------------------------------------------------------------
        tenant = provision(services, "Bench throughput")
        for n in range(args.endpoints):
            register_endpoint(services, tenant, f"{hook.base}/hook/{n}", ["customer.created"])
        services.outbox.catch_up()
        worker = Proc(
            "worker", [WORKLEDGER, "worker", "--interval", "0.2"], env, tmp / "worker.log"
        )
        procs.append(worker)
        # Warm-up, not recorded: the worker's start, first connections, first outbox batch.
        before = hook.count()
        customers_in_one_commit(services, tenant, max(1, args.events // 10))
        wait_for(
            lambda: (
                (worker.alive() or True)
                and hook.count() >= before + max(1, args.events // 10) * args.endpoints
            ),
            120,
            "the warm-up deliveries",
        )
        per_round = args.events * args.endpoints
        rounds: list[dict[str, Any]] = []
        sample_body = b""
        for r in range(args.rounds):
            # workledger
            before = hook.count()
            cpu0 = worker.cpu()
            committed = time.time()
            customers_in_one_commit(services, tenant, args.events)
            wait_for(
                lambda b=before: (worker.alive() or True) and hook.count() >= b + per_round,
                300,
                "the deliveries",
            )
            got = hook.received(before)
            arrivals = [at for at, _, _ in got]
            ids = [i for _, i, _ in got]
            wl_rate = rate_of(arrivals)
            end_to_end = per_round / (max(arrivals) - committed)
            cpu = worker.cpu() - cpu0
            sample_body = got[0][2].encode()
            # baseline: as many POSTs of a delivery's size, 32 at a time
            headers = {
                "content-type": "application/json",
                "webhook-id": "msg_" + uuid.uuid4().hex,
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1," + "A" * 44,
            }
            before = hook.count()
            asyncio.run(_raw_burst(f"{hook.base}/raw", sample_body, headers, per_round))
            raw_arrivals = [at for at, _, _ in hook.received(before)]
            raw_rate = rate_of(raw_arrivals)
            rounds.append(
                {
                    "round": r + 1,
                    "deliveries": per_round,
                    "duplicates": len(ids) - len(set(ids)),
                    "workledger_per_s": round(wl_rate, 1),
                    "workledger_commit_to_last_per_s": round(end_to_end, 1),
                    "worker_cpu_s_per_1k": round(cpu / per_round * 1000, 3),
                    "raw_aiohttp_per_s": round(raw_rate, 1),
                }
            )
            print(f"round {r + 1}: {rounds[-1]}", file=sys.stderr, flush=True)
        worker.stop()
        statuses = services.db.query(
            "SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status"
        )

        # -- latency ----------------------------------------------------------------------
        serve_port = free_port()
        server = Proc(
            "serve",
            [WORKLEDGER, "serve", "--port", str(serve_port)],
            env,
            tmp / "serve.log",
        )
        procs.append(server)
        base = f"http://127.0.0.1:{serve_port}"

        def server_ready() -> bool:
            server.alive()
            try:
                return httpx.get(base + "/health/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(server_ready, 60, "workledger serve")
        latency_tenant = provision(services, "Bench latency")
        register_endpoint(services, latency_tenant, f"{hook.base}/latency", ["customer.created"])
        auth = {
            "authorization": "Bearer "
            + token(env, "--role", "customer-admin", "--tenant", str(latency_tenant))
        }
        own: list[float] = []
        with httpx.Client(base_url=base + "/api/v1", timeout=30, trust_env=False) as http:
            for _ in range(args.latency_events):
                time.sleep(random.uniform(0.005, 0.03))
                before = hook.count()
                answer = http.post(
                    "/customers", headers=auth, json={"name": f"L {uuid.uuid4().hex[:10]}"}
                )
                assert answer.status_code == 201, answer.text
                wait_for(lambda b=before: hook.count() > b, 10, "the message")
                at, _, body = hook.received(before)[0]
                own.append(at - occurred(body))
        other: list[float] = []
        for _ in range(args.latency_events):
            # Spread over more than a poll interval, so writes land anywhere in the poll cycle.
            time.sleep(random.uniform(0.005, 0.25))
            before = hook.count()
            one_customer(services, latency_tenant)
            wait_for(lambda b=before: hook.count() > b, 10, "the message")
            at, _, body = hook.received(before)[0]
            other.append(at - occurred(body))
        before = hook.count()
        sent = asyncio.run(
            _raw_latencies(f"{hook.base}/raw", sample_body, headers, args.latency_events)
        )
        arrived = [at for at, _, _ in hook.received(before)]
        raw = [a - s for a, s in zip(arrived, sent, strict=True)]
        server.stop()
        problems = {p.name: p.problems() for p in procs}
    finally:
        for proc in procs:
            proc.stop()
        services.close()

    def ms(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(values, 0.5) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }

    wl_rates = [r["workledger_per_s"] for r in rounds]
    raw_rates = [r["raw_aiohttp_per_s"] for r in rounds]
    return {
        "store": args.store,
        "cores": os.cpu_count(),
        "events_per_round": args.events,
        "endpoints": args.endpoints,
        "rounds": rounds,
        "deliveries_per_s": round(statistics.mean(wl_rates), 1),
        "raw_aiohttp_per_s": round(statistics.mean(raw_rates), 1),
        "ratio": round(statistics.mean(wl_rates) / statistics.mean(raw_rates), 3),
        "final_statuses": dict(statuses),
        "latency": {
            "write_through_serve": ms(own),
            "write_by_another_process": ms(other),
            "raw_aiohttp_post": ms(raw),
        },
        "problems": {k: v for k, v in problems.items() if v},
    }


def report(result: dict[str, Any]) -> None:
    print()
    print(
        f"store {result['store']}, {result['cores']} cores, "
        f"{result['events_per_round']} events x {result['endpoints']} endpoints per round"
    )
    print(f"{'throughput':40} {'per s':>10}")
    print(f"{'workledger worker (dispatcher)':40} {result['deliveries_per_s']:>10}")
    print(f"{'raw aiohttp client, 32 connections':40} {result['raw_aiohttp_per_s']:>10}")
    print(f"{'ratio workledger / raw':40} {result['ratio']:>10}")
    print()
    print(f"{'latency to the consumer':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, figures in result["latency"].items():
        print(f"{name:40} {figures['p50_ms']:>8} {figures['p99_ms']:>8} {figures['max_ms']:>8}")
    print(f"final delivery statuses: {result['final_statuses']}")
    if result["problems"]:
        print(f"PROBLEMS in process logs: {result['problems']}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--events", type=int, default=300, help="events per round (one commit)")
    parser.add_argument("--endpoints", type=int, default=10, help="endpoints per event")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-events", type=int, default=100)
    parser.add_argument("--tmp-dir", default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tmp = Path(tempfile.mkdtemp(prefix="wl-bench-hooks-", dir=args.tmp_dir))
    try:
        with store(args, tmp) as database_url:
            result = run(args, tmp, database_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(result)
    text = json.dumps(result)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    bad = result["problems"] or any(r["duplicates"] for r in result["rounds"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
