"""Fixtures of the API tests."""

from __future__ import annotations

import pytest

from tests.api.world import Tenancy
from tests.conftest import Api


@pytest.fixture
def world(api: Api) -> Tenancy:
    """A tenant with a customer and a person, on both stores."""
    return Tenancy(api)
