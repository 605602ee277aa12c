"""Value rules shared by aggregates: each check returns the normalised value or raises
InvalidValue naming the field as the API spells it."""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from zoneinfo import available_timezones

from babel.numbers import list_currencies

from domain.errors import InvalidValue

# Deliberately pragmatic: one @, no spaces, a dot in the domain. Deliverability is not our call.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{5,32}$")
_UNIT = re.compile(r"^[^/\s][^/]{0,99}$")


# C0 controls and DEL, but tab and line breaks: no client means them, PostgreSQL text cannot
# hold NUL, and they hide in logs and exports. Also the bidirectional embedding, override and
# isolate controls (U+202A-U+202E, U+2066-U+2069): they make text read differently from what it
# holds ("Trojan Source", CVE-2021-42574), and right-to-left names do not need them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _stripped(field: str, value: str) -> str:
    """The value without surrounding white space; control characters are refused."""
    if _CONTROL.search(value):
        raise InvalidValue(field, "must not contain control characters")
    return value.strip()


def required_text(field: str, value: str, max_length: int = 200) -> str:
    text = _stripped(field, value)
    if not text:
        raise InvalidValue(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidValue(field, f"must be at most {max_length} characters")
    return text


def optional_text(field: str, value: str | None, max_length: int = 200) -> str | None:
    if value is None:
        return None
    text = _stripped(field, value)
    if len(text) > max_length:
        raise InvalidValue(field, f"must be at most {max_length} characters")
    return text or None


def email(field: str, value: str) -> str:
    text = _stripped(field, value)
    if len(text) > 254 or not _EMAIL.match(text):
        raise InvalidValue(field, "must be an email address such as name@example.com")
    return text


def phone_number(field: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = _stripped(field, value)
    if not _PHONE.match(text):
        raise InvalidValue(field, "must be a phone number of digits, spaces and +()-.")
    return text


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def currency(field: str, value: str) -> str:
    """An ISO 4217 code, as known to CLDR (via babel), upper-cased."""
    code = value.strip().upper()
    if code not in _currencies():
        raise InvalidValue(field, f"{value!r} is not an ISO 4217 currency code")
    return code


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_name(field: str, value: str) -> str:
    """An IANA time zone name such as Europe/London."""
    name = value.strip()
    if name not in _timezones():
        raise InvalidValue(field, f"{value!r} is not an IANA time zone")
    return name


def one_of(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidValue(field, f"must be one of {', '.join(allowed)}")
    return value


def unit_name(field: str, value: str) -> str:
    text = _stripped(field, value)
    if not _UNIT.match(text):
        raise InvalidValue(field, "must be 1-100 characters with no '/'")
    return text


def date_not_before(field: str, value: date | None, start: date) -> date | None:
    if value is not None and value < start:
        raise InvalidValue(field, f"must not be before {start.isoformat()}")
    return value
