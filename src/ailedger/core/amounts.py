"""Integer amounts in micro-units (1 unit = 1,000,000 micro-units) and overflow-checked arithmetic.

Why integers: floats round differently on different machines, and a ledger whose sums depend on
the machine cannot be replayed bit for bit.
"""

from __future__ import annotations

from ailedger.core import errors
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.core.errors import LedgerError

MICRO = 1_000_000


def checked_add(a: int, b: int) -> int:
    s = a + b
    if s > MAX_AMOUNT:
        raise LedgerError(errors.OVERFLOW, f"{a} + {b}")
    return s


def check_amount(value: int, what: str = "amount") -> int:
    if type(value) is not int or value < 0 or value > MAX_AMOUNT:
        raise LedgerError(errors.INT_RANGE, f"{what} {value!r}")
    return value


def parse_units(text: str) -> int:
    """'1.5' -> 1_500_000 micro-units, exactly (no float on the way)."""
    s = text.strip()
    whole, _, frac = s.partition(".")
    if (not whole.isdigit() and whole != "") or not (frac == "" or frac.isdigit()) or len(frac) > 6 or s in ("", "."):
        raise LedgerError(errors.INT_RANGE, f"{text!r} is not a non-negative amount with at most 6 decimals")
    return check_amount(int(whole or "0") * MICRO + int(frac.ljust(6, "0") or "0"))


def format_units(micro: int) -> str:
    """Micro-units as units with up to six decimals; a negative amount (a change, a loss) keeps its sign."""
    if micro < 0:
        return "-" + format_units(-micro)
    whole, frac = divmod(micro, MICRO)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)
