"""application.reports: aging buckets, row totals, amount text and month ranges (pure rules).

The property tests add up with integers of minor units (written out here from ISO 4217), so the
oracle shares no Decimal arithmetic with the code under test.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.errors import InvalidRequest
from application.reports import (
    BUCKETS,
    AgingRow,
    OpenReceivable,
    aging,
    amount_text,
    bucket,
    month_range,
)

AS_OF = date(2026, 6, 30)
ACME = UUID("00000000-0000-4000-8000-00000000000a")
GLOBEX = UUID("00000000-0000-4000-8000-00000000000b")
MINOR_UNITS = {"USD": 2, "JPY": 0, "BHD": 3}


def item(
    days_late: int, balance: str, currency: str = "USD", customer: UUID = ACME, name: str = "Acme"
) -> OpenReceivable:
    return OpenReceivable(
        customer_id=customer,
        customer_name=name,
        currency=currency,
        due_date=AS_OF - timedelta(days=days_late),
        balance=Decimal(balance),
    )


def in_minor_units(text: str) -> int:
    """ "12.34" -> 1234, "120000" -> 120000 (the text has the currency's digits, checked)."""
    return int(text.replace(".", ""))


def buckets_of(row: AgingRow) -> dict[str, str]:
    return {name: getattr(row, name) for name in BUCKETS}


@pytest.mark.parametrize(
    ("days_late", "expected"),
    [
        (-400, "current"),
        (-1, "current"),  # due tomorrow
        (0, "current"),  # due today
        (1, "days1to30"),
        (30, "days1to30"),
        (31, "days31to60"),
        (60, "days31to60"),
        (61, "days61to90"),
        (90, "days61to90"),
        (91, "over90"),
        (5000, "over90"),
    ],
)
def test_bucket_boundaries(days_late: int, expected: str) -> None:
    assert bucket(days_late) == expected
    [row] = aging([item(days_late, "12.34")], AS_OF)
    assert buckets_of(row) == {name: ("12.34" if name == expected else "0.00") for name in BUCKETS}
    assert row.total == "12.34"


def test_one_row_per_customer_and_currency_sorted_by_name_then_currency() -> None:
    rows = aging(
        [
            item(5, "100.10", customer=GLOBEX, name="globex"),
            item(45, "0.05", customer=GLOBEX, name="globex"),
            item(0, "120000", currency="JPY", customer=GLOBEX, name="globex"),
            item(100, "1.25", customer=ACME, name="Acme"),
            item(3, "2.50", customer=ACME, name="Acme"),
        ],
        AS_OF,
    )
    assert [(r.customer_name, r.currency) for r in rows] == [
        ("Acme", "USD"),
        ("globex", "JPY"),
        ("globex", "USD"),
    ]
    acme, globex_jpy, globex_usd = rows
    assert (acme.days1to30, acme.over90, acme.total) == ("2.50", "1.25", "3.75")
    assert buckets_of(globex_jpy) == {
        "current": "120000",
        "days1to30": "0",
        "days31to60": "0",
        "days61to90": "0",
        "over90": "0",
    }
    assert globex_jpy.total == "120000"
    assert (globex_usd.days1to30, globex_usd.days31to60, globex_usd.total) == (
        "100.10",
        "0.05",
        "100.15",
    )


def test_no_open_balances_no_rows() -> None:
    assert aging([], AS_OF) == []


def test_amount_text_has_the_currencys_minor_units() -> None:
    assert amount_text(Decimal(0), "USD") == "0.00"
    assert amount_text(Decimal("-0"), "USD") == "0.00"
    assert amount_text(Decimal("7"), "BHD") == "7.000"
    assert amount_text(Decimal("120000"), "JPY") == "120000"
    assert amount_text(Decimal("999999999999999.99"), "USD") == "999999999999999.99"


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-01", "2026-01"), ("2016-01", "2026-01"), ("2025-12", "2026-01")],
)
def test_month_ranges_that_are_accepted(start: str, end: str) -> None:
    assert month_range(start, end) == (start, end)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (None, "2026-01", "from"),
        ("", "2026-01", "from"),
        ("2026-01", None, "to"),
        ("2026-13", "2026-12", "from"),
        ("2026-00", "2026-12", "from"),
        ("2026-1", "2026-12", "from"),
        ("2026-01-01", "2026-12", "from"),
        ("0000-01", "2026-12", "from"),
        ("\uff12\uff10\uff12\uff16-01", "2026-12", "from"),  # fullwidth digits: \d, not ours
        ("2026-01", "26-12", "to"),
        ("2026-02", "2026-01", "to"),  # before from
        ("2016-01", "2026-02", "to"),  # more than ten years apart
    ],
)
def test_month_ranges_that_are_refused_name_the_field(
    start: str | None, end: str | None, field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        month_range(start, end)
    assert refused.value.field == field


# -- properties ---------------------------------------------------------------------------

customers = st.sampled_from([(ACME, "Acme"), (GLOBEX, "Globex")])
open_items = st.builds(
    lambda customer, currency, days_late, minor: (customer, currency, days_late, minor),
    customers,
    st.sampled_from(sorted(MINOR_UNITS)),
    st.integers(min_value=-120, max_value=400),
    st.integers(min_value=1, max_value=10**17),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(open_items, max_size=30))
def test_row_totals_are_the_sum_of_buckets_and_of_open_balances(
    raw: list[tuple[tuple[UUID, str], str, int, int]],
) -> None:
    items = [
        item(days, str(Decimal(minor).scaleb(-MINOR_UNITS[cur])), cur, customer, name)
        for (customer, name), cur, days, minor in raw
    ]
    rows = aging(items, AS_OF)

    expected: dict[tuple[UUID, str], int] = {}
    for (customer, _), cur, _, minor in raw:
        expected[(customer, cur)] = expected.get((customer, cur), 0) + minor
    assert {(r.customer_id, r.currency) for r in rows} == set(expected)
    assert len(rows) == len(expected)
    for row in rows:
        digits = MINOR_UNITS[row.currency]
        texts = [*buckets_of(row).values(), row.total]
        for text in texts:  # exact, with the currency's minor units, never a float's digits
            assert "e" not in text.lower()
            assert len(text.partition(".")[2]) == digits
        total = in_minor_units(row.total)
        assert total == sum(in_minor_units(text) for text in buckets_of(row).values())
        assert total == expected[(row.customer_id, row.currency)]


@settings(max_examples=200, deadline=None)
@given(st.lists(open_items, min_size=1, max_size=30))
def test_each_balance_lands_in_the_bucket_of_its_days_past_due(
    raw: list[tuple[tuple[UUID, str], str, int, int]],
) -> None:
    def oracle(days: int) -> str:
        for limit, name in ((0, "current"), (30, "days1to30"), (60, "days31to60")):
            if days <= limit:
                return name
        return "days61to90" if days <= 90 else "over90"

    items = [
        item(days, str(Decimal(minor).scaleb(-MINOR_UNITS[cur])), cur, customer, name)
        for (customer, name), cur, days, minor in raw
    ]
    expected: dict[tuple[UUID, str, str], int] = {}
    for (customer, _), cur, days, minor in raw:
        key = (customer, cur, oracle(days))
        expected[key] = expected.get(key, 0) + minor
    for row in aging(items, AS_OF):
        for name, text in buckets_of(row).items():
            assert in_minor_units(text) == expected.get((row.customer_id, row.currency, name), 0), (
                name,
                row,
            )
