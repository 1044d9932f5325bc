"""Unit conversion for the unit converter tool and the unit_conversion checker.

Every unit is (dimension, factor to the dimension's base unit, offset) with exact rational factors, so a
conversion is exact: value_in_base = (value + offset) * factor. Only temperature has an offset.
"""

from __future__ import annotations

from fractions import Fraction as F

from ailedger.core import errors
from ailedger.core.errors import LedgerError

# unit -> (dimension, factor to base, offset added before scaling)
UNITS: dict[str, tuple[str, F, F]] = {
    # length, base metre
    "mm": ("length", F(1, 1000), F(0)), "cm": ("length", F(1, 100), F(0)), "m": ("length", F(1), F(0)),
    "km": ("length", F(1000), F(0)), "in": ("length", F(254, 10_000), F(0)), "ft": ("length", F(3048, 10_000), F(0)),
    "yd": ("length", F(9144, 10_000), F(0)), "mi": ("length", F(1_609_344, 1000), F(0)),
    # mass, base kilogram
    "mg": ("mass", F(1, 1_000_000), F(0)), "g": ("mass", F(1, 1000), F(0)), "kg": ("mass", F(1), F(0)),
    "t": ("mass", F(1000), F(0)), "oz": ("mass", F(28_349_523_125, 10**12), F(0)),
    "lb": ("mass", F(45_359_237, 10**8), F(0)),
    # time, base second
    "ms": ("time", F(1, 1000), F(0)), "s": ("time", F(1), F(0)), "min": ("time", F(60), F(0)),
    "h": ("time", F(3600), F(0)), "day": ("time", F(86_400), F(0)), "week": ("time", F(604_800), F(0)),
    # volume, base litre
    "ml": ("volume", F(1, 1000), F(0)), "l": ("volume", F(1), F(0)), "m3": ("volume", F(1000), F(0)),
    "gal": ("volume", F(3_785_411_784, 10**9), F(0)), "cup": ("volume", F(2_365_882_365, 10**10), F(0)),
    # temperature, base kelvin
    "k": ("temperature", F(1), F(0)), "c": ("temperature", F(1), F(27_315, 100)),
    "f": ("temperature", F(5, 9), F(45_967, 100)),
    # data, base byte
    "b": ("data", F(1), F(0)), "kb": ("data", F(1000), F(0)), "mb": ("data", F(10**6), F(0)),
    "gb": ("data", F(10**9), F(0)), "kib": ("data", F(1024), F(0)), "mib": ("data", F(1024**2), F(0)),
    "gib": ("data", F(1024**3), F(0)),
}
ALIASES = {"celsius": "c", "fahrenheit": "f", "kelvin": "k", "°c": "c", "°f": "f", "metre": "m", "meter": "m",
           "metres": "m", "meters": "m", "kilometres": "km", "kilometers": "km", "miles": "mi", "mile": "mi",
           "feet": "ft", "foot": "ft", "inches": "in", "inch": "in", "pounds": "lb", "pound": "lb", "lbs": "lb",
           "kilograms": "kg", "grams": "g", "hours": "h", "hour": "h", "minutes": "min", "seconds": "s",
           "litres": "l", "liters": "l", "litre": "l", "liter": "l", "gallons": "gal", "days": "day"}


def unit(name: str) -> tuple[str, F, F]:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in UNITS:
        raise LedgerError(errors.AGENT_TOOL_FAILED, f"unknown unit {name!r}")
    return UNITS[key]


def convert(value: F, source: str, target: str) -> F:
    """`value` in `source` units expressed in `target` units, exactly."""
    dim_a, factor_a, offset_a = unit(source)
    dim_b, factor_b, offset_b = unit(target)
    if dim_a != dim_b:
        raise LedgerError(errors.AGENT_TOOL_FAILED, f"{source} is {dim_a}, {target} is {dim_b}")
    return (value + offset_a) * factor_a / factor_b - offset_b
