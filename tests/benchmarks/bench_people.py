"""Benchmark: /api/v1/people on a real `workledger serve`, against its yardsticks, in one run.

    .venv/bin/python -m tests.benchmarks.bench_people [--seconds 10] [--concurrency 16]
        [--store sqlite|postgres] [--client auto|aiohttp|httpx] [--json results.json]

Measures on the same machine, interleaved in rounds so drift hits all alike:
  1. bare eventsourcing: saves/s of a one-event aggregate through `Application`, same store kind;
  2. a hello-world Litestar app on uvicorn (tests/benchmarks/hello_app.py): GET and POST;
  3. workledger: /health/live, POST /people, GET /people?limit=50, GET /people/{id}.
Prints a table and the ratios, then the results as JSON (last stdout line, or --json PATH).
See tests/benchmarks/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from tests.benchmarks.loadgen import (
    STOP,
    Client,
    Result,
    aiohttp_available,
    machine_busy_seconds,
    make_client,
    run_scenario,
)

ROOT = Path(__file__).resolve().parents[2]
WORKLEDGER = str(Path(sys.executable).parent / "workledger")
DEFAULT_PG = os.environ.get("WORKLEDGER_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
JSON_HEADERS = {"content-type": "application/json"}


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess whose output goes to a log file (read back if anything fails)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [*args, "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.base + path, timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready in {timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        """Terminate (then kill); the exit status, or None if it had to be killed."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                self._log_file.close()
                return None
        self._log_file.close()
        return self.process.returncode


def server_problems(output: str) -> list[str]:
    """Lines from a server's log that say something went wrong (tracebacks, errors)."""
    lines = output.splitlines()
    keep: list[str] = []
    for i, line in enumerate(lines):
        if "Traceback" in line or " ERROR " in line or "CRITICAL" in line:
            keep.extend(lines[i : i + 40])
            keep.append("...")
        if len(keep) > 200:
            break
    return keep


# ---------------------------------------------------------------------------- baselines


class BenchThing(Aggregate):
    """The trivial aggregate of the bare baseline: created, one event."""

    def __init__(self, n: int) -> None:
        self.n = n


class BenchBareApp(Application[uuid.UUID]):
    pass


class BareEventSourcing:
    """Saves/s of BenchThing through eventsourcing's Application, one thread, in this process;
    measured in slices between the HTTP scenarios, like them."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = BenchBareApp(env=env)
        self.saves, self.seconds, self.cpu_s, self.busy_s = 0, 0.0, 0.0, 0.0
        self.slice_rates: list[float] = []
        for n in range(50):  # warm up: connections, statement caches
            self.app.save(BenchThing(n))

    def measure(self, seconds: float) -> None:
        saves = 0
        busy0, cpu0 = machine_busy_seconds(), time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline and not STOP.is_set():
            self.app.save(BenchThing(saves))
            saves += 1
        elapsed = time.perf_counter() - started
        self.cpu_s += time.process_time() - cpu0
        self.busy_s += machine_busy_seconds() - busy0
        self.saves += saves
        self.seconds += elapsed
        self.slice_rates.append(saves / elapsed)
        if STOP.is_set():
            raise KeyboardInterrupt("stopped during the bare eventsourcing baseline")

    @property
    def rate(self) -> float:
        return self.saves / self.seconds if self.seconds else 0.0

    @property
    def cpu(self) -> float:
        return self.cpu_s / self.seconds if self.seconds else 0.0

    @property
    def other_cpu(self) -> float:
        return max(0.0, self.busy_s / self.seconds - self.cpu) if self.seconds else 0.0

    @property
    def spread(self) -> float:
        if len(self.slice_rates) < 2 or not self.rate:
            return 0.0
        return (max(self.slice_rates) - min(self.slice_rates)) / self.rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": "bare eventsourcing save",
            "saves": self.saves,
            "seconds": round(self.seconds, 3),
            "saves_per_s": round(self.rate, 1),
            "round_saves_per_s": [round(r, 1) for r in self.slice_rates],
            "cpu": round(self.cpu, 2),
            "other_cpu": round(self.other_cpu, 2),
        }

    def close(self) -> None:
        self.app.close()


UNLIMITED_PLANS = "starter=1000000000,professional=1000000000,enterprise=1000000000"


def es_env(store: str, tmp: Path, pg_url: str, schema: str) -> dict[str, str]:
    if store == "sqlite":
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / "bare.db")}
    from adapters.settings import postgres_parts

    parts = postgres_parts(pg_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts["dbname"],
        "POSTGRES_HOST": parts["host"],
        "POSTGRES_PORT": parts["port"],
        "POSTGRES_USER": parts["user"],
        "POSTGRES_PASSWORD": parts["password"],
        "POSTGRES_SCHEMA": schema,
    }


@contextlib.contextmanager
def pg_schema(pg_url: str, schema: str) -> Iterator[None]:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    try:
        yield
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# ---------------------------------------------------------------------------- scenarios

Make = Callable[[], tuple[str, str, bytes | None]]
OnOk = Callable[[int, bytes, str | None], None] | None


class ServerDied(Exception):
    pass


class Bench:
    """All HTTP scenarios, interleaved in rounds with the bare baseline, so that drift in what
    else the machine is doing hits every scenario alike."""

    def __init__(self, args: argparse.Namespace, hello: Server, wl: Server, token: str) -> None:
        self.args, self.hello, self.wl = args, hello, wl
        self.auth = {"authorization": f"Bearer {token}"}
        self.run_id = uuid.uuid4().hex[:8]
        self.hello_n = itertools.count()
        self.person_n = itertools.count()
        self.person_ids: list[str] = []
        self.results: dict[str, Result] = {}
        self.crashed: str | None = None

    # -- requests

    def hello_post(self) -> tuple[str, str, bytes | None]:
        n = next(self.hello_n)
        return "POST", "/echo", b'{"name":"Ada","employeeReference":"H-%d","count":%d}' % (n, n)

    def create_person(self) -> tuple[str, str, bytes | None]:
        n = next(self.person_n)
        body = msgspec.json.encode(
            {
                "firstName": "Ada",
                "lastName": f"Bench{n}",
                "email": f"p{n}-{self.run_id}@bench.example",
                "employeeReference": f"B-{self.run_id}-{n}",
                "jobTitle": "Engineer",
                "employmentStartDate": "2026-02-01",
            }
        )
        return "POST", "/api/v1/people", body

    def created(self, status: int, data: bytes, location: str | None) -> None:
        if location:
            self.person_ids.append(location.rsplit("/", 1)[1])
        else:
            self.person_ids.append(json.loads(data)["personId"])

    def one_person(self) -> Make:
        ids = itertools.cycle(self.person_ids)  # the ids created so far
        return lambda: ("GET", f"/api/v1/people/{next(ids)}", None)

    # -- running

    async def run(self, bare: BareEventSourcing) -> list[Result]:
        args = self.args
        hello = make_client(args.client, self.hello.base, args.concurrency)
        wl = make_client(args.client, self.wl.base, args.concurrency)
        json_auth = {**self.auth, **JSON_HEADERS}
        try:
            for round_no in range(args.rounds):
                print(f"round {round_no + 1}/{args.rounds}", file=sys.stderr, flush=True)
                bare.measure(args.es_seconds / args.rounds)
                first = round_no == 0
                await self.one(hello, self.hello, "hello GET", lambda: ("GET", "/hello", None), {})
                await self.one(hello, self.hello, "hello POST", self.hello_post, JSON_HEADERS)
                await self.one(
                    wl, self.wl, "wl /health/live", lambda: ("GET", "/health/live", None), {}
                )
                await self.one(
                    wl, self.wl, "wl POST /people", self.create_person, json_auth, self.created
                )
                if first:
                    await self.check_list(wl)
                await self.one(
                    wl,
                    self.wl,
                    "wl GET /people?limit=50",
                    lambda: ("GET", "/api/v1/people?limit=50", None),
                    self.auth,
                )
                await self.one(wl, self.wl, "wl GET /people/{id}", self.one_person(), self.auth)
        except ServerDied as died:
            self.crashed = str(died)
        finally:
            await hello.aclose()
            await wl.aclose()
        return list(self.results.values())

    async def one(
        self,
        client: Client,
        server: Server,
        name: str,
        make: Make,
        headers: dict[str, str],
        on_ok: OnOk = None,
    ) -> None:
        earlier = self.results.get(name)
        left = self.args.max_requests - (earlier.requests if earlier else 0)
        if left <= 0:
            return
        self.results[name] = await run_scenario(
            client,
            name,
            make,
            headers=headers,
            concurrency=self.args.concurrency,
            seconds=self.args.seconds / self.args.rounds,
            warmup=self.args.warmup if earlier is None else 0.0,
            max_requests=left,
            server_pid=server.pid,
            on_ok=on_ok,
            into=earlier,
        )
        if server.process.poll() is not None:
            result = self.results[name]
            message = f"{server.name} EXITED with status {server.process.returncode} during {name}"
            result.error_samples.append(message)
            result.errors += 1
            raise ServerDied(message)

    async def check_list(self, wl: Client) -> None:
        """The list must really hold a full page before it is measured."""
        if not self.person_ids:
            raise RuntimeError("no person was created, so the GET scenarios cannot run")
        status, data, _ = await wl.send("GET", "/api/v1/people?limit=50", self.auth, None)
        listed = len(json.loads(data)["people"]) if status == 200 else f"HTTP {status}: {data!r}"
        print(
            f"  {len(self.person_ids)} people created so far; a page of the list holds {listed}",
            file=sys.stderr,
            flush=True,
        )


def provision(server: Server, env: dict[str, str]) -> tuple[str, str]:
    """One tenant, and a customer-admin token for it."""

    def token(*args: str) -> str:
        out = subprocess.run(
            [WORKLEDGER, "token", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return out.stdout.strip()

    admin = token("--role", "platform-admin")
    response = httpx.post(
        server.base + "/api/v1/tenants",
        headers={"authorization": f"Bearer {admin}"},
        json={"name": f"Bench {uuid.uuid4().hex[:8]}", "contactEmail": "ops@bench.example"},
        timeout=30,
        trust_env=False,
    )
    if response.status_code != 201:
        raise RuntimeError(
            f"provisioning the tenant failed: {response.status_code} {response.text}"
        )
    tenant_id = response.json()["tenantId"]
    return tenant_id, token("--role", "customer-admin", "--tenant", tenant_id, "--sub", "bench")


# ---------------------------------------------------------------------------- report


def _ratio(a: float, b: float) -> str:
    if not a or not b:
        return "n/a"
    return f"{a / b:6.3f}x  ({b / a:5.1f}x slower)" if a < b else f"{a / b:6.3f}x"


def report(results: list[Result], bare: BareEventSourcing, meta: dict[str, Any]) -> dict[str, Any]:
    by = {r.scenario: r for r in results}
    print()
    print(
        f"workledger people benchmark: store={meta['store']} client={meta['client']} "
        f"concurrency={meta['concurrency']} seconds={meta['seconds']} rounds={meta['rounds']} "
        f"warmup={meta['warmup']} cores={meta['cores']}"
    )
    print(
        f"tmp dir={meta['tmp_dir']}  load average before={meta['loadavg_before']} "
        f"after={meta['loadavg_after']}"
    )
    header = (
        f"{'scenario':<26} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'requests':>8} {'spread':>6} {'cli cpu':>7} {'srv cpu':>7} {'other':>6}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{'bare eventsourcing save':<26} {bare.rate:8.0f} {'':>7} {'':>7} {0:>6} "
        f"{bare.saves:>8} {bare.spread:6.0%} {bare.cpu:7.0%} {'':>7} {bare.other_cpu:6.0%}"
        "  (saves/s, 1 thread)"
    )
    for r in results:
        print(
            f"{r.scenario:<26} {r.rps:8.0f} {r.percentile_ms(50):7.2f} {r.percentile_ms(99):7.2f} "
            f"{r.errors:>6} {r.requests:>8} {r.spread:6.0%} {r.client_cpu:7.0%} "
            f"{r.server_cpu:7.0%} {r.other_cpu:6.0%}"
        )
    ratios: dict[str, float | None] = {}

    def ratio(label: str, a: float | None, b: float | None) -> None:
        ratios[label] = round(a / b, 4) if a and b else None
        print(f"  {label:<40} {_ratio(a or 0, b or 0)}")

    def rps(name: str) -> float | None:
        return by[name].rps if name in by else None

    print()
    print("ratios (req/s over req/s; below 1 = slower than the yardstick)")
    ratio("POST /people / hello POST", rps("wl POST /people"), rps("hello POST"))
    ratio("GET /people?limit=50 / hello GET", rps("wl GET /people?limit=50"), rps("hello GET"))
    ratio("GET /people/{id} / hello GET", rps("wl GET /people/{id}"), rps("hello GET"))
    ratio("/health/live / hello GET", rps("wl /health/live"), rps("hello GET"))
    ratio("POST /people req/s / bare ES saves/s", rps("wl POST /people"), bare.rate)

    failures = [r for r in results if r.errors or r.error_samples]
    if failures:
        print()
        print("ERRORS (non-2xx answers, transport failures; warm-up included):")
        for r in failures:
            statuses = ", ".join(f"{k or 'no answer'}: {v}" for k, v in sorted(r.statuses.items()))
            print(f"  {r.scenario}: {r.errors} errors  [{statuses}]")
            for sample in r.error_samples:
                print(f"    {sample}")
    return {
        **meta,
        "bare_eventsourcing": bare.as_dict(),
        "scenarios": [r.as_dict() for r in results],
        "ratios": ratios,
        "errors": sum(r.errors for r in results),
    }


# ---------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_people",
        description="/api/v1/people on a real `workledger serve`, against its yardsticks.",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario")
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleave: each scenario's seconds are split into this many slices, taken in turn",
    )
    p.add_argument("--warmup", type=float, default=1.0, help="unrecorded seconds before each")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    p.add_argument("--max-requests", type=int, default=200_000, help="cap per scenario")
    p.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server for --store postgres")
    p.add_argument(
        "--client",
        choices=["auto", "aiohttp", "httpx"],
        default="auto",
        help="auto: aiohttp when installed, else httpx",
    )
    p.add_argument("--es-seconds", type=float, default=3.0, help="bare eventsourcing baseline")
    p.add_argument(
        "--tmp-dir",
        type=Path,
        default=None,
        help="where the SQLite files go (default: the system temp dir; /dev/shm takes fsync "
        "out of the picture)",
    )
    p.add_argument("--json", type=Path, default=None, help="write the JSON results here")
    p.add_argument("--keep-logs", type=Path, default=None, help="copy server logs to this dir")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.concurrency < 1 or args.seconds <= 0:
        p.error("--rounds, --concurrency and --seconds must be positive")
    if args.client == "aiohttp" and not aiohttp_available():
        p.error("aiohttp is not installed (.venv/bin/pip install aiohttp), or use --client httpx")
    if args.client == "auto":
        args.client = "aiohttp" if aiohttp_available() else "httpx"
    return args


def _stop_on_signals() -> None:
    """Ctrl-C or SIGTERM: inside the load loop, let the requests in flight finish and stop
    (loadgen.STOP); elsewhere, or on a second signal, raise KeyboardInterrupt at once. Either
    way main()'s finally blocks stop the servers and drop the schema."""

    def handler(signum: int, frame: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            in_loop = False
        else:
            in_loop = True
        if in_loop and not STOP.is_set():
            STOP.set()
            print(f"\n{signal.Signals(signum).name}: stopping ...", file=sys.stderr, flush=True)
            return
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    _stop_on_signals()
    servers: list[Server] = []
    problems: dict[str, list[str]] = {}
    exits: dict[str, int | None] = {}
    schema = f"wl_bench_{uuid.uuid4().hex[:12]}"
    meta: dict[str, Any] = {
        "store": args.store,
        "client": args.client,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "cores": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in os.getloadavg()],
        "tmp_dir": str(args.tmp_dir or tempfile.gettempdir()),
    }

    def stop(server: Server) -> None:
        exits[server.name] = server.stop()
        found = server_problems(server.output())
        if found:
            problems[server.name] = found
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            (args.keep_logs / f"{server.name}.log").write_text(server.output())

    with contextlib.ExitStack() as cleanup:
        tmp = Path(
            cleanup.enter_context(tempfile.TemporaryDirectory(prefix="wl-bench-", dir=args.tmp_dir))
        )
        if args.store == "postgres":
            cleanup.enter_context(pg_schema(args.pg_url, schema))
        try:
            bare = BareEventSourcing(es_env(args.store, tmp, args.pg_url, schema))
            cleanup.callback(bare.close)
            clean_env = {k: v for k, v in os.environ.items() if not k.startswith("WORKLEDGER_")}
            hello_args = [sys.executable, "-m", "uvicorn", "tests.benchmarks.hello_app:app"]
            hello_args += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
            servers.append(Server("hello", hello_args, clean_env, tmp / "hello.log"))
            wl_env = {
                **clean_env,
                "WORKLEDGER_VAR_DIR": str(tmp / "var"),
                # The limiter still counts every request (its cost is in the figures), but the
                # benchmark's one tenant must not be stopped at its plan's 600 requests a minute.
                "WORKLEDGER_TENANT_RATE_LIMITS": UNLIMITED_PLANS,
            }
            if args.store == "postgres":
                wl_env["WORKLEDGER_DATABASE_URL"] = f"{args.pg_url}?schema={schema}"
            wl_args = [WORKLEDGER, "serve", "--host", "127.0.0.1"]
            servers.append(Server("workledger", wl_args, wl_env, tmp / "workledger.log"))
            hello, wl = servers
            hello.wait_ready("/hello")
            wl.wait_ready("/health/ready")
            _tenant, token = provision(wl, wl_env)
            print(
                f"hello-world on {hello.base}, workledger on {wl.base} ({args.store})",
                file=sys.stderr,
                flush=True,
            )
            bench = Bench(args, hello, wl, token)
            results = asyncio.run(bench.run(bare))
        finally:
            for server in servers:
                if server.name not in exits:
                    stop(server)
        meta["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
        out = report(results, bare, meta)

    out["server_exit_status"] = exits
    out["server_log_problems"] = problems
    if bench.crashed:
        out["crashed"] = bench.crashed
        print(f"\n{bench.crashed}; the run stopped there")
    for name, status in exits.items():
        if status not in (0, -signal.SIGTERM):  # uvicorn re-raises the SIGTERM it handled
            print(f"\n{name} did not stop cleanly: exit status {status}")
    for name, lines in problems.items():
        print(f"\n{name} server log reported problems:")
        print("\n".join(f"  | {line}" for line in lines))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nJSON results written to {args.json}")
    else:
        print()
        print(json.dumps(out, separators=(",", ":")))
    return 1 if out["errors"] or problems or bench.crashed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stopped:
        print(f"interrupted ({stopped}); every server it started is stopped", file=sys.stderr)
        sys.exit(130)
