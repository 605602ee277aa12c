"""WebhookEndpoint: its lifecycle as a state machine (enabled <-> disabled, either -> deleted,
which refuses everything), secret rotation with its 24-hour overlap, and properties of the
value rules (`event_filter`, `webhook_url`), `matches` and `delivery_id`.

The machine keeps its own model, including a history of every secret the endpoint ever had, and
checks which secrets sign at any instant from that history rather than from the aggregate's
fields: the current secret, plus the one it replaced while less than 24 hours have passed since
the rotation, and never an older one.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from application.event_log import EventLog
from application.webhooks import ROTATION_OVERLAP
from domain.errors import IllegalTransition, InvalidValue
from domain.webhook import (
    ALL_EVENTS,
    MAX_FILTERS,
    MAX_URL_LENGTH,
    PUBLIC_EVENT_TYPES,
    WebhookEndpoint,
    delivery_id,
    event_filter,
    matches,
    webhook_url,
)
from projections import webhooks as projection
from projections.formats import instant
from tests.unit.support import MACHINE_SETTINGS, META, memory_log, replay

BAD = object()  # marks an input the domain must refuse
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KNOWN = sorted(PUBLIC_EVENT_TYPES)
TINY = timedelta(microseconds=1)


def pairs(*items: tuple[Any, Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    return st.sampled_from(items)


urls = pairs(
    ("https://hooks.example.com/workledger", "https://hooks.example.com/workledger"),
    ("  http://203.0.113.9:8080/in?x=1  ", "http://203.0.113.9:8080/in?x=1"),
    ("HTTPS://Example.COM/", "HTTPS://Example.COM/"),
    ("http://[2001:db8::1]/hook", "http://[2001:db8::1]/hook"),
    ("ftp://example.com/", BAD),
    ("/relative/path", BAD),
    ("example.com/hook", BAD),
    ("https://user:pw@example.com/", BAD),
    ("https://token@example.com/", BAD),
    ("https://example.com:99999/", BAD),
    ("https://example.com:port/", BAD),
    ("https://exa mple.com/", BAD),
    ("http://", BAD),
    ("", BAD),
    ("https://example.com/\x00", BAD),
    ("https://example.com/" + "p" * MAX_URL_LENGTH, BAD),
)
event_lists = st.one_of(
    pairs(
        (["*"], ["*"]),
        ([" * "], ["*"]),
        (["person.created"], ["person.created"]),
        (["invoice.paid", " invoice.paid ", "task.completed"], ["invoice.paid", "task.completed"]),
        ([], BAD),
        (["*", "person.created"], BAD),
        (["person.created", "*"], BAD),
        (["person.exploded"], BAD),
        (["webhook.test"], BAD),
        (["Person.Created"], BAD),
        ([""], BAD),
    ),
    st.lists(st.sampled_from(KNOWN), min_size=1, max_size=6).map(
        lambda names: (names, list(dict.fromkeys(names)))
    ),
)
descriptions = pairs(
    (None, None),
    ("", None),
    ("   ", None),
    (" Our CRM ", "Our CRM"),
    ("d" * 500, "d" * 500),
    ("d" * 501, BAD),
    ("bell\x07", BAD),
)
reasons = pairs(
    ("disabled by user:ada", "disabled by user:ada"),
    ("  410 Gone  ", "410 Gone"),
    ("", BAD),
    ("r" * 501, BAD),
)
waits = st.one_of(
    st.sampled_from(
        [
            timedelta(seconds=1),
            timedelta(hours=1),
            ROTATION_OVERLAP - TINY,
            ROTATION_OVERLAP,
            ROTATION_OVERLAP + TINY,
            timedelta(days=3),
        ]
    ),
    st.integers(min_value=0, max_value=30 * 3600).map(lambda s: timedelta(seconds=s)),
)


@dataclass
class Model:
    url: str
    events: list[str]
    description: str | None
    status: str = "enabled"
    disabled_reason: str | None = None
    version: int = 1
    # Every secret in the order it was made, with the instant it became the current one.
    secrets: list[tuple[UUID, datetime]] = field(default_factory=list)

    def signing(self, at: datetime) -> list[UUID]:
        current, since = self.secrets[-1]
        if len(self.secrets) > 1 and at < since + ROTATION_OVERLAP:
            return [current, self.secrets[-2][0]]
        return [current]


def state_of(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(endpoint).items() if k != "_pending_events"})


class EndpointMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.endpoint: WebhookEndpoint | None = None
        self.model: Model | None = None
        self.saved: list[Any] = []
        self.log: EventLog | None = None
        self.clock = START
        self.ever_deleted = False
        self.pings: list[UUID] = []

    def now(self) -> datetime:
        self.clock += timedelta(seconds=7)
        return self.clock

    def attempt(
        self, command: Callable[[], Any], *, illegal: bool, bad: list[str], records: bool = True
    ) -> Any:
        """Run `command`; it must raise what the model says, or record what it says."""
        assert self.endpoint is not None
        assert self.model is not None
        before, pending = state_of(self.endpoint), list(self.endpoint.pending_events)
        if illegal or bad:
            with pytest.raises((IllegalTransition, InvalidValue)) as caught:
                command()
            error = caught.value
            if isinstance(error, IllegalTransition):
                assert illegal, f"unexpected {error}"
                assert (error.aggregate, error.state) == ("webhook endpoint", "deleted")
            else:
                assert not illegal, "a deleted endpoint refuses before it validates"
                assert error.field in bad, (error.field, bad)
            assert state_of(self.endpoint) == before
            assert self.endpoint.pending_events == pending
            return None
        result = command()
        new = self.endpoint.pending_events[len(pending) :]
        assert len(new) == (1 if records else 0), new
        if records:
            self.model.version += 1
        else:
            assert state_of(self.endpoint) == before
        return result

    # -- rules -----------------------------------------------------------------------------

    @initialize(
        url=urls.filter(lambda p: p[1] is not BAD),
        events=event_lists.filter(lambda p: p[1] is not BAD),
        description=descriptions.filter(lambda p: p[1] is not BAD),
    )
    def register(
        self, url: tuple[str, str], events: tuple[list[str], list[str]], description: Any
    ) -> None:
        at = self.now()
        secret_id = uuid4()
        self.endpoint = WebhookEndpoint.register(
            endpoint_id=uuid4(),
            tenant_id=uuid4(),
            url=url[0],
            events=events[0],
            description=description[0],
            secret_id=secret_id,
            known_events=PUBLIC_EVENT_TYPES,
            at=at,
        )
        self.model = Model(url=url[1], events=events[1], description=description[1])
        self.model.secrets.append((secret_id, at))
        self.log = memory_log()

    @rule(url=urls, events=event_lists, description=descriptions, same=st.booleans())
    def update(self, url: Any, events: Any, description: Any, same: bool) -> None:
        model = self.model
        assert model is not None
        if same:  # a PUT of what is there, padded
            url = (f" {model.url} ", model.url)
            events = ([f"{e} " for e in model.events], model.events)
            description = (model.description, model.description)
        inputs = {"url": url, "events": events, "description": description}
        bad = [name for name, (_, expected) in inputs.items() if expected is BAD]
        expected = (url[1], events[1], description[1])
        changed = [
            name
            for name, value in zip(inputs, expected, strict=True)
            if getattr(model, name) != value
        ]
        result = self.attempt(
            lambda: self.endpoint.update(
                url=url[0],
                events=events[0],
                description=description[0],
                known_events=PUBLIC_EVENT_TYPES,
                at=self.now(),
            ),
            illegal=model.status == "deleted",
            bad=bad,
            records=bool(changed),
        )
        if model.status != "deleted" and not bad:
            assert result == changed
            model.url, model.events, model.description = expected

    @rule(reason=reasons)
    def disable(self, reason: tuple[str, Any]) -> None:
        model = self.model
        assert model is not None
        deleted, enabled = model.status == "deleted", model.status == "enabled"
        # Already disabled: nothing recorded, whatever the reason (the first one stands).
        bad = ["reason"] if reason[1] is BAD and enabled else []
        result = self.attempt(
            lambda: self.endpoint.disable(reason=reason[0], at=self.now()),
            illegal=deleted,
            bad=bad,
            records=enabled,
        )
        if not deleted and not bad:
            assert result is enabled
            if enabled:
                model.status, model.disabled_reason = "disabled", reason[1]

    @rule()
    def enable(self) -> None:
        model = self.model
        assert model is not None
        deleted, disabled = model.status == "deleted", model.status == "disabled"
        result = self.attempt(
            lambda: self.endpoint.enable(at=self.now()), illegal=deleted, bad=[], records=disabled
        )
        if not deleted:
            assert result is disabled
            model.status, model.disabled_reason = "enabled", None

    @rule()
    def delete(self) -> None:
        model = self.model
        assert model is not None
        deleted = model.status == "deleted"
        self.attempt(lambda: self.endpoint.delete(at=self.now()), illegal=deleted, bad=[])
        if not deleted:
            model.status = "deleted"
            self.ever_deleted = True

    @rule()
    def rotate(self) -> None:
        model = self.model
        assert model is not None
        at, secret_id = self.now(), uuid4()
        self.attempt(
            lambda: self.endpoint.rotate_secret(
                secret_id=secret_id, previous_valid_until=at + ROTATION_OVERLAP, at=at
            ),
            illegal=model.status == "deleted",
            bad=[],
        )
        if model.status != "deleted":
            model.secrets.append((secret_id, at))

    @rule()
    def rotating_to_a_secret_in_use_is_a_bug(self) -> None:
        assert self.endpoint is not None
        if self.endpoint.status == "deleted":
            return
        before = state_of(self.endpoint)
        for used in {self.endpoint.secret_id, self.endpoint.previous_secret_id} - {None}:
            with pytest.raises(ValueError, match="must be new"):
                self.endpoint.rotate_secret(
                    secret_id=used, previous_valid_until=self.clock, at=self.clock
                )
        assert state_of(self.endpoint) == before

    @rule()
    def ping(self) -> None:
        model = self.model
        assert model is not None
        ping_id = uuid4()
        self.attempt(
            lambda: self.endpoint.ping(ping_id=ping_id, at=self.now()),
            illegal=model.status == "deleted",
            bad=[],
        )
        if model.status != "deleted":
            self.pings.append(ping_id)

    @rule(wait=waits)
    def time_passes(self, wait: timedelta) -> None:
        self.clock += wait

    @rule(continue_with_loaded=st.booleans())
    def save_and_reload(self, continue_with_loaded: bool) -> None:
        assert self.endpoint is not None
        assert self.log is not None
        pending = list(self.endpoint.pending_events)
        self.log.record(self.endpoint, meta=META)
        self.saved.extend(pending)
        loaded = self.log.load(WebhookEndpoint, self.endpoint.id)
        assert loaded is not None
        assert state_of(loaded) == state_of(self.endpoint)
        if continue_with_loaded:
            self.endpoint = loaded

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        if self.endpoint is None:
            return
        model = self.model
        assert model is not None
        endpoint = self.endpoint
        got = (endpoint.url, endpoint.events, endpoint.description, endpoint.status)
        assert got == (model.url, model.events, model.description, model.status)
        assert endpoint.disabled_reason == model.disabled_reason
        assert endpoint.version == model.version
        assert endpoint.secret_id == model.secrets[-1][0]

    @invariant()
    def deleted_is_terminal(self) -> None:
        if self.endpoint is not None and self.ever_deleted:
            assert self.endpoint.status == "deleted"

    @invariant()
    def signing_secrets_follow_the_rotation_history(self) -> None:
        if self.endpoint is None:
            return
        model = self.model
        assert model is not None
        since = model.secrets[-1][1]
        for at in (self.clock, since, since + ROTATION_OVERLAP - TINY, since + ROTATION_OVERLAP):
            ids = self.endpoint.signing_secret_ids(at)
            assert ids == model.signing(at), at
            assert ids[0] == self.endpoint.secret_id
            # Only the two newest secrets ever sign.
            assert set(ids) <= {s for s, _ in model.secrets[-2:]}
        # Once the overlap is over only the current secret signs, until the next rotation.
        assert self.endpoint.signing_secret_ids(since + ROTATION_OVERLAP) == [model.secrets[-1][0]]

    @invariant()
    def replay_and_representation_agree_with_the_live_endpoint(self) -> None:
        if self.endpoint is None:
            return
        model = self.model
        assert model is not None
        events = self.saved + list(self.endpoint.pending_events)
        assert [e.originator_version for e in events] == list(range(1, model.version + 1))
        assert all(e.tenant_id == self.endpoint.tenant_id for e in events)
        assert state_of(replay(events)) == state_of(self.endpoint)
        pinged = [e.ping_id for e in events if isinstance(e, WebhookEndpoint.Pinged)]
        assert pinged == self.pings

        state: Any = None
        for event in events:
            state = projection.evolve(state, event)
        assert state["webhookId"] == str(self.endpoint.id)
        assert (state["url"], state["events"], state["description"]) == (
            model.url,
            model.events,
            model.description,
        )
        assert (state["status"], state["disabledReason"]) == (model.status, model.disabled_reason)
        rotated = model.secrets[-1][1] if len(model.secrets) > 1 else None
        assert state["secretRotatedAt"] == (rotated and instant(rotated))
        # No secret, nor any secret's id, is ever part of what clients see.
        text = repr(state)
        assert not any(str(secret_id) in text for secret_id, _ in model.secrets)


EndpointMachine.TestCase.settings = MACHINE_SETTINGS
TestEndpointLifecycle = EndpointMachine.TestCase


# -- value rules --------------------------------------------------------------------------------

schemes = st.sampled_from(["http", "https", "HTTP", "Https", "ftp", "file", "javascript", ""])
hosts = st.sampled_from(
    ["example.com", "203.0.113.5", "[2001:db8::1]", "localhost", "", "exa mple.com", "[::1"]
)
userinfos = st.sampled_from(["", "user@", "user:secret@", ":pw@", "@"])
ports = st.sampled_from(["", ":80", ":65535", ":0", ":65536", ":http", ":"])
paths = st.sampled_from(["", "/", "/hooks/in", "/a b", "/?q=1#frag", "/tab\there"])


@given(scheme=schemes, userinfo=userinfos, host=hosts, port=ports, path=paths)
def test_webhook_url_accepts_only_absolute_http_urls_without_credentials(
    scheme: str, userinfo: str, host: str, port: str, path: str
) -> None:
    text = f"{scheme}://{userinfo}{host}{port}{path}" if scheme else f"{userinfo}{host}{path}"
    valid = (
        scheme.lower() in ("http", "https")
        and host not in ("", "exa mple.com", "[::1")
        and userinfo == ""
        and port in ("", ":80", ":65535", ":0", ":")
        and " " not in path
        and "\t" not in path
    )
    if not valid:
        with pytest.raises(InvalidValue) as caught:
            webhook_url("url", text)
        assert caught.value.field == "url"
        return
    assert webhook_url("url", text) == text
    assert webhook_url("url", f"  {text}\n") == text  # surrounding white space is dropped


@given(st.sampled_from(["http://", "https://", ""]), st.text(max_size=40))
def test_webhook_url_refuses_junk_with_invalid_value_only(prefix: str, rest: str) -> None:
    try:
        url = webhook_url("url", prefix + rest)
    except InvalidValue as error:
        field = error.field
        url = None
    if url is None:
        assert field == "url"
        return
    parts = urlsplit(url)
    assert parts.scheme.lower() in ("http", "https")
    assert parts.hostname
    assert parts.username is None
    assert parts.password is None
    assert not any(c.isspace() for c in url)
    assert not CONTROL.search(url)
    assert webhook_url("url", url) == url


padded = st.tuples(st.sampled_from(["", " ", "  "]), st.sampled_from(["", " ", "\t"]))
names = st.one_of(
    st.sampled_from([*KNOWN, ALL_EVENTS]),
    st.sampled_from(["person.exploded", "", "webhook.test", "PERSON.CREATED", "**"]),
    st.text(max_size=12),
)


@given(st.lists(st.tuples(names, padded), max_size=MAX_FILTERS + 3))
def test_event_filter_is_known_names_or_the_wildcard_alone(
    raw: list[tuple[str, tuple[str, str]]],
) -> None:
    given_names = [f"{left}{name}{right}" for name, (left, right) in raw]
    stripped = [name.strip() for name in given_names]
    known_or_all = all(name in PUBLIC_EVENT_TYPES or name == ALL_EVENTS for name in stripped)
    unique = list(dict.fromkeys(stripped))
    valid = (
        0 < len(given_names) <= MAX_FILTERS
        and known_or_all
        and (ALL_EVENTS not in unique or unique == [ALL_EVENTS])
    )
    if not valid:
        with pytest.raises(InvalidValue) as caught:
            event_filter("events", given_names, PUBLIC_EVENT_TYPES)
        assert caught.value.field == "events"
        return
    chosen = event_filter("events", given_names, PUBLIC_EVENT_TYPES)
    assert chosen == unique  # duplicates dropped, first-seen order kept
    assert event_filter("events", chosen, PUBLIC_EVENT_TYPES) == chosen


@given(st.lists(st.sampled_from(KNOWN), min_size=1, unique=True), st.sampled_from(KNOWN))
def test_matches_is_membership_or_the_wildcard(filters: list[str], event_type: str) -> None:
    assert matches(filters, event_type) is (event_type in filters)
    assert matches(tuple(filters), event_type) is (event_type in filters)
    assert matches([ALL_EVENTS], event_type)


@given(st.uuids(), st.uuids(), st.uuids(), st.integers(1, 10_000), st.integers(1, 10_000))
def test_delivery_ids_are_stable_and_distinct(
    endpoint: UUID, other_endpoint: UUID, event: UUID, version: int, other_version: int
) -> None:
    assert delivery_id(endpoint, event, version) == delivery_id(endpoint, event, version)
    if other_endpoint != endpoint:
        assert delivery_id(other_endpoint, event, version) != delivery_id(endpoint, event, version)
    if other_version != version:
        assert delivery_id(endpoint, event, other_version) != delivery_id(endpoint, event, version)
