"""Exact money: Decimal amounts rounded half-even to the currency's minor unit (ISO 4217 data
from CLDR, via Babel: JPY 0 digits, USD 2, BHD 3)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache

from babel.numbers import get_currency_precision

from domain import values
from domain.errors import InvalidValue

MAX_AMOUNT = Decimal("1e15")  # far beyond any engagement or invoice, well inside BIGINT cents


@cache
def minor_units(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit."""
    return int(get_currency_precision(currency))


def amount(
    field: str,
    value: Decimal,
    currency: str,
    *,
    currency_field: str = "currency",
    allow_zero: bool = True,
) -> Decimal:
    """A non-negative amount in `currency`, rounded half-even to its minor unit."""
    code = values.currency(currency_field, currency)
    try:
        if not value.is_finite():
            raise InvalidOperation
        if value < 0:  # before rounding: -0.001 is a negative amount, not zero
            raise InvalidValue(field, "must not be negative")
        quantum = Decimal(1).scaleb(-minor_units(code))
        rounded = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise InvalidValue(field, "must be a decimal amount such as 1250.00") from None
    if not allow_zero and rounded == 0:
        raise InvalidValue(field, "must be above zero")
    if rounded == 0:
        rounded = rounded.copy_abs()  # "-0.00" is not an amount anyone means
    if rounded >= MAX_AMOUNT:
        raise InvalidValue(field, "is too large")
    return rounded
