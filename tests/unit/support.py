"""What the domain tests share: an in-memory event log, replaying events by hand, and the
settings of the state machines."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from application.context import EventMeta
from application.event_log import EventLog

META = EventMeta(actor="user:test", request_id="req-1")

# Every lifecycle state machine runs with these: enough steps to reach deep states, no deadline
# (the in-memory log is fast but not uniformly so).
MACHINE_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def memory_log() -> EventLog:
    """A real event log on an in-memory SQLite database."""
    return EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})


def replay(events: list[Any]) -> Any:
    """The aggregate that `events` build, folded by the events themselves (no store)."""
    aggregate = events[0].mutate(None)
    for event in events[1:]:
        aggregate = event.mutate(aggregate)
    return aggregate


# The bidirectional controls the domain refuses in text (domain/values.py), beside Cc.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Characters the domain accepts inside text: no control characters, no lone surrogates.
accepted_characters = st.characters(
    blacklist_categories=("Cc", "Cs"), blacklist_characters=BIDI_CONTROLS
)
