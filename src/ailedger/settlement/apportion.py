"""Largest-remainder apportioning of many amounts at once, in integers (NumPy, no floats).

The rule is the one `attribution/shares.py` writes down (docs/attribution.md, "Shares rule"),
restated here because settlement (layer 6) may not import attribution (layer 9): amount A of a group
whose members have weights w_i summing to W > 0 gives member i `floor(A * w_i / W)`; the micro-units
still missing (fewer than the members with a non-zero remainder) go one each to the members with the
largest remainders `(A * w_i) mod W`, equal remainders to the member that comes first (the caller
orders members by their key bytes: the fee split's parts in the order data, model owner, compute,
validators; a receipt's shares by record hash, as billing stores them). A group with W = 0 gives
nothing (the caller decides where its amount goes).

Why it cannot overflow in int64: A < 2^63 and 0 <= w_i <= W <= 10,000 (basis points). With
A = q * W + r (0 <= r < W), floor(A * w / W) = q * w + floor(r * w / W); q * w <= q * W <= A, and
r * w < W * W <= 10^8. The remainder is (r * w) mod W, the same as (A * w) mod W. Group sums are at
most the group's amount, and the caller checks that the sum of all amounts fits in int64 (else it
passes object arrays of Python ints, which the same code handles exactly, only slower).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


def group_sum(values: Array, group: Array, groups: int) -> Array:
    """Sum of `values` per group index (exact: integer np.add.at, never a float bincount)."""
    out = np.zeros(groups, dtype=values.dtype)
    np.add.at(out, group, values)
    return out


def apportion(amount: Array, total: Array, weight: Array, group: Array, pos: Array, width: int) -> Array:
    """Each member's part of its group's amount (rule above).

    amount, total: per group (total = the sum of its members' weights); weight, group, pos: per member,
    `pos` its place in the group's tie order (0 .. width-1, distinct within a group). Parts of a group
    sum to its amount when its total is positive, and are 0 when it is 0.
    """
    groups = len(amount)
    live = total > 0
    tot = np.where(live, total, 1)
    amt = np.where(live, amount, 0)
    t = tot[group]
    a = amt[group]
    q, r = a // t, a % t
    rw = r * weight
    parts: Array = q * weight + rw // t
    rem = rw % t
    left = amt - group_sum(parts, group, groups)
    if not np.any(left > 0):
        return parts
    # rank each member in its group by (remainder descending, pos ascending): a dense groups x width
    # matrix sorted row by row; cells no member fills sort last and are never reached, since fewer
    # micro-units are left than members with a non-zero remainder
    key = (t - rem) * width + pos  # t - rem > 0, smaller key = earlier
    big = int(np.max(key)) + 1 if len(key) else 1
    mat = np.full((groups, width), big, dtype=np.int64)
    mat[group, pos] = key
    order = np.argsort(mat, axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(width), order.shape), axis=1)
    bonus = rank[group, pos] < left[group]
    out: Array = parts + bonus.astype(parts.dtype)
    return out


def split_fee(charged: Array, bps: Array) -> Array:
    """charged (n,) into (n, 4) parts by each row's 4 basis-point weights summing to 10,000 (rule above)."""
    n = len(charged)
    group = np.repeat(np.arange(n), 4)
    pos = np.tile(np.arange(4), n)
    weight = bps.reshape(-1).astype(charged.dtype)
    total = np.full(n, 10_000, dtype=charged.dtype)
    out: Array = apportion(charged, total, weight, group, pos, 4).reshape(n, 4)
    return out
