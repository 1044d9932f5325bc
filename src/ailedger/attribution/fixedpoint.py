"""The one place a float attribution score becomes the integer that the shares rule takes.

Influence and span scores come out of floating-point work; shares (`shares.py`) are integers so that
anyone recomputes them bit for bit. The conversion is stated so that any language reproduces it:

    fixed(x) = 0                               if x <= 0 (a negative influence earns nothing)
             = round_half_even(x * 1e6)        otherwise, with `x * 1e6` one IEEE-754 binary64
                                               multiplication rounded to nearest, ties to even

A NaN or infinite score is an error, never a silent zero: it means the scorer broke. A float32 score
is widened to binary64 first (exactly). It lives apart from `shares.py` so that module stays free of
floats by construction (tests/test_invariants.py checks that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ailedger.core import errors
from ailedger.core.errors import LedgerError

SCALE = 1e6  # one unit of score is 10^-6; a binary64 product keeps 15-16 significant digits of it


def to_fixed(score: float) -> int:
    """One score, by the rule above."""
    x = float(score)
    if not math.isfinite(x):
        raise LedgerError(errors.BAD_ATTRIBUTION_SCORES, f"score {score!r} is not finite")
    return max(round(x * SCALE), 0)


def to_fixed_many(scores: Sequence[float] | npt.NDArray[Any]) -> list[int]:
    """Many scores at once, equal to `[to_fixed(s) for s in scores]` (the same binary64 operations)."""
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.isfinite(x).all():
        raise LedgerError(errors.BAD_ATTRIBUTION_SCORES, f"score {x[~np.isfinite(x)][0]!r} is not finite")
    return [int(v) for v in np.maximum(np.rint(x * SCALE), 0).tolist()]


def fixed_scores(scores: Mapping[bytes, float]) -> dict[bytes, int]:
    """Scores by record hash, converted; the input the shares rule takes."""
    return dict(zip(scores, to_fixed_many(list(scores.values())), strict=True))
