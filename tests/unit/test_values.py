"""Value rules of domain/values.py: what is accepted, how it is normalised, and that every
refusal names the field the way the API spells it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import values
from domain.errors import DomainError, InvalidValue
from tests.unit.support import accepted_characters

# Written down from ISO 4217 itself, not taken from the code under test.
REAL_CURRENCIES = (
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "CHF",
    "AUD",
    "CAD",
    "SEK",
    "NOK",
    "DKK",
    "INR",
    "ZAR",
    "BRL",
    "MXN",
    "NZD",
    "SGD",
    "HKD",
    "PLN",
    "CZK",
    "AED",
    "KWD",
    "BHD",
    "CLP",
    "ISK",
)
NOT_CURRENCIES = ("XYZ", "US", "", "   ", "EURO", "U SD", "123", "ABC", "QQQ", "E", "USDD", "$")
REAL_TIMEZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Pacific/Chatham",
    "Africa/Nairobi",
)
NOT_TIMEZONES = ("", "Mars/Olympus_Mons", "Europe/Atlantis", "London", "GMT+25", "UTC/UTC")
GOOD_EMAILS = (
    "a@b.co",
    "name@example.com",
    "first.last+tag@sub.example.org",
    "o'brien@example.ie",
    "zoë@exämple.de",
)
BAD_EMAILS = (
    "",
    "plain",
    "a@b",
    "@example.com",
    "name@",
    "a b@example.com",
    "a@@example.com",
    "a@exa mple.com",
    "name@example.",
    "x" * 250 + "@example.com",
)

field_names = st.text(min_size=1, max_size=30)
blank = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=10)
# Text with no surrounding white space of its own, and no control characters (refused).
printable = accepted_characters
core_text = st.text(printable, min_size=1, max_size=40).map(str.strip).filter(bool)


def mixed_case(code: str, data: st.DataObject) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(code), max_size=len(code)))
    return "".join(c.lower() if flip else c for c, flip in zip(code, flips, strict=True))


class TestCurrency:
    @given(st.sampled_from(REAL_CURRENCIES), blank, blank, st.data())
    def test_real_codes_accepted_case_and_space_insensitively(
        self, code: str, before: str, after: str, data: st.DataObject
    ) -> None:
        assert values.currency("currency", before + mixed_case(code, data) + after) == code

    @pytest.mark.parametrize("text", NOT_CURRENCIES)
    def test_non_codes_rejected(self, text: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            values.currency("currency", text)
        assert caught.value.field == "currency"

    @given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=6))
    def test_only_three_letter_codes(self, text: str) -> None:
        try:
            result = values.currency("currency", text)
        except InvalidValue:
            return
        assert len(result) == 3
        assert result == text


class TestTimezone:
    @pytest.mark.parametrize("name", REAL_TIMEZONES)
    def test_iana_names_accepted_unchanged(self, name: str) -> None:
        assert values.timezone_name("timezone", name) == name

    @pytest.mark.parametrize("name", NOT_TIMEZONES)
    def test_unknown_names_rejected(self, name: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            values.timezone_name("tz", name)
        assert caught.value.field == "tz"


class TestEmail:
    @pytest.mark.parametrize("address", GOOD_EMAILS)
    def test_addresses_accepted_and_trimmed(self, address: str) -> None:
        assert values.email("email", f"  {address}\t") == address

    @pytest.mark.parametrize("address", BAD_EMAILS)
    def test_non_addresses_rejected(self, address: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            values.email("contactEmail", address)
        assert caught.value.field == "contactEmail"

    @given(st.from_regex(r"\A[a-z0-9.]{1,20}@[a-z0-9]{1,20}\.[a-z]{2,10}\Z"), blank, blank)
    def test_simple_generated_addresses(self, address: str, before: str, after: str) -> None:
        assert values.email("email", before + address + after) == address


class TestRequiredText:
    @given(core_text, blank, blank)
    def test_trims(self, text: str, before: str, after: str) -> None:
        assert values.required_text("name", before + text + after, 1000) == text

    @given(field_names, blank)
    def test_blank_rejected_naming_the_field(self, field: str, text: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            values.required_text(field, text)
        assert caught.value.field == field
        assert isinstance(caught.value, DomainError)
        assert caught.value.code == "invalid-value"

    @given(st.integers(min_value=1, max_value=80), st.data())
    def test_length_limit_applies_to_trimmed_text(self, limit: int, data: st.DataObject) -> None:
        length = data.draw(st.integers(min_value=1, max_value=limit + 10))
        text = "x" * length
        padded = "   " + text + "  "
        if length <= limit:
            assert values.required_text("f", padded, limit) == text
        else:
            with pytest.raises(InvalidValue) as caught:
                values.required_text("f", padded, limit)
            assert caught.value.field == "f"

    def test_default_limit_is_200(self) -> None:
        assert values.required_text("name", "y" * 200) == "y" * 200
        with pytest.raises(InvalidValue):
            values.required_text("name", "y" * 201)


@pytest.mark.parametrize(
    "bad", ["\x00", "a\x00b", "x\x1b[31m", "\x7f", "\x0b", "ab\u202ecba", "\u2066x\u2069"]
)
@pytest.mark.parametrize(
    "check",
    [
        lambda v: values.required_text("f", v),
        lambda v: values.optional_text("f", v),
        lambda v: values.email("f", f"a{v}@b.co"),
        lambda v: values.unit_name("f", v + "x"),
    ],
)
def test_control_characters_are_refused(check: Any, bad: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        check(bad)
    assert caught.value.field == "f"


def test_right_to_left_text_itself_is_kept() -> None:
    assert values.required_text("name", "مريم العلي") == "مريم العلي"
    assert values.required_text("name", "אבי כהן") == "אבי כהן"


def test_tabs_and_line_breaks_inside_text_are_kept() -> None:
    assert values.optional_text("reason", " line one\nline\ttwo ", 500) == "line one\nline\ttwo"


class TestOptionalText:
    def test_none_stays_none(self) -> None:
        assert values.optional_text("industry", None) is None

    @given(blank)
    def test_blank_becomes_none(self, text: str) -> None:
        assert values.optional_text("industry", text) is None

    @given(core_text, blank, blank)
    def test_trims(self, text: str, before: str, after: str) -> None:
        assert values.optional_text("industry", before + text + after, 1000) == text

    def test_too_long_rejected(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            values.optional_text("reason", "r" * 501, 500)
        assert caught.value.field == "reason"
        assert values.optional_text("reason", "r" * 500, 500) == "r" * 500


class TestPhoneNumber:
    @pytest.mark.parametrize(
        "number", ["+44 20 7946 0958", "(555) 123-4567", "0123456789", "+1.555.123.4567"]
    )
    def test_numbers_accepted_and_trimmed(self, number: str) -> None:
        assert values.phone_number("phoneNumber", f" {number} ") == number

    @pytest.mark.parametrize("number", [None, "", "   "])
    def test_absent_is_none(self, number: str | None) -> None:
        assert values.phone_number("phoneNumber", number) is None

    @pytest.mark.parametrize(
        "number", ["call me", "1234", "+44 20 7946 0958 ext", "1" * 33, "12#34567"]
    )
    def test_non_numbers_rejected(self, number: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            values.phone_number("phoneNumber", number)
        assert caught.value.field == "phoneNumber"


class TestOneOf:
    @given(st.lists(st.text(max_size=5), min_size=1, max_size=5, unique=True), st.text(max_size=5))
    def test_membership(self, allowed: list[str], value: str) -> None:
        if value in allowed:
            assert values.one_of("plan", value, tuple(allowed)) == value
        else:
            with pytest.raises(InvalidValue) as caught:
                values.one_of("plan", value, tuple(allowed))
            assert caught.value.field == "plan"


class TestUnitName:
    @given(core_text.filter(lambda s: "/" not in s and len(s) <= 100), blank, blank)
    def test_accepted_and_trimmed(self, text: str, before: str, after: str) -> None:
        assert values.unit_name("unit", before + text + after) == text

    @pytest.mark.parametrize("text", ["", "  ", "a/b", "/", "Sales/", "u" * 101])
    def test_rejected(self, text: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            values.unit_name("organisationalUnits", text)
        assert caught.value.field == "organisationalUnits"

    def test_hundred_characters_is_the_limit(self) -> None:
        assert values.unit_name("unit", "u" * 100) == "u" * 100


class TestDateNotBefore:
    @given(
        st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)),
        st.integers(min_value=-1000, max_value=1000),
    )
    def test_order(self, start: date, days: int) -> None:
        value = start + timedelta(days=days)
        if days >= 0:
            assert values.date_not_before("employmentEndDate", value, start) == value
        else:
            with pytest.raises(InvalidValue) as caught:
                values.date_not_before("employmentEndDate", value, start)
            assert caught.value.field == "employmentEndDate"

    def test_none_passes(self) -> None:
        assert values.date_not_before("employmentEndDate", None, date(2024, 1, 1)) is None


@given(field_names, st.text(max_size=30))
def test_invalid_value_names_its_field(field: str, message: str) -> None:
    error = InvalidValue(field, message)
    assert error.field == field
    assert error.field_message == message
    assert field in str(error)
