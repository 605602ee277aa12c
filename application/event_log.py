"""The event log: the write model's store, and the one source every read model comes from.

A thin layer over an `eventsourcing` Application that adds what workledger needs:
- event state is serialised with msgspec, decoded back into the event's own typed fields, so
  Decimal, date, UUID and datetime round-trip exactly;
- every stored event carries the metadata of the command that caused it (actor, request id);
- a save returns the log position of its last event (for X-Log-Position and read-your-writes);
- a stale write becomes ConcurrentWrite instead of a store-specific error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from application.context import EventMeta
from application.errors import ConcurrentWrite, PreconditionFailed

A = TypeVar("A", bound=Aggregate)
DomainEvent = CanMutateAggregate[UUID]


class RecordedEvent(msgspec.Struct, frozen=True):
    """A domain event as it sits in the log: with its position and the metadata of its command."""

    position: int
    topic: str
    event: Any  # a domain event (a frozen dataclass of the aggregate's Event family)
    meta: EventMeta


class _Envelope(msgspec.Struct, frozen=True):
    event: msgspec.Raw
    meta: EventMeta | None = None


class MsgspecTranscoder(Transcoder):
    """Plain msgspec JSON for built-in values (the envelope); typed decoding is the mapper's job."""

    def encode(self, obj: Any) -> bytes:
        return msgspec.json.encode(obj)

    def decode(self, data: bytes) -> Any:
        return msgspec.json.decode(data)


_NO_META = EventMeta(actor="unknown", request_id="")
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


class MsgspecMapper(Mapper[UUID]):
    """Stored state is `{"event": {...fields}, "meta": {"actor", "requestId"}}` in JSON."""

    def __init__(self) -> None:
        super().__init__(transcoder=MsgspecTranscoder())

    def to_stored_event(self, domain_event: Any, meta: EventMeta | None = None) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        body = msgspec.json.encode({"event": state, "meta": meta})
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=body,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.decode(stored_event)[0]

    def decode(self, stored_event: StoredEvent) -> tuple[Any, EventMeta]:
        envelope = _envelope_decoder.decode(stored_event.state)
        state = _dict_decoder.decode(envelope.event)
        cls = resolve_topic(stored_event.topic)
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:  # upcast old shapes, as eventsourcing does
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        originator_id = stored_event.originator_id
        state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        )
        state["originator_version"] = stored_event.originator_version
        # Typed decoding into the event's own dataclass: exact Decimal/date/UUID/datetime.
        event = msgspec.convert(state, type=cls)
        return event, envelope.meta or _NO_META


class MetaEventStore(EventStore[UUID]):
    """An event store whose `put` writes the command's metadata next to each event."""

    mapper: MsgspecMapper

    def put(
        self, domain_events: Sequence[Any], *, meta: EventMeta | None = None, **kwargs: Any
    ) -> list[Recording[UUID]]:
        stored = [self.mapper.to_stored_event(e, meta) for e in domain_events]
        ids = self.recorder.insert_events(stored, **kwargs) or []
        return [
            Recording(
                e,
                Notification(
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=n,
                ),
            )
            for e, s, n in zip(domain_events, stored, ids, strict=True)
        ]


class EventLog(Application[UUID]):
    """The workledger event store. Built from eventsourcing settings (see adapters.settings)."""

    name = "workledger"

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper()

    def construct_event_store(self) -> EventStore[UUID]:
        return MetaEventStore(mapper=self.mapper, recorder=self.recorder)

    # -- writing --------------------------------------------------------------------------

    def record(self, *aggregates: Aggregate, meta: EventMeta) -> int:
        """Save the pending events of all `aggregates` atomically; returns the last position.

        Raises ConcurrentWrite when any aggregate was changed by someone else meanwhile (or a
        key aggregate was created concurrently): nothing is written in that case.
        """
        try:
            recordings = self.save(*aggregates, meta=meta)
        except IntegrityError as error:
            raise ConcurrentWrite(
                "the resource was changed by another request at the same time; retry"
            ) from error
        if not recordings:  # nothing changed: the log is where it was
            return self.head()
        return max(r.notification.id for r in recordings)

    # -- reading --------------------------------------------------------------------------

    def load(self, cls: type[A], aggregate_id: UUID, *, version: int | None = None) -> A | None:
        """The aggregate, or None when there is none of that type with that id."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    @staticmethod
    def check_version(aggregate: Aggregate, expected_version: int | None) -> None:
        """Enforce the caller's If-Match version, when it sent one."""
        if expected_version is not None and aggregate.version != expected_version:
            raise PreconditionFailed(expected_version, aggregate.version)

    def history(self, aggregate_id: UUID, *, up_to_version: int | None = None) -> list[Any]:
        """The aggregate's events in order (all, or up to a version)."""
        return list(self.events.get(aggregate_id, lte=up_to_version))

    def read(self, after: int, limit: int) -> list[RecordedEvent]:
        """Up to `limit` events with positions greater than `after`, in log order."""
        notifications = self.recorder.select_notifications(start=after + 1, limit=limit)
        mapper = cast(MsgspecMapper, self.mapper)
        recorded = []
        for n in notifications:
            event, meta = mapper.decode(n)
            recorded.append(RecordedEvent(position=n.id, topic=n.topic, event=event, meta=meta))
        return recorded

    def head(self) -> int:
        """The position of the newest event (0 for an empty log)."""
        return self.recorder.max_notification_id() or 0


def event_fields(event: Any) -> Mapping[str, Any]:
    """The business fields of an event (without the eventsourcing bookkeeping)."""
    state = dict(vars(event))
    for key in ("originator_id", "originator_version", "timestamp", "originator_topic"):
        state.pop(key, None)
    return state
