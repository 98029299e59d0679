"""How the console writes money and ages."""

import pytest

from billing_app.admin.formatting import duration, money, pretty_json


@pytest.mark.parametrize(
    ("minor_units", "currency", "shown"),
    [
        ("123456", "USD", "1,234.56 USD"),
        (5, "EUR", "0.05 EUR"),
        (-3000, "GBP", "-30.00 GBP"),
        ("1500", "JPY", "1,500 JPY"),
        (None, "USD", "-"),
    ],
)
def test_money_is_minor_units_in_the_currencys_own_decimals(minor_units, currency, shown):
    assert money(minor_units, currency) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (42, "42 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (7800, "2 h 10 min"),
        (100800, "1 d 4 h"),
    ],
)
def test_an_age_is_written_in_its_two_largest_units(seconds, shown):
    assert duration(seconds) == shown


def test_a_payload_is_indented_and_text_that_is_not_json_is_left_alone():
    assert pretty_json('{"b": 1, "a": [2]}') == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}'
    assert pretty_json("not json <b>") == "not json <b>"
