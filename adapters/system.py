"""The clock, the id generator and the entropy source: the only sources of time and randomness
the application sees."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from uuid import UUID, uuid4


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    def new_id(self) -> UUID:
        return uuid4()


class SystemEntropy:
    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)
