"""Shared by the API-key tests: the service's clock, moved by the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.ports import Clock
from tests.conftest import Api


class FakeClock:
    """The service's clock, moved by the test (expiry and grace periods without sleeping)."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock(api: Api) -> FakeClock:
    fake = FakeClock()
    api.services.container.register(Clock, instance=fake)  # before anything resolves a clock
    return fake
