"""Shared fixtures: real stores (SQLite files and PostgreSQL schemas), wired services, an API
client with tokens for any role.

PostgreSQL tests use a fresh schema each, dropped afterwards. When PostgreSQL or Redis cannot be
reached, the tests that need it are skipped on a laptop and FAIL under CI=true: CI must never go
green without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
import redis
from litestar.testing import TestClient

from adapters.settings import Settings
from entrypoints.container import Services, build
from entrypoints.http.app import create_app

PG_URL = os.environ.get("WORKLEDGER_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("WORKLEDGER_TEST_REDIS", "redis://127.0.0.1:6379")
TEST_SECRET = "test-secret-" + "x" * 40


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]


def _unreachable(what: str, url: str, problem: str) -> NoReturn:
    message = f"{what} at {url} is not reachable: {problem}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + f" (CI=true: {what} tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _pg_available()
    if problem:
        _unreachable("PostgreSQL", PG_URL, problem)
    return PG_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3) as client:
            client.ping()
    except redis.RedisError as error:
        _unreachable("Redis", REDIS_URL, str(error))
    return REDIS_URL


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    schema = f"wl_test_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def settings_for(database_url: str, var_dir: Path) -> Settings:
    return Settings(database_url=database_url, jwt_secret=TEST_SECRET, var_dir=var_dir)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/workledger.db"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def make_services(tmp_path: Path) -> Iterator[Callable[[str], Services]]:
    opened: list[Services] = []

    def make(database_url: str) -> Services:
        services = build(settings_for(database_url, tmp_path))
        opened.append(services)
        return services

    yield make
    for services in opened:
        services.close()


@pytest.fixture
def services(database_url: str, make_services: Callable[[str], Services]) -> Services:
    return make_services(database_url)


@pytest.fixture
def sqlite_services(tmp_path: Path, make_services: Callable[[str], Services]) -> Services:
    return make_services(f"sqlite:///{tmp_path}/workledger.db")


class Api:
    """A test client that knows how to mint tokens for any role and tenant."""

    def __init__(self, client: TestClient[Any], services: Services) -> None:
        self.client = client
        self.services = services

    def token(self, *roles: str, tenant: str | uuid.UUID | None = None, sub: str = "tester") -> str:
        tenant_id = uuid.UUID(str(tenant)) if tenant else None
        return self.services.tokens.mint(
            subject=sub,
            roles=list(roles),
            tenant_id=tenant_id,
            ttl_seconds=600,
            now=datetime.now(UTC),
        )

    def as_(
        self, *roles: str, tenant: str | uuid.UUID | None = None, sub: str = "tester"
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, tenant=tenant, sub=sub)}"}

    def request(
        self, method: str, path: str, *, auth: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        headers = {**(auth or {}), **kwargs.pop("headers", {})}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    def provision(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "name": name or f"Tenant {uuid.uuid4().hex[:8]}",
            "contactEmail": "ops@example.com",
            **fields,
        }
        response = self.request("POST", "/tenants", json=body, auth=self.as_("platform-admin"))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def hire(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        n = uuid.uuid4().hex[:8]
        body = {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": f"ada.{n}@example.com",
            "employeeReference": f"E-{n}",
            "jobTitle": "Engineer",
            "employmentStartDate": "2026-01-05",
            **fields,
        }
        response = self.request(
            "POST", "/people", json=body, auth=self.as_("customer-admin", tenant=tenant_id)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    """An API client over both stores (SQLite and PostgreSQL)."""
    with TestClient(create_app(services, follow_log=False)) as client:
        yield Api(client, services)


@pytest.fixture
def sqlite_api(sqlite_services: Services) -> Iterator[Api]:
    """An API client over SQLite only: for HTTP-contract tests where the store is immaterial."""
    with TestClient(create_app(sqlite_services, follow_log=False)) as client:
        yield Api(client, sqlite_services)
