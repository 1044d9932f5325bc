"""The vectorised largest remainder (settlement/apportion.py) against the obvious one (reference.py).

Random groups of amounts up to 2^63 - 1 and basis-point weights (zeros included): the NumPy result equals the
per-group Python result element for element, sums to each amount when any weight is positive, and the
object-dtype fallback (used when a block's amounts could overflow int64 sums) gives the same numbers.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.core.encoding import MAX_AMOUNT
from ailedger.settlement.apportion import apportion, split_fee
from ailedger.settlement.plan import amount_dtype
from ailedger.settlement.reference import largest_remainder

amounts = st.one_of(st.integers(0, 10**6), st.integers(0, MAX_AMOUNT), st.sampled_from([0, 1, 9_999, MAX_AMOUNT]))
group = st.tuples(amounts, st.lists(st.integers(0, 10_000), min_size=1, max_size=32))


@settings(max_examples=300, deadline=None)
@given(groups=st.lists(group, min_size=1, max_size=20), as_object=st.booleans())
def test_vectorised_equals_reference(groups: list[tuple[int, list[int]]], as_object: bool) -> None:
    groups = [(a, [w * 10_000 // max(1, sum(ws)) for w in ws]) for a, ws in groups]  # totals <= 10,000
    dtype = object if as_object else np.int64
    amount = np.array([a for a, _ in groups], dtype=dtype)
    weight = np.array([w for _, ws in groups for w in ws], dtype=dtype)
    gid = np.repeat(np.arange(len(groups)), [len(ws) for _, ws in groups])
    pos = np.concatenate([np.arange(len(ws)) for _, ws in groups])
    total = np.array([sum(ws) for _, ws in groups], dtype=dtype)
    got = apportion(amount, total, weight, gid, pos, max(len(ws) for _, ws in groups))
    want = [p for a, ws in groups for p in largest_remainder(a, ws)]
    assert [int(x) for x in got] == want
    for (a, ws), start in zip(groups, np.cumsum([0] + [len(ws) for _, ws in groups])[:-1], strict=True):
        assert sum(int(x) for x in got[start:start + len(ws)]) == (a if sum(ws) else 0)


def test_fee_split_worked_example() -> None:
    # 1,001 by 3,333 / 3,333 / 3,333 / 1: floors 333, 333, 333, 0 (999); remainders 6,333 x3 and 1,001:
    # the 2 left go to the first two parts (equal remainders: the earlier part first)
    parts = split_fee(np.array([1_001, MAX_AMOUNT]), np.array([[3_333, 3_333, 3_333, 1]] * 2))
    assert parts[0].tolist() == [334, 334, 333, 0]
    assert int(parts[1].sum()) == MAX_AMOUNT and parts[1].tolist() == largest_remainder(MAX_AMOUNT, [3_333] * 3 + [1])


def test_overflowing_blocks_fall_back_to_python_ints() -> None:
    assert amount_dtype(np.array([MAX_AMOUNT, 1])) is object
    assert amount_dtype(np.array([10**12] * 1_000)) is np.int64


def test_hash_tables_merge_exactly_even_when_prefixes_collide() -> None:
    from ailedger.settlement.batch import dedup_hashes

    a, b, c = b"\x01" * 32, b"\x01" * 8 + b"\x02" * 24, b"\x00" * 32  # a and b share their first 8 bytes
    for table in ([c, a, c, a], [a, b, a, c, b]):
        values, index = dedup_hashes(b"".join(table), 32)
        assert [values[i] for i in index.tolist()] == table and len(values) == len(set(table))


def test_dedup_dense_and_sorted_paths_agree() -> None:
    from ailedger.settlement.plan import DENSE_LIMIT, dedup

    keys = np.array([7, 3, 7, 0, 3, 9], dtype=np.int64)
    dense = dedup(keys, 10)
    wide = dedup(keys, DENSE_LIMIT + 1)
    assert dense[0].tolist() == wide[0].tolist() == [0, 3, 7, 9]
    assert dense[1].tolist() == wide[1].tolist() == [2, 1, 2, 0, 1, 3]
