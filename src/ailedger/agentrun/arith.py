"""Exact arithmetic over rationals, for the calculator tool and the arithmetic checker.

Why a small evaluator over the AST and not `eval`: the input comes from strangers (task posters and
agents); only number literals, + - * / // % **, unary signs and parentheses are allowed, exponents are
small integers, and every value is a `Fraction`, so the same expression gives the same value on every
machine (no float rounding differences between verifiers).
"""

from __future__ import annotations

import ast
from fractions import Fraction

from ailedger.core import errors
from ailedger.core.errors import LedgerError

MAX_EXPRESSION = 1_000
MAX_EXPONENT = 64
MAX_DIGITS = 10_000


def _fail(detail: str) -> LedgerError:
    return LedgerError(errors.AGENT_TOOL_FAILED, detail)


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression, or `agent_tool_failed`."""
    if len(expression) > MAX_EXPRESSION:
        raise _fail(f"expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.replace("^", "**").replace("×", "*").replace("÷", "/"), mode="eval")
    except SyntaxError as exc:
        raise _fail(f"not an arithmetic expression: {expression!r}") from exc
    return _value(tree.body)


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))  # the decimal as written, not its binary float
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _value(node.left), _value(node.right)
        return _bounded(_binary(node.op, a, b))
    raise _fail(f"unsupported element {type(node).__name__}")


def _binary(op: ast.operator, a: Fraction, b: Fraction) -> Fraction:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return _bounded(a * b)
    if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod):
        if b == 0:
            raise _fail("division by zero")
        if isinstance(op, ast.Div):
            return a / b
        return Fraction(a // b) if isinstance(op, ast.FloorDiv) else a % b
    if isinstance(op, ast.Pow):
        if b.denominator != 1 or abs(b.numerator) > MAX_EXPONENT:
            raise _fail(f"exponents are integers within ±{MAX_EXPONENT}")
        if a == 0 and b < 0:
            raise _fail("division by zero")
        return _bounded(a ** int(b))
    raise _fail(f"unsupported operator {type(op).__name__}")


def _bounded(v: Fraction) -> Fraction:
    if max(len(str(abs(v.numerator))), len(str(v.denominator))) > MAX_DIGITS:
        raise _fail(f"a value has more than {MAX_DIGITS} digits")
    return v


def as_number(v: Fraction) -> int | float:
    """A JSON-friendly form: an int when whole, else the nearest float."""
    return int(v) if v.denominator == 1 else float(v)


def parse_number(value: object) -> Fraction:
    """An answer as a rational: a JSON number, or a string holding one (`"14"`, `"3.5"`, `"7/2"`)."""
    if isinstance(value, bool):
        raise _fail("a boolean is not a number")
    if isinstance(value, int | float):
        return Fraction(str(value))
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            return Fraction(text)
        except (ValueError, ZeroDivisionError) as exc:
            raise _fail(f"not a number: {value!r}") from exc
    raise _fail(f"not a number: {value!r}")


def close(answer: Fraction, expected: Fraction, tolerance: Fraction) -> bool:
    """|answer - expected| <= tolerance * max(1, |expected|) (relative, with an absolute floor at 1)."""
    return abs(answer - expected) <= tolerance * max(Fraction(1), abs(expected))
