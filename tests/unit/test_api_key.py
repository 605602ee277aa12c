"""API keys in the domain: the key format and its checksum, the value rules (scopes, CIDR
blocks, rate limit, expiry) and the lifecycle (active -> rotated* -> revoked, and expiry) as a
state machine against a model."""

from __future__ import annotations

import ipaddress
import string
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from application.authorization import PLATFORM_ONLY_PERMISSIONS, TENANT_PERMISSIONS
from application.event_log import EventLog
from domain.api_key import (
    ACTIVE,
    ALPHABET,
    EXPIRED,
    KEY_LENGTH,
    MAX_RATE_LIMIT,
    REVOKED,
    ApiKey,
    address_in,
    checksum,
    cidr_blocks,
    display_prefix,
    expiry,
    format_key,
    key_id_of,
    rate_limit,
    scope_list,
)
from domain.errors import IllegalTransition, InvalidValue
from tests.unit.support import MACHINE_SETTINGS, META, memory_log, replay

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ids = st.integers(0, 2**128 - 1).map(lambda n: UUID(int=n))
secrets_ = st.binary(min_size=32, max_size=32)


# -- the key format -------------------------------------------------------------------------


@given(key_id=ids, secret=secrets_)
def test_a_key_carries_its_id_behind_a_prefix_and_a_checksum(key_id: UUID, secret: bytes) -> None:
    key = format_key(key_id, secret)
    assert len(key) == KEY_LENGTH == 75
    assert key.startswith("wlk_")
    assert set(key[4:]) <= set(ALPHABET)
    assert key[-6:] == checksum(key[:-6])
    assert key_id_of(key) == key_id
    assert display_prefix(key) == key[:12]


@given(key_id=ids, secret=secrets_, other=secrets_)
def test_different_secrets_give_different_keys_with_the_same_id(
    key_id: UUID, secret: bytes, other: bytes
) -> None:
    assume(secret != other)
    first, second = format_key(key_id, secret), format_key(key_id, other)
    assert first != second
    assert key_id_of(first) == key_id_of(second) == key_id


@given(
    key_id=ids,
    secret=secrets_,
    position=st.integers(0, KEY_LENGTH - 1),
    replacement=st.sampled_from(ALPHABET + "_-+/=. " + string.punctuation),
)
def test_any_single_character_change_is_detected(
    key_id: UUID, secret: bytes, position: int, replacement: str
) -> None:
    key = format_key(key_id, secret)
    assume(key[position] != replacement)
    changed = key[:position] + replacement + key[position + 1 :]
    assert key_id_of(changed) is None


@given(key_id=ids, secret=secrets_, position=st.integers(0, KEY_LENGTH - 2))
def test_any_swap_of_neighbouring_characters_is_detected(
    key_id: UUID, secret: bytes, position: int
) -> None:
    key = format_key(key_id, secret)
    assume(key[position] != key[position + 1])
    swapped = key[:position] + key[position + 1] + key[position] + key[position + 2 :]
    assert key_id_of(swapped) is None


@given(key_id=ids, secret=secrets_, cut=st.integers(1, 10))
def test_a_truncated_or_extended_key_is_malformed(key_id: UUID, secret: bytes, cut: int) -> None:
    key = format_key(key_id, secret)
    assert key_id_of(key[:-cut]) is None
    assert key_id_of(key + "A" * cut) is None
    assert key_id_of(" " + key) is None


@given(st.text(max_size=100))
def test_arbitrary_text_is_never_a_key_and_never_an_error(text: str) -> None:
    assert key_id_of(text) is None


def test_a_well_formed_key_with_numbers_out_of_range_is_refused() -> None:
    # 43 'z's is more than 256 bits: text no key of ours can be, with a correct checksum.
    body = "wlk_" + "z" * 43 + "0" * 22
    assert key_id_of(body + checksum(body)) is None
    body = "wlk_" + "0" * 43 + "z" * 22
    assert key_id_of(body + checksum(body)) is None


def test_the_checksum_is_the_crc32_of_what_precedes_it_in_base62() -> None:
    key = format_key(UUID(int=1), bytes(32))
    number = 0
    for char in key[-6:]:
        number = number * 62 + ALPHABET.index(char)
    assert number == zlib.crc32(key[:-6].encode())
    assert key == "wlk_" + "0" * 43 + "0" * 21 + "1" + key[-6:]


def test_only_32_byte_secrets_make_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        format_key(uuid4(), bytes(16))


# -- value rules ----------------------------------------------------------------------------


@given(st.lists(st.sampled_from(sorted(TENANT_PERMISSIONS)), min_size=1))
def test_scopes_are_tenant_permissions_without_duplicates(given_scopes: list[str]) -> None:
    chosen = scope_list("scopes", given_scopes, TENANT_PERMISSIONS)
    assert chosen == list(dict.fromkeys(given_scopes))


@pytest.mark.parametrize(
    "bad",
    [
        [],
        ["person:reed"],
        ["person:read", "PERSON:READ"],
        [" person:read"],
        *([[p] for p in sorted(PLATFORM_ONLY_PERMISSIONS)]),
    ],
)
def test_unknown_platform_or_missing_scopes_are_refused(bad: list[str]) -> None:
    with pytest.raises(InvalidValue) as caught:
        scope_list("scopes", bad, TENANT_PERMISSIONS)
    assert caught.value.field == "scopes"


@given(
    address=st.ip_addresses(),
    prefix=st.integers(0, 128),
)
def test_a_block_holds_the_address_it_was_made_from(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int
) -> None:
    prefix = min(prefix, address.max_prefixlen)
    blocks = cidr_blocks("allowedIps", [f"{address}/{prefix}"])
    network = ipaddress.ip_network(blocks[0])
    assert network.prefixlen == prefix
    assert str(network) == blocks[0]  # normalised: host bits cleared
    assert address_in(str(address), blocks)
    if address.version == 4:
        assert address_in(f"::ffff:{address}", blocks)  # an IPv4-mapped IPv6 peer
        assert address_in(str(address), [f"::ffff:{address}/128"])  # and the other way round


@given(address=st.ip_addresses(v=4))
def test_an_address_outside_every_block_is_not_admitted(address: ipaddress.IPv4Address) -> None:
    inside = address in ipaddress.ip_network("10.0.0.0/8")
    assert address_in(str(address), ["10.0.0.0/8"]) == inside
    assert not address_in(str(address), ["2001:db8::/32"])


@pytest.mark.parametrize("address", [None, "", "testclient", "10.0.0", "::zz", "10.0.0.1:80"])
def test_what_is_not_an_address_is_in_no_block(address: str | None) -> None:
    assert not address_in(address, ["0.0.0.0/0", "::/0"])


def test_cidr_blocks_are_normalised_and_deduplicated() -> None:
    assert cidr_blocks(
        "allowedIps", ["10.1.2.3/8", "10.0.0.0/8", " 192.0.2.7 ", "2001:DB8::/32"]
    ) == [
        "10.0.0.0/8",
        "192.0.2.7/32",
        "2001:db8::/32",
    ]
    assert cidr_blocks("allowedIps", None) == cidr_blocks("allowedIps", []) == []


@pytest.mark.parametrize(
    "bad", [["10.0.0.0/33"], ["300.1.1.1"], ["example.com"], [""], ["10.0.0.0/8", "nope"]]
)
def test_what_is_not_a_cidr_block_is_refused(bad: list[str]) -> None:
    with pytest.raises(InvalidValue) as caught:
        cidr_blocks("allowedIps", bad)
    assert caught.value.field == "allowedIps"


def test_at_most_a_hundred_blocks() -> None:
    many = [f"10.0.{n}.0/24" for n in range(101)]
    with pytest.raises(InvalidValue):
        cidr_blocks("allowedIps", many)
    assert len(cidr_blocks("allowedIps", many[:100])) == 100


@given(st.integers(-(10**6), 10**6))
def test_rate_limits_are_between_one_and_a_hundred_thousand(per_minute: int) -> None:
    if 1 <= per_minute <= MAX_RATE_LIMIT:
        assert rate_limit("rateLimitPerMinute", per_minute) == per_minute
    else:
        with pytest.raises(InvalidValue):
            rate_limit("rateLimitPerMinute", per_minute)
    assert rate_limit("rateLimitPerMinute", None) is None


@given(offset=st.integers(-(10**8), 10**8))
def test_expiry_must_lie_in_the_future(offset: int) -> None:
    expires_at = START + timedelta(seconds=offset)
    if offset > 0:
        assert expiry("expiresAt", expires_at, START) == expires_at
    else:
        with pytest.raises(InvalidValue):
            expiry("expiresAt", expires_at, START)


def test_expiry_needs_a_time_zone() -> None:
    with pytest.raises(InvalidValue, match="time zone"):
        expiry("expiresAt", datetime(2099, 1, 1), START)


# -- the lifecycle --------------------------------------------------------------------------


def state_of(api_key: ApiKey) -> dict[str, Any]:
    return {k: v for k, v in vars(api_key).items() if k != "_pending_events"}


def issue(**overrides: Any) -> ApiKey:
    fields: dict[str, Any] = {
        "key_id": uuid4(),
        "tenant_id": uuid4(),
        "name": "CI",
        "scopes": ["person:read"],
        "grantable": TENANT_PERMISSIONS,
        "expires_at": None,
        "allowed_ips": None,
        "rate_limit_per_minute": None,
        "prefix": "wlk_abcdefgh",
        "hash_id": uuid4(),
        "at": START,
        **overrides,
    }
    return ApiKey.issue(**fields)


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("name", {"name": "  "}),
        ("scopes", {"scopes": []}),
        ("scopes", {"scopes": ["tenant:create"]}),
        ("expiresAt", {"expires_at": START}),
        ("allowedIps", {"allowed_ips": ["10/8"]}),
        ("rateLimitPerMinute", {"rate_limit_per_minute": 0}),
    ],
)
def test_issuing_refuses_bad_values_naming_the_field(field: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue) as caught:
        issue(**overrides)
    assert caught.value.field == field


def test_the_state_of_a_key_comes_back_from_the_log() -> None:
    log: EventLog = memory_log()
    api_key = issue(allowed_ips=["192.0.2.0/24"], rate_limit_per_minute=60)
    api_key.rotate(prefix="wlk_rotated1", hash_id=uuid4(), grace=timedelta(hours=1), at=START)
    log.record(api_key, meta=META)
    loaded = log.load(ApiKey, api_key.id)
    assert loaded is not None
    assert state_of(loaded) == state_of(api_key)
    assert loaded.accepted_hash_ids(START + timedelta(minutes=1)) == [
        api_key.hash_id,
        api_key.previous_hash_id,
    ]


@dataclass
class KeyModel:
    hash_id: UUID
    expires_at: datetime | None
    previous: tuple[UUID, datetime] | None = None
    revoked: bool = False
    version: int = 1
    retired: list[UUID] = field(default_factory=list)

    def status(self, now: datetime) -> str:
        if self.revoked:
            return REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return EXPIRED
        return ACTIVE

    def accepted(self, now: datetime) -> list[UUID]:
        if self.status(now) != ACTIVE:
            return []
        if self.previous is not None and now < self.previous[1]:
            return [self.hash_id, self.previous[0]]
        return [self.hash_id]


class ApiKeyMachine(RuleBasedStateMachine):
    """Commands at random moments, checked against the model; the events always rebuild the
    live key, and a revoked key stays revoked."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.key: ApiKey | None = None
        self.model: KeyModel | None = None
        self.ever_revoked = False

    @initialize(lifetime=st.none() | st.sampled_from([1, 60, 3600]) | st.integers(1, 3 * 86400))
    def issue_key(self, lifetime: int | None) -> None:
        expires_at = None if lifetime is None else self.now + timedelta(seconds=lifetime)
        hash_id = uuid4()
        self.key = issue(expires_at=expires_at, hash_id=hash_id, at=self.now)
        self.model = KeyModel(hash_id=hash_id, expires_at=expires_at)

    @rule(seconds=st.sampled_from([0, 1, 59, 60, 3600]) | st.integers(0, 86400))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(edge=st.sampled_from(["expiry", "grace"]), before=st.booleans())
    def time_reaches_an_edge(self, edge: str, before: bool) -> None:
        """Go to the instant the key expires or a grace period ends (or just before it):
        where an off-by-one would hide."""
        assert self.model is not None
        grace_end = None if self.model.previous is None else self.model.previous[1]
        at = self.model.expires_at if edge == "expiry" else grace_end
        if at is not None:
            at -= timedelta(microseconds=1 if before else 0)
            self.now = max(self.now, at)

    @rule(
        grace=st.sampled_from([-1, 0, 1, 60, 7 * 86400, 7 * 86400 + 1])
        | st.integers(-10, 8 * 86400)
    )
    def rotate(self, grace: int) -> None:
        assert self.key is not None
        assert self.model is not None
        status = self.model.status(self.now)
        new_hash = uuid4()
        pending = len(self.key.pending_events)
        if status != ACTIVE:
            with pytest.raises(IllegalTransition) as caught:
                self.key.rotate(
                    prefix="wlk_x", hash_id=new_hash, grace=timedelta(seconds=grace), at=self.now
                )
            assert caught.value.state == status
        elif not 0 <= grace <= 7 * 86400:
            with pytest.raises(InvalidValue) as refused:
                self.key.rotate(
                    prefix="wlk_x", hash_id=new_hash, grace=timedelta(seconds=grace), at=self.now
                )
            assert refused.value.field == "gracePeriodSeconds"
        else:
            self.key.rotate(
                prefix="wlk_x", hash_id=new_hash, grace=timedelta(seconds=grace), at=self.now
            )
            if self.model.previous is not None:
                self.model.retired.append(self.model.previous[0])
            self.model.previous = (
                (self.model.hash_id, self.now + timedelta(seconds=grace)) if grace else None
            )
            if grace == 0:
                self.model.retired.append(self.model.hash_id)
            self.model.hash_id = new_hash
            self.model.version += 1
            return
        assert len(self.key.pending_events) == pending  # a refused command records nothing

    @rule()
    def revoke(self) -> None:
        assert self.key is not None
        assert self.model is not None
        if self.model.revoked:
            with pytest.raises(IllegalTransition) as caught:
                self.key.revoke(at=self.now)
            assert caught.value.state == REVOKED
            return
        self.key.revoke(at=self.now)  # an expired key may be revoked too
        self.model.revoked = True
        self.model.version += 1
        self.ever_revoked = True

    @invariant()
    def matches_the_model(self) -> None:
        if self.key is None or self.model is None:
            return
        assert self.key.status(self.now) == self.model.status(self.now)
        assert self.key.accepted_hash_ids(self.now) == self.model.accepted(self.now)
        assert self.key.version == self.model.version
        assert not set(self.model.retired) & set(self.key.accepted_hash_ids(self.now))

    @invariant()
    def revoked_is_final(self) -> None:
        if self.key is not None and self.ever_revoked:
            assert self.key.status(self.now) == REVOKED
            assert self.key.accepted_hash_ids(self.now) == []

    @invariant()
    def replay_gives_the_live_key(self) -> None:
        if self.key is None:
            return
        rebuilt = replay(list(self.key.pending_events))
        assert isinstance(rebuilt, ApiKey)
        assert state_of(rebuilt) == state_of(self.key)
        assert all(e.tenant_id == self.key.tenant_id for e in self.key.pending_events)


ApiKeyMachine.TestCase.settings = MACHINE_SETTINGS
TestApiKeyLifecycle = ApiKeyMachine.TestCase
