"""domain.money.amount: exact Decimal amounts, rounded half-even to the currency's minor unit.

The oracle rounds with integer arithmetic on Fractions, so it shares no code (and no Decimal
context) with the implementation. Minor units are written out here from ISO 4217.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import money
from domain.errors import InvalidValue

# ISO 4217 minor units, written out independently of Babel/CLDR.
MINOR_UNITS = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
}
LIMIT = Decimal("1e15")  # amounts from here up are "too large"
FIELD = "contractTerms.pricing.amount"

currencies = st.sampled_from(sorted(MINOR_UNITS))
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None)


def half_even(value: Decimal, digits: int) -> Decimal:
    """`value` rounded half-even to `digits` places, with exactly that many places."""
    scaled = Fraction(value) * 10**digits
    whole = floor(scaled)
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return Decimal(whole).scaleb(-digits)


def places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


def test_the_oracle_rounds_half_even() -> None:
    assert str(half_even(Decimal("0.125"), 2)) == "0.12"
    assert str(half_even(Decimal("0.135"), 2)) == "0.14"
    assert str(half_even(Decimal("0.1251"), 2)) == "0.13"
    assert str(half_even(Decimal("2.5"), 0)) == "2"
    assert str(half_even(Decimal("7"), 3)) == "7.000"


@pytest.mark.parametrize("code", sorted(MINOR_UNITS))
def test_minor_units_are_iso_4217(code: str) -> None:
    assert money.minor_units(code) == MINOR_UNITS[code]


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("0.125", "USD", "0.12"),
        ("0.135", "USD", "0.14"),
        ("0.145", "USD", "0.14"),
        ("0.1250001", "USD", "0.13"),
        ("50000", "USD", "50000.00"),
        ("0", "USD", "0.00"),
        ("2.5", "JPY", "2"),
        ("3.5", "JPY", "4"),
        ("0.5", "JPY", "0"),
        ("1E+3", "JPY", "1000"),
        ("1.2345", "BHD", "1.234"),
        ("1.2355", "BHD", "1.236"),
        ("1", "BHD", "1.000"),
        ("999999999999999.99", "USD", "999999999999999.99"),
        ("999999999999998.5", "JPY", "999999999999998"),
    ],
)
def test_half_even_examples(value: str, currency: str, expected: str) -> None:
    result = money.amount(FIELD, Decimal(value), currency)
    assert isinstance(result, Decimal)
    assert str(result) == expected


@PROPERTY_SETTINGS
@given(
    value=st.decimals(min_value=0, max_value=LIMIT + 1, allow_nan=False, allow_infinity=False),
    currency=currencies,
)
def test_rounds_like_the_oracle_or_refuses_too_large(value: Decimal, currency: str) -> None:
    digits = MINOR_UNITS[currency]
    expected = half_even(value, digits)
    if expected >= LIMIT:
        with pytest.raises(InvalidValue) as caught:
            money.amount(FIELD, value, currency)
        assert caught.value.field == FIELD
        return
    result = money.amount(FIELD, value, currency)
    assert str(result) == str(expected)
    assert places(result) == digits
    assert not result.is_signed()


@PROPERTY_SETTINGS
@given(
    value=st.one_of(
        st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False),
        st.decimals(min_value=0, max_value=10, places=4),
        st.integers(min_value=0, max_value=10**14).map(Decimal),
    ),
    currency=currencies,
)
def test_rounding_is_idempotent_and_has_exactly_the_minor_unit_digits(
    value: Decimal, currency: str
) -> None:
    once = money.amount(FIELD, value, currency)
    twice = money.amount(FIELD, once, currency)
    assert str(twice) == str(once)
    assert places(once) == MINOR_UNITS[currency]
    # Rounding moves the value by at most half a minor unit.
    assert abs(once - value) <= Decimal(1).scaleb(-MINOR_UNITS[currency]) / 2


@PROPERTY_SETTINGS
@given(
    currency=currencies,
    value=st.one_of(
        st.decimals(max_value=Decimal("-1e-9"), allow_nan=False, allow_infinity=False),
        st.decimals(min_value=Decimal("-0.01"), max_value=Decimal("-0.0001"), places=4),
        st.integers(min_value=-(10**20), max_value=-1).map(Decimal),
    ),
)
def test_negative_amounts_are_refused_naming_the_field(currency: str, value: Decimal) -> None:
    """Negative before rounding is negative, even when it would round to zero."""
    assert value < 0
    with pytest.raises(InvalidValue) as caught:
        money.amount("pricing.amount", value, currency)
    assert caught.value.field == "pricing.amount"


@pytest.mark.parametrize(
    ("value", "currency"),
    [("-0.001", "USD"), ("-0.004", "USD"), ("-0.4", "JPY"), ("-1E-9", "BHD")],
)
def test_a_negative_amount_that_rounds_to_zero_is_refused(value: str, currency: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        money.amount(FIELD, Decimal(value), currency)
    assert caught.value.field == FIELD


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("-0", "USD", "0.00"),
        ("-0.00", "USD", "0.00"),
        ("-0", "JPY", "0"),
        ("-0E+3", "BHD", "0.000"),
    ],
)
def test_negative_zero_comes_back_as_plain_zero(value: str, currency: str, expected: str) -> None:
    result = money.amount(FIELD, Decimal(value), currency)
    assert not result.is_signed(), repr(result)
    assert str(result) == expected


@pytest.mark.parametrize(
    "value", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1E+15", "1E+30", "1E+999999"]
)
@pytest.mark.parametrize("currency", ["USD", "JPY", "BHD"])
def test_not_a_finite_amount_or_too_large_is_refused_naming_the_field(
    value: str, currency: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        money.amount("milestones[0].amount", Decimal(value), currency)
    assert caught.value.field == "milestones[0].amount"


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("999999999999999.995", "USD"),  # half-even up to 1e15
        ("999999999999999.5", "JPY"),
        ("999999999999999.9995", "BHD"),
        ("1000000000000000", "JPY"),
    ],
)
def test_what_rounds_up_to_the_limit_is_too_large(value: str, currency: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        money.amount(FIELD, Decimal(value), currency)
    assert caught.value.field == FIELD
    assert "large" in caught.value.field_message


@pytest.mark.parametrize("code", ["XYZ", "US", "", "EURO", "$", "usd1"])
def test_unknown_currency_is_refused_naming_the_currency_field(code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        money.amount(FIELD, Decimal("10"), code, currency_field="contractTerms.pricing.currency")
    assert caught.value.field == "contractTerms.pricing.currency"
    with pytest.raises(InvalidValue) as default:
        money.amount(FIELD, Decimal("10"), code)
    assert default.value.field == "currency"


def test_currency_codes_are_trimmed_and_upper_cased() -> None:
    assert str(money.amount(FIELD, Decimal("2.5"), " jpy ")) == "2"
    assert str(money.amount(FIELD, Decimal("1.2345"), "bhd")) == "1.234"


@pytest.mark.parametrize(("value", "currency"), [("0", "USD"), ("0.004", "USD"), ("0.4", "JPY")])
def test_zero_is_refused_when_not_allowed(value: str, currency: str) -> None:
    assert money.amount(FIELD, Decimal(value), currency).is_zero()
    with pytest.raises(InvalidValue) as caught:
        money.amount(FIELD, Decimal(value), currency, allow_zero=False)
    assert caught.value.field == FIELD
