"""Concentration of leased capacity: the per-operator cap that auctions obey, and the per-block record.

An operator's share of a resource class is its active leased units over max(total active leased units,
`market_share_floor_units`). Why the floor: in a thin market the first lease is 100% of everything, so
a cap on the plain share would refuse every first lease; measured against the floor, a market smaller
than the floor counts as that large.

The cap is checked over time, not only at the moment a lease opens (`allows`): a winning bid for a lease
running to its scheduled end E is valid only if the operator's share stays within
`market_max_operator_share_bps` now and after each scheduled end height h of the class's active leases with
now < h < E, counting the leases still scheduled to run after h plus the new one. Totals only drop at those
heights, so that is every block of the lease's life. By induction every operator stays within the cap at
every block as long as leases end on schedule; an early end (a timeout, a failed check, a consumer's close)
can still lift a share above it, and that operator then wins nothing in the class that would keep it there
(docs/market.md, "Concentration").

The schedule the check reads is kept beside the counters, by the same calls (`change`, when a lease opens
and however it ends): per class, the ascending distinct end heights of its active leases, and per (class,
end height) the units ending there, in all and per operator. The check costs O(log n) to find the first
end after now plus two reads per distinct end height before E.

HHI is the sum over operators of the squared share, in basis points of 10,000 (10,000 = one operator).
"""

from __future__ import annotations

import struct

from ailedger.chain import params
from ailedger.chain.params import Reader
from ailedger.chain.queue import append_item, items
from ailedger.chain.state import Journal
from ailedger.market.book import STAT, Stat, u64

_U64 = struct.Struct(">Q")
BPS = 10_000


def _int(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def operator_units(state: Reader, cls: str, operator: bytes) -> int:
    return _int(state, b"mkt/cap/" + cls.encode() + b"/" + operator)


def total_units(state: Reader, cls: str) -> int:
    return _int(state, b"mkt/ct/" + cls.encode())


def classes(state: Reader) -> list[str]:
    raw = state.get(b"mkt/classes")
    return raw.decode().split("\n") if raw else []


def operators(state: Reader, cls: str) -> list[bytes]:
    return items(state, b"mkt/ops/" + cls.encode(), 20)


def ends_key(cls: str) -> bytes:
    return b"mkt/ch/" + cls.encode()


def end_total_key(cls: str, end: int) -> bytes:
    return b"mkt/ce/" + cls.encode() + b"/" + u64(end)


def end_operator_key(cls: str, end: int, operator: bytes) -> bytes:
    return b"mkt/co/" + cls.encode() + b"/" + u64(end) + operator


def _first_after(raw: bytes, height: int) -> int:
    """Index of the first end height > `height` in the ascending u64 list `raw` (binary search)."""
    lo, hi = 0, len(raw) // 8
    while lo < hi:
        mid = (lo + hi) // 2
        if _U64.unpack_from(raw, mid * 8)[0] <= height:
            lo = mid + 1
        else:
            hi = mid
    return lo


def scheduled_ends(state: Reader, cls: str) -> list[int]:
    """The distinct scheduled end heights of the class's active leases, ascending."""
    raw = state.get(ends_key(cls)) or b""
    return [int(_U64.unpack_from(raw, i)[0]) for i in range(0, len(raw), 8)]


def ending_at(state: Reader, cls: str, end: int, operator: bytes | None = None) -> int:
    """Units of the class's active leases scheduled to end at `end` (of one operator, or of all)."""
    return _int(state, end_total_key(cls, end) if operator is None else end_operator_key(cls, end, operator))


def allows(state: Reader, cls: str, operator: bytes, units: int, height: int, end: int) -> bool:
    """Would the operator stay within the cap at every block from `height` until `end` after taking a lease
    of `units` that runs until `end`, if the class's active leases end on schedule?

    Now, and after each scheduled end height h (height < h < end), the operator's units still scheduled after
    h plus `units` must be at most cap x max(all units still scheduled after h plus `units`, floor). Between
    those heights neither count changes (other than by new leases, which only raise the total or are checked
    themselves), and from `end` on the new lease adds nothing."""
    cap = params.get(state, "market_max_operator_share_bps")
    floor = params.get(state, "market_share_floor_units")
    mine = operator_units(state, cls, operator) + units
    total = total_units(state, cls) + units
    if mine * BPS > cap * max(total, floor):
        return False
    raw = state.get(ends_key(cls)) or b""
    for i in range(_first_after(raw, height) * 8, len(raw), 8):
        h = int(_U64.unpack_from(raw, i)[0])
        if h >= end:
            break
        mine -= ending_at(state, cls, h, operator)
        total -= ending_at(state, cls, h)
        if mine * BPS > cap * max(total, floor):
            return False
    return True


def _add_end(state: Journal, cls: str, end: int) -> None:
    raw = state.get(ends_key(cls)) or b""
    i = _first_after(raw, end - 1) * 8
    if i < len(raw) and _U64.unpack_from(raw, i)[0] == end:
        return
    state.set(ends_key(cls), raw[:i] + u64(end) + raw[i:])


def _drop_end(state: Journal, cls: str, end: int) -> None:
    raw = state.get(ends_key(cls)) or b""
    i = _first_after(raw, end - 1) * 8
    if i < len(raw) and _U64.unpack_from(raw, i)[0] == end:
        rest = raw[:i] + raw[i + 8:]
        if rest:
            state.set(ends_key(cls), rest)
        else:
            state.delete(ends_key(cls))


def _bump(state: Journal, key: bytes, delta: int) -> int:
    n = _int(state, key) + delta
    if n:
        state.set(key, u64(n))
    else:
        state.delete(key)
    return n


def change(state: Journal, cls: str, operator: bytes, delta: int, end: int) -> None:
    """Add `delta` (negative when a lease ends, however it ends) to the operator's and the class's leased
    units, and to the schedule of units ending at the lease's scheduled end height `end`."""
    key = cls.encode()
    op_key = b"mkt/cap/" + key + b"/" + operator
    if state.get(op_key) is None:
        append_item(state, b"mkt/ops/" + key, operator)
        if cls not in classes(state):
            state.set(b"mkt/classes", "\n".join([*classes(state), cls]).encode())
    state.set(op_key, u64(operator_units(state, cls, operator) + delta))
    state.set(b"mkt/ct/" + key, u64(total_units(state, cls) + delta))
    if delta > 0:
        _add_end(state, cls, end)
    _bump(state, end_operator_key(cls, end, operator), delta)
    if not _bump(state, end_total_key(cls, end), delta):
        _drop_end(state, cls, end)
    dirty = state.get(b"mkt/dirty") or b""
    if key not in dirty.split(b"\n"):
        state.set(b"mkt/dirty", dirty + b"\n" + key if dirty else key)


def measure(state: Reader, cls: str, height: int) -> Stat:
    floor = params.get(state, "market_share_floor_units")
    total = total_units(state, cls)
    denom = max(total, floor, 1)
    top, top_op, hhi, n = 0, bytes(20), 0, 0
    for op in operators(state, cls):
        u = operator_units(state, cls, op)
        if not u:
            continue
        n += 1
        share = u * BPS // denom
        hhi += share * share // BPS
        if u > top or (u == top and op < top_op):
            top, top_op = u, op
    return Stat(height, top * BPS // denom, hhi, total, n, top_op)


def record(state: Journal, height: int) -> None:
    """Write this block's Stat for every class whose capacity changed in it (end_block)."""
    dirty = state.get(b"mkt/dirty")
    if not dirty:
        return
    for key in dirty.split(b"\n"):
        cls = key.decode()
        state.set(stat_key(cls, height), STAT.encode(measure(state, cls, height)))
    state.delete(b"mkt/dirty")


def stat_key(cls: str, height: int) -> bytes:
    return b"mkt/st/" + cls.encode() + b"/" + u64(height)
