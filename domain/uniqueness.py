"""Natural-key uniqueness without check-then-write races.

Each unique key (a tenant name, a person's employee reference or email inside a tenant) is an
aggregate of its own whose id is derived from the key (uuid5). Creating the owner and claiming its
key are saved together in one atomic write, so two concurrent creates both try to write version 1
of the same key aggregate and the event store's optimistic concurrency lets exactly one through.
A released key (after a rename) can be claimed again; that claim is a new version of the same
aggregate, so it races safely too.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import KeyAlreadyClaimed
from domain.events import TenantEvent

# Fixed namespace: changing it would orphan every existing claim.
_NAMESPACE = UUID("8f1c3d52-6a3e-4c55-9a59-3f6ea4a7b0d1")


def normalise_key(value: str) -> str:
    """Keys compare case-insensitively and ignore surrounding white space."""
    return value.strip().casefold()


def unique_key_id(scope: str, value: str, tenant_id: UUID | None = None) -> UUID:
    """The id of the claim aggregate for `value` in `scope` (platform-wide when no tenant)."""
    owner = tenant_id.hex if tenant_id else "platform"
    return uuid5(_NAMESPACE, f"{owner}/{scope}/{normalise_key(value)}")


class UniqueKey(Aggregate):
    """A claim on one natural key: held by an owner, or released."""

    TOPIC = "workledger:UniqueKey"

    class Event(TenantEvent):
        audited: ClassVar[bool] = False

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:UniqueKeyCreated"
        scope: str
        value: str
        owner_id: UUID

    class Reclaimed(Event):
        TOPIC = "workledger:UniqueKeyReclaimed"
        value: str
        owner_id: UUID

        def apply(self, aggregate: UniqueKey) -> None:
            aggregate.owner_id = self.owner_id
            aggregate.value = self.value
            aggregate.tenant_id = self.tenant_id  # a platform-wide key may pass to another tenant

    class Released(Event):
        TOPIC = "workledger:UniqueKeyReleased"

        def apply(self, aggregate: UniqueKey) -> None:
            aggregate.owner_id = None

    def __init__(self, tenant_id: UUID, scope: str, value: str, owner_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.scope = scope
        self.value = value
        self.owner_id: UUID | None = owner_id

    @classmethod
    def claim_new(
        cls,
        *,
        scope: str,
        value: str,
        owner_id: UUID,
        tenant_id: UUID,
        platform_wide: bool,
        at: datetime,
    ) -> UniqueKey:
        """First claim of a key nobody has held before."""
        key_id = unique_key_id(scope, value, None if platform_wide else tenant_id)
        return cls._create(
            cls.Created,
            id=key_id,
            tenant_id=tenant_id,
            scope=scope,
            value=value,
            owner_id=owner_id,
            timestamp=at,
        )

    def reclaim(self, *, value: str, owner_id: UUID, tenant_id: UUID, at: datetime) -> None:
        """Claim a key that exists: allowed when it was released or is already the owner's."""
        if self.owner_id == owner_id:
            return
        if self.owner_id is not None:
            # Scopes are "<resource>.<field>"; the field is what the client sent.
            raise KeyAlreadyClaimed(self.scope.rpartition(".")[2], value)
        self.trigger_event(
            self.Reclaimed, tenant_id=tenant_id, value=value, owner_id=owner_id, timestamp=at
        )

    def release(self, *, owner_id: UUID, at: datetime) -> None:
        """Give the key up (the owner renamed itself). Only its holder may release it."""
        if self.owner_id != owner_id:
            return
        self.trigger_event(self.Released, tenant_id=self.tenant_id, timestamp=at)
