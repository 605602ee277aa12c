"""What a command returns to its caller."""

from __future__ import annotations

from uuid import UUID

import msgspec


class Written(msgspec.Struct, frozen=True):
    """The aggregate a command wrote, its new version (the ETag) and the log position of the
    command's last event (X-Log-Position; 0 changes mean the position the log was at)."""

    id: UUID
    version: int
    position: int
    created: bool = False
