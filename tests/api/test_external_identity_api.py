"""Tokens from an external OIDC provider (RS256/ES256 via WORKLEDGER_JWKS_URL) work end to end
through the app, beside the HS256 tokens the service mints itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.settings import Settings
from entrypoints.container import build
from entrypoints.http.app import create_app
from tests.conftest import TEST_SECRET
from tests.fakes.oidc import FakeOidcProvider


@pytest.fixture
def idp() -> Iterator[FakeOidcProvider]:
    with FakeOidcProvider() as provider:
        yield provider


@pytest.fixture
def client(idp: FakeOidcProvider, tmp_path: Path) -> Iterator[TestClient[object]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/wl.db",
        jwt_secret=TEST_SECRET,
        jwt_issuer=idp.issuer,
        jwks_url=idp.jwks_url,
        var_dir=tmp_path,
    )
    services = build(settings)
    with TestClient(create_app(services, follow_log=False)) as test_client:
        yield test_client


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_provider_token_acts_in_its_tenant(
    idp: FakeOidcProvider, client: TestClient[object], alg: str
) -> None:
    tenant = str(uuid.uuid4())
    token = idp.mint(
        {"sub": "ann@idp", "roles": ["auditor"], "tid": tenant, "aud": "workledger"}, alg=alg
    )
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["subject"] == "ann@idp"
    assert me.json()["tenantId"] == tenant
    assert "audit:read" in me.json()["permissions"]
    # Its role still bounds it: an auditor writes nothing.
    denied = client.post(
        "/api/v1/people",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "firstName": "A",
            "lastName": "B",
            "email": "a@b.co",
            "employeeReference": "1",
            "jobTitle": "x",
            "employmentStartDate": "2026-01-01",
        },
    )
    assert denied.status_code == 403


def test_a_provider_token_for_another_audience_is_401(
    idp: FakeOidcProvider, client: TestClient[object]
) -> None:
    token = idp.mint({"sub": "ann", "roles": ["auditor"], "aud": "someone-else"})
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
