"""Units and micro-units: parsing and printing round-trip, and a negative amount keeps its sign."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ailedger.core.amounts import MICRO, format_units, parse_units


@given(st.integers(0, 10**15))
def test_format_then_parse_is_the_identity(micro: int) -> None:
    assert parse_units(format_units(micro)) == micro


@given(st.integers(1, 10**15))
def test_negative_amounts_print_with_their_sign(micro: int) -> None:
    assert format_units(-micro) == "-" + format_units(micro)


def test_examples() -> None:
    assert format_units(1_500_000) == "1.5" and format_units(-242_000) == "-0.242" and format_units(3 * MICRO) == "3"
