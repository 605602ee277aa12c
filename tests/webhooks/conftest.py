"""Fixtures of the webhook tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from entrypoints.container import Services, build
from entrypoints.http.app import create_app
from tests.conftest import Api, settings_for


@pytest.fixture
def private_webhook_api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    """An API client (both stores) whose server lets webhooks target private, loopback and
    link-local addresses (WORKLEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS=true)."""
    settings = dataclasses.replace(
        settings_for(database_url, tmp_path), webhook_allow_private_targets=True
    )
    services = build(settings)
    with TestClient(create_app(services, follow_log=False)) as client:  # closes services
        yield Api(client, services)


# -- delivery (outbox, dispatcher, deliveries API) ---------------------------------------------


@pytest.fixture
def make_webhook_services(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Services]]:
    """Services (both stores) whose webhooks may reach 127.0.0.1 and retry fast (0.05 s, then
    0.1 s, then give up), with any other setting overridden; all closed afterwards."""
    opened: list[Services] = []

    def make(**overrides: Any) -> Services:
        settings = dataclasses.replace(
            settings_for(database_url, tmp_path),
            webhook_allow_private_targets=True,
            webhook_retry_schedule=(0.05, 0.1),
            **overrides,
        )
        services = build(settings)
        opened.append(services)
        return services

    yield make
    for services in opened:
        services.close()


@pytest.fixture
def webhook_services(make_webhook_services: Callable[..., Services]) -> Services:
    return make_webhook_services()


@pytest.fixture
def webhook_api(webhook_services: Services) -> Iterator[Api]:
    """An API client over `webhook_services`; no background threads (tests run the outbox and
    the dispatcher themselves, or start the dispatcher)."""
    with TestClient(create_app(webhook_services, follow_log=False)) as client:
        yield Api(client, webhook_services)
