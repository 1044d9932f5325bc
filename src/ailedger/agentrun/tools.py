"""The registered tools (names and descriptions in `agents.catalog.TOOLS`), implemented off the ledger.

A tool takes one text argument and returns an exact value (shown to the model as text); `call` finds
it by name. The runner offers an agent only the tools the agent lists on the ledger, and the model
calls one by writing `<tool name="NAME">ARGUMENT</tool>` (docs/agents.md, "tools").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from ailedger.agentrun import arith, units
from ailedger.agents.catalog import TOOLS
from ailedger.core import errors
from ailedger.core.errors import LedgerError

_CONVERSION = re.compile(r"\s*(?P<value>[-+]?[0-9.,/]+)\s*(?P<source>[^\s]+)\s+(?:to|in|->)\s+(?P<target>[^\s]+)\s*",
                         re.IGNORECASE)


def show(v: Fraction) -> str:
    """A value as text: an integer, else a decimal with up to 12 significant places (and the exact
    fraction when the decimal is not exact)."""
    if v.denominator == 1:
        return str(v.numerator)
    text = f"{float(v):.12g}"
    return text if Fraction(text) == v else f"{text} (exactly {v.numerator}/{v.denominator})"


def calculator(argument: str) -> Fraction:
    return arith.evaluate(argument)


def unit_converter(argument: str) -> Fraction:
    """"VALUE UNIT to UNIT", e.g. "5 km to mi"."""
    m = _CONVERSION.fullmatch(argument)
    if m is None:
        raise LedgerError(errors.AGENT_TOOL_FAILED, f"write 'VALUE UNIT to UNIT', got {argument!r}")
    value = arith.parse_number(m.group("value"))
    return units.convert(value, m.group("source"), m.group("target"))


IMPLEMENTATIONS: dict[str, Callable[[str], Fraction]] = {"calculator": calculator, "unit_converter": unit_converter}
assert set(IMPLEMENTATIONS) == set(TOOLS), "every registered tool has exactly one implementation"


def value(name: str, argument: str) -> Fraction:
    """The tool's exact result."""
    if name not in IMPLEMENTATIONS:
        raise LedgerError(errors.AGENT_UNKNOWN_TOOL, repr(name))
    return IMPLEMENTATIONS[name](argument)


def call(name: str, argument: str) -> str:
    """The tool's result as the text a model reads."""
    return show(value(name, argument))


def exact_text(v: Fraction) -> str:
    """An exact number as text: an integer, or NUM/DEN (what an output's `answer` carries)."""
    return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
