"""Real `workledger` processes for black-box tests: `serve` on a free port and `worker`, each
with its output in a log file of its own, started with a clean environment and stopped when
their `with` block ends; tokens minted by `workledger token` as an operator would."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pytest

WORKLEDGER = str(Path(sys.executable).parent / "workledger")
# Either store for a test that runs a server: the default SQLite file, or a PostgreSQL schema.
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_logs = itertools.count(1)  # a log file name no other process of this test run has


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(tmp_path: Path, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any WORKLEDGER_* of the caller's own (a developer's
    .env must not leak in), its data under `tmp_path`, and `settings` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKLEDGER_")}
    env["WORKLEDGER_VAR_DIR"] = str(tmp_path / "var")
    env.update(settings or {})
    return env


def store_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of a fixture parametrized with STORES: none for SQLite (the default), a
    fresh schema for PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"WORKLEDGER_DATABASE_URL": str(request.getfixturevalue("pg_schema_url"))}


def token(env: Mapping[str, str], cwd: Path, *args: str) -> str:
    """A token minted by `workledger token [args]` with these settings."""
    out = subprocess.run(
        [WORKLEDGER, "token", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float = 30,
    every: float = 0.05,
    process: Process | None = None,
) -> None:
    """Polls `condition`; fails after `timeout` seconds, or at once if `process` exits (with
    its log in the message either way)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None:
            process.check_running()
        if time.monotonic() > deadline:
            log = f"; its log:\n{process.output()}" if process is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{log}")
        time.sleep(every)


class Process:
    """`workledger [args]` running from construction until its `with` block ends (like
    subprocess.Popen), stdout and stderr in a log file in `cwd`."""

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.args, self.env, self.cwd = list(args), env, cwd
        self.log = cwd / f"{args[0]}-{next(_logs)}.log"
        with self.log.open("w") as out:
            self.popen = subprocess.Popen(
                [WORKLEDGER, *args], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text()

    def check_running(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(
                f"`workledger {' '.join(self.args)}` exited with {self.popen.returncode}:\n"
                + self.output()
            )

    def token(self, *args: str) -> str:
        return token(self.env, self.cwd, *args)

    def assert_no_traceback(self) -> None:
        text = self.output()
        assert "Traceback" not in text, text[-3000:]

    def stop(self, timeout: float = 15) -> None:
        """Asks it to stop (SIGTERM); kills it if it has not within `timeout` seconds."""
        if self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class Server(Process):
    """`workledger serve --port <a free port> [args]`; its `with` block starts once
    /health/ready answers 200 (30 s at most)."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port), *args], env, cwd)

    def ready(self) -> bool:
        try:
            return httpx.get(self.base + "/health/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def __enter__(self) -> Self:
        try:
            wait_until(self.ready, "the server to be ready", process=self)
        except BaseException:
            self.stop()
            raise
        return self
