"""The base of every command and request body: camelCase on the wire, unknown fields refused.
Subclasses inherit the configuration."""

from __future__ import annotations

import msgspec


class Command(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass
