"""ApiKey: a machine client's credential inside one tenant, with its scopes and limits.

A key is created active and stays so until it is revoked (final) or its `expires_at` passes
(expiry is a matter of time, not an event). Rotating gives the key a new secret; the previous
secret may keep working for a grace period, so a client can switch without an outage.

The secret itself never enters the event log (the log is kept forever and shown to auditors),
and neither does its HMAC: events name the HMAC by `hash_id`, and the HMAC sits in the key-hash
store beside the log, as webhook secrets do.

Key format (GitHub-token style): `wlk_` + base62(32 random bytes, 43 chars) + base62(key id,
22 chars) + base62(CRC32 of everything before it, 6 chars): 75 characters. The prefix makes a
leaked key easy to recognise (secret scanners), the checksum lets a typo or a forgery be refused
without touching the database, and the embedded key id lets authentication load the aggregate
straight from the log, so revocation, rotation and expiry hold on the very next request.
"""

from __future__ import annotations

import ipaddress
import zlib
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import values
from domain.errors import IllegalTransition, InvalidValue
from domain.events import TenantEvent

ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"

KEY_PREFIX = "wlk_"
SECRET_BYTES = 32
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SECRET_CHARS, _ID_CHARS, _CHECK_CHARS = 43, 22, 6  # enough base62 digits for 2**256, 2**128, 2**32
KEY_LENGTH = len(KEY_PREFIX) + _SECRET_CHARS + _ID_CHARS + _CHECK_CHARS
# What lists show of a key: enough to tell keys apart, far too little to guess the rest
# (8 base62 characters of the secret leave more than 200 random bits hidden).
DISPLAY_PREFIX_LENGTH = 12

MAX_ALLOWED_IPS = 100
MIN_RATE_LIMIT, MAX_RATE_LIMIT = 1, 100_000
MAX_GRACE = timedelta(days=7)

_DIGITS = {c: i for i, c in enumerate(ALPHABET)}


def _base62(number: int, width: int) -> str:
    if not 0 <= number < 62**width:
        raise ValueError(f"{number} does not fit in {width} base62 digits")
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _number(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + _DIGITS[char]
    return number


def checksum(body: str) -> str:
    """The 6-character base62 CRC32 of `body` that ends every key."""
    return _base62(zlib.crc32(body.encode()), _CHECK_CHARS)


def format_key(key_id: UUID, secret: bytes) -> str:
    """The key a client is given: prefix, secret, key id and checksum (see the module doc)."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"an API key secret is {SECRET_BYTES} bytes")
    body = (
        KEY_PREFIX
        + _base62(int.from_bytes(secret, "big"), _SECRET_CHARS)
        + _base62(key_id.int, _ID_CHARS)
    )
    return body + checksum(body)


def key_id_of(key: str) -> UUID | None:
    """The key id a well-formed key embeds; None when the key is malformed (length, prefix,
    alphabet, a number out of range) or its checksum does not match."""
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return None
    rest = key[len(KEY_PREFIX) :]
    if any(char not in _DIGITS for char in rest):
        return None
    body, check = key[:-_CHECK_CHARS], key[-_CHECK_CHARS:]
    if checksum(body) != check:
        return None
    secret_digits = rest[:_SECRET_CHARS]
    id_digits = rest[_SECRET_CHARS : _SECRET_CHARS + _ID_CHARS]
    number = _number(id_digits)
    if _number(secret_digits) >= 2 ** (8 * SECRET_BYTES) or number >= 2**128:
        return None  # well-formed text, but no key this service could have made
    return UUID(int=number)


def display_prefix(key: str) -> str:
    """The part of a key that lists show, so a client can tell its keys apart."""
    return key[:DISPLAY_PREFIX_LENGTH]


# -- value rules ----------------------------------------------------------------------------


def scope_list(field: str, given: list[str], grantable: frozenset[str]) -> list[str]:
    """Permission names the key may hold: at least one, each grantable; duplicates dropped,
    the order given kept."""
    if not given:
        raise InvalidValue(field, "must name at least one permission, e.g. person:read")
    chosen: list[str] = []
    for scope in given:
        if scope not in grantable:
            raise InvalidValue(field, f"{scope!r} is not a permission an API key can hold")
        if scope not in chosen:
            chosen.append(scope)
    return chosen


def cidr_blocks(field: str, given: list[str] | None) -> list[str]:
    """CIDR blocks (IPv4 or IPv6; a bare address is a block of one), normalised to network
    form (`10.1.2.3/8` -> `10.0.0.0/8`), duplicates dropped. Empty means any address."""
    if not given:
        return []
    if len(given) > MAX_ALLOWED_IPS:
        raise InvalidValue(field, f"must list at most {MAX_ALLOWED_IPS} CIDR blocks")
    chosen: list[str] = []
    for text in given:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise InvalidValue(
                field, f"{text!r} is not an IP address or CIDR block such as 203.0.113.0/24"
            ) from None
        if str(network) not in chosen:
            chosen.append(str(network))
    return chosen


def rate_limit(field: str, per_minute: int | None) -> int | None:
    """Requests per minute, 1..100000; None leaves the key at the default limit."""
    if per_minute is not None and not MIN_RATE_LIMIT <= per_minute <= MAX_RATE_LIMIT:
        raise InvalidValue(field, f"must be between {MIN_RATE_LIMIT} and {MAX_RATE_LIMIT}")
    return per_minute


def expiry(field: str, expires_at: datetime | None, at: datetime) -> datetime | None:
    """An instant with a time zone, after `at`, as UTC; None means the key does not expire."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise InvalidValue(field, "must be an instant with a time zone, e.g. 2027-01-01T00:00:00Z")
    try:
        # Kept in UTC, as every reader shows it. Late on 9999-12-31 with a negative offset an
        # instant has no UTC form: recorded, it would stop every read model that shows it.
        expires_at = expires_at.astimezone(UTC)
    except OverflowError:
        raise InvalidValue(field, "must be an instant before the year 10000 (UTC)") from None
    if expires_at <= at:
        raise InvalidValue(field, "must be in the future")
    return expires_at


def address_in(address: str | None, networks: list[str]) -> bool:
    """Whether `address` (an IPv4 or IPv6 address as text) lies in one of `networks`. An
    address that is missing or not an IP address lies in none; an IPv4-mapped IPv6 address
    (`::ffff:10.0.0.1`) and its IPv4 address are the same address."""
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return False
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        forms.append(ip.ipv4_mapped)
    elif isinstance(ip, ipaddress.IPv4Address):
        forms.append(ipaddress.IPv6Address(f"::ffff:{ip}"))
    return any(form in ipaddress.ip_network(network) for network in networks for form in forms)


def blocks_within(inner: list[str], outer: list[str]) -> bool:
    """Whether every address the CIDR blocks `inner` admit is admitted by `outer` (an empty
    list admits any address). Strict: a block of the other IP version never lies within."""
    if not outer:
        return True
    if not inner:
        return False
    wider = [ipaddress.ip_network(block) for block in outer]
    return all(
        any(_subnet(ipaddress.ip_network(block), other) for other in wider) for block in inner
    )


def _subnet(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    wider: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    if isinstance(network, ipaddress.IPv4Network) and isinstance(wider, ipaddress.IPv4Network):
        return network.subnet_of(wider)
    if isinstance(network, ipaddress.IPv6Network) and isinstance(wider, ipaddress.IPv6Network):
        return network.subnet_of(wider)
    return False


class ApiKey(Aggregate):
    TOPIC = "workledger:ApiKey"

    class Event(TenantEvent):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "workledger:ApiKeyCreated"
        name: str
        scopes: list[str]
        expires_at: datetime | None
        allowed_ips: list[str]
        rate_limit_per_minute: int | None
        prefix: str
        hash_id: UUID

    class Rotated(Event):
        """A new secret; the previous one is accepted until `previous_valid_until` (None: not
        at all)."""

        TOPIC = "workledger:ApiKeyRotated"
        prefix: str
        hash_id: UUID
        previous_hash_id: UUID
        previous_valid_until: datetime | None

        def apply(self, aggregate: ApiKey) -> None:
            aggregate.prefix = self.prefix
            aggregate.hash_id = self.hash_id
            aggregate.previous_hash_id = self.previous_hash_id
            aggregate.previous_valid_until = self.previous_valid_until
            aggregate.rotated_at = self.timestamp

    class Revoked(Event):
        TOPIC = "workledger:ApiKeyRevoked"

        def apply(self, aggregate: ApiKey) -> None:
            aggregate.revoked_at = self.timestamp

    def __init__(
        self,
        tenant_id: UUID,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        allowed_ips: list[str],
        rate_limit_per_minute: int | None,
        prefix: str,
        hash_id: UUID,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.scopes = list(scopes)
        self.expires_at = expires_at
        self.allowed_ips = list(allowed_ips)
        self.rate_limit_per_minute = rate_limit_per_minute
        self.prefix = prefix
        self.hash_id = hash_id
        self.previous_hash_id: UUID | None = None
        self.previous_valid_until: datetime | None = None
        self.rotated_at: datetime | None = None
        self.revoked_at: datetime | None = None

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def issue(
        cls,
        *,
        key_id: UUID,
        tenant_id: UUID,
        name: str,
        scopes: list[str],
        grantable: frozenset[str],
        expires_at: datetime | None,
        allowed_ips: list[str] | None,
        rate_limit_per_minute: int | None,
        prefix: str,
        hash_id: UUID,
        at: datetime,
    ) -> ApiKey:
        """A new, active key. `grantable` are the permissions it may hold (the application's
        tenant permissions, narrowed to what its creator holds)."""
        return cls._create(
            cls.Created,
            id=key_id,
            tenant_id=tenant_id,
            name=values.required_text("name", name),
            scopes=scope_list("scopes", scopes, grantable),
            expires_at=expiry("expiresAt", expires_at, at),
            allowed_ips=cidr_blocks("allowedIps", allowed_ips),
            rate_limit_per_minute=rate_limit("rateLimitPerMinute", rate_limit_per_minute),
            prefix=prefix,
            hash_id=hash_id,
            timestamp=at,
        )

    def rotate(self, *, prefix: str, hash_id: UUID, grace: timedelta, at: datetime) -> None:
        """Give the key a new secret. The current one keeps working for `grace` (0 to 7 days;
        zero: it stops at once); a secret from an earlier rotation stops now either way."""
        self._refuse_unless_active("rotate", at)
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise InvalidValue("gracePeriodSeconds", "must be between 0 and 604800 seconds")
        if hash_id in (self.hash_id, self.previous_hash_id):
            raise ValueError("a rotated key must get a new hash id")  # a caller's bug
        self.trigger_event(
            self.Rotated,
            tenant_id=self.tenant_id,
            timestamp=at,
            prefix=prefix,
            hash_id=hash_id,
            previous_hash_id=self.hash_id,
            previous_valid_until=at + grace if grace else None,
        )

    def revoke(self, *, at: datetime) -> None:
        """Stop the key for good (an expired key may be revoked too; a revoked one may not)."""
        if self.revoked_at is not None:
            raise IllegalTransition("key", "revoke", REVOKED)
        self.trigger_event(self.Revoked, tenant_id=self.tenant_id, timestamp=at)

    # -- queries --------------------------------------------------------------------------

    def status(self, now: datetime) -> str:
        """`revoked`, `expired` (its expiry has passed) or `active`."""
        if self.revoked_at is not None:
            return REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return EXPIRED
        return ACTIVE

    def accepted_hash_ids(self, now: datetime) -> list[UUID]:
        """The secrets (by hash id) that authenticate at `now`: none unless the key is active;
        the current one, and the previous one while its grace period lasts."""
        if self.status(now) != ACTIVE:
            return []
        ids = [self.hash_id]
        if (
            self.previous_hash_id is not None
            and self.previous_valid_until is not None
            and now < self.previous_valid_until
        ):
            ids.append(self.previous_hash_id)
        return ids

    def admits(self, address: str | None) -> bool:
        """Whether a request from `address` may use the key (any address when it has no
        allowlist)."""
        return not self.allowed_ips or address_in(address, self.allowed_ips)

    def _refuse_unless_active(self, action: str, at: datetime) -> None:
        state = self.status(at)
        if state != ACTIVE:
            raise IllegalTransition("key", action, state)
