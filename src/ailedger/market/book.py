"""The market's state: providers, orders, bids, leases and spot checks, their codecs and their keys.

Layout (every key under `mkt/`; u64 numbers big-endian, so a prefix scan reads them in order):
  mkt/p/<b20 addr>                 -> Provider (bond, operator, offer, counts of active leases and checks)
  mkt/pn, mkt/pi/<u64 i>           -> number of providers; the i-th provider's address (verifier draws)
  mkt/on, mkt/o/<u64 id>           -> number of orders; Order (ids are 1, 2, 3... in posting order)
  mkt/b/<u64 order><b20 addr>      -> the provider's bid (u64 price) in the order's current window
  mkt/bl/<u64 order>               -> the bidders of the current window (20 bytes each, in bid order)
  mkt/ln, mkt/l/<u64 id>           -> number of leases; Lease
  mkt/cn, mkt/c/<u64 id>           -> number of checks; Check
  mkt/cs/<u64 id>                  -> the block seed the check was drawn with (training checks pick segments by it)
  mkt/tr/<u64 lease><b32 digest>   -> TrainRoot: the Merkle root, boundaries and manifest a report_training named
  mkt/q/<tag><u64 height>          -> ids (u64 each) end_block looks at in that block: tag w (order bid
                                      windows), e (lease ends), t (report timeouts), r (leases that reported,
                                      sampled for checks one block later), c (check deadlines)
  mkt/cap/<class>/<b20 operator>   -> u64 units of active leased capacity the operator holds in the class
  mkt/ct/<class>                   -> u64 units of active leased capacity in the class
  mkt/ops/<class>                  -> operators that ever held capacity in the class (20 bytes each)
  mkt/ch/<class>                   -> the distinct scheduled end heights of the class's active leases
                                      (u64 each, ascending; what the cap's look-ahead walks)
  mkt/ce/<class>/<u64 end>         -> u64 units of the class's active leases scheduled to end at `end`
  mkt/co/<class>/<u64 end><b20 op> -> the same, of one operator
  mkt/classes                      -> every class that ever had a lease (names joined by "\\n")
  mkt/dirty                        -> classes whose capacity changed in this block (cleared at end_block)
  mkt/st/<class>/<u64 height>      -> Stat: the class's concentration after the block, written at each
                                      height where its capacity changed (a plot carries the last row forward)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ailedger.chain.params import Reader
from ailedger.chain.queue import append_item, items
from ailedger.chain.state import Journal
from ailedger.core import errors
from ailedger.core.address import encode_address
from ailedger.core.encoding import AMOUNT, B20, B32, U8, U16, U32, U64, Record, Text
from ailedger.core.errors import LedgerError
from ailedger.market.payloads import UNIT_NAMES
from ailedger.market.resources import RESOURCES, Resources
from ailedger.market.state import KIND_NAMES

_U64 = struct.Struct(">Q")
NO_RESOURCES = Resources(0, 0, "", 0, "")


class OrderStatus:
    BIDDING = 0
    LEASED = 1
    DONE = 2  # its lease ran to the end or the consumer closed it; the rest of the escrow went back
    EXPIRED = 3  # a window closed without a valid bid; the escrow went back
    CANCELLED = 4


ORDER_STATUS = {0: "bidding", 1: "leased", 2: "done", 3: "expired", 4: "cancelled"}


class LeaseStatus:
    ACTIVE = 0
    ENDED = 1  # ran its duration
    CLOSED = 2  # closed by the consumer
    TIMED_OUT = 3  # the provider stopped reporting: slashed, order reopened
    FAILED_CHECK = 4  # a spot check failed: slashed, order reopened


LEASE_STATUS = {0: "active", 1: "ended", 2: "closed", 3: "timed_out", 4: "failed_check"}


class CheckStatus:
    PENDING = 0
    PASSED = 1
    FAILED = 2
    MISSED = 3  # the verifier did not answer in time


CHECK_STATUS = {0: "pending", 1: "passed", 2: "failed", 3: "missed"}


@dataclass
class Provider:
    address: bytes
    operator: bytes
    bond: int
    registered: int
    active_leases: int = 0
    pending_checks: int = 0  # pending spot checks it must answer or that check its own reports
    has_offer: int = 0
    offer: Resources = NO_RESOURCES
    price_per_block: int = 0
    price_per_ktokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"address": encode_address(self.address), "operator": encode_address(self.operator),
                "bond": self.bond, "registered": self.registered, "active_leases": self.active_leases,
                "pending_checks": self.pending_checks,
                "offer": {**self.offer.to_json(), "price_per_block": self.price_per_block,
                          "price_per_ktokens": self.price_per_ktokens} if self.has_offer else None}


@dataclass
class Order:
    id: int
    consumer: bytes
    kind: int
    spec_hash: bytes
    needs: Resources
    unit: int
    max_price: int
    escrow: int  # what the order holds now
    window_blocks: int
    window_end: int  # bids are taken up to and including this height
    duration: int  # blocks the next lease runs (the rest of the original duration after a reopen)
    status: int
    created: int
    lease: int = 0  # the current or last lease
    reopened: int = 0
    model: str = ""  # serving: the exact adapter version (`NAME@N`) or base name to serve; "": any base

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "consumer": encode_address(self.consumer), "kind": KIND_NAMES.get(self.kind),
                "spec_hash": self.spec_hash.hex(), "needs": self.needs.to_json(), "unit": UNIT_NAMES[self.unit],
                "max_price": self.max_price, "escrow": self.escrow, "window_end": self.window_end,
                "duration": self.duration, "status": ORDER_STATUS[self.status], "created": self.created,
                "lease": self.lease or None, "reopened": self.reopened,
                "model": self.model or None}


@dataclass
class Lease:
    id: int
    order: int
    provider: bytes
    consumer: bytes
    operator: bytes
    cls: str
    units: int
    unit: int
    price: int
    start: int
    end: int
    last_report: int  # height of the last work report (start until the first)
    paid_through: int  # per-block leases: blocks up to this height are paid out
    tokens: int  # per-token leases: tokens reported in all
    paid: int  # paid out to the provider so far
    reports: int
    digest: bytes  # the last reported work digest
    status: int = LeaseStatus.ACTIVE
    closed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "order": self.order, "provider": encode_address(self.provider),
                "consumer": encode_address(self.consumer), "operator": encode_address(self.operator),
                "class": self.cls, "units": self.units, "unit": UNIT_NAMES[self.unit], "price": self.price,
                "start": self.start, "end": self.end, "last_report": self.last_report, "tokens": self.tokens,
                "paid": self.paid, "reports": self.reports, "digest": self.digest.hex(),
                "status": LEASE_STATUS[self.status], "closed": self.closed or None}


@dataclass
class Check:
    id: int
    lease: int
    provider: bytes
    verifier: bytes
    digest: bytes  # the work digest under check
    report: int  # which report of the lease (1-based)
    created: int
    deadline: int
    status: int = CheckStatus.PENDING
    answer: bytes = bytes(32)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "lease": self.lease, "provider": encode_address(self.provider),
                "verifier": encode_address(self.verifier), "digest": self.digest.hex(), "report": self.report,
                "created": self.created, "deadline": self.deadline, "status": CHECK_STATUS[self.status],
                "answer": self.answer.hex() if any(self.answer) else None}


@dataclass(frozen=True)
class Stat:
    height: int
    top_share_bps: int
    hhi: int  # sum of squared shares in basis points (0..10,000)
    total_units: int
    operators: int
    top_operator: bytes

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "top_share_bps": self.top_share_bps, "hhi": self.hhi,
                "total_units": self.total_units, "operators": self.operators,
                "top_operator": encode_address(self.top_operator) if any(self.top_operator) else None}


PROVIDER = Record(Provider, {"address": B20, "operator": B20, "bond": AMOUNT, "registered": U64,
                             "active_leases": U32, "pending_checks": U32, "has_offer": U8, "offer": RESOURCES,
                             "price_per_block": AMOUNT, "price_per_ktokens": AMOUNT})
ORDER = Record(Order, {"id": U64, "consumer": B20, "kind": U8, "spec_hash": B32, "needs": RESOURCES, "unit": U8,
                       "max_price": AMOUNT, "escrow": AMOUNT, "window_blocks": U32, "window_end": U64,
                       "duration": U32, "status": U8, "created": U64, "lease": U64, "reopened": U16,
                       "model": Text(128)})
LEASE = Record(Lease, {"id": U64, "order": U64, "provider": B20, "consumer": B20, "operator": B20, "cls": Text(32),
                       "units": U32, "unit": U8, "price": AMOUNT, "start": U64, "end": U64, "last_report": U64,
                       "paid_through": U64, "tokens": U64, "paid": AMOUNT, "reports": U32, "digest": B32,
                       "status": U8, "closed": U64})
CHECK = Record(Check, {"id": U64, "lease": U64, "provider": B20, "verifier": B20, "digest": B32, "report": U32,
                       "created": U64, "deadline": U64, "status": U8, "answer": B32})
STAT = Record(Stat, {"height": U64, "top_share_bps": U32, "hhi": U32, "total_units": U64, "operators": U32,
                     "top_operator": B20})


def u64(n: int) -> bytes:
    return _U64.pack(n)


# -- counters and records ---------------------------------------------------------------------------

def count(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def next_id(state: Journal, key: bytes) -> int:
    n = count(state, key) + 1
    state.set(key, u64(n))
    return n


def get_provider(state: Reader, address: bytes) -> Provider | None:
    raw = state.get(b"mkt/p/" + address)
    return PROVIDER.decode(raw) if raw else None


def put_provider(state: Journal, p: Provider) -> None:
    state.set(b"mkt/p/" + p.address, PROVIDER.encode(p))


def add_provider(state: Journal, p: Provider) -> None:
    n = count(state, b"mkt/pn")
    state.set(b"mkt/pi/" + u64(n), p.address)
    state.set(b"mkt/pn", u64(n + 1))
    put_provider(state, p)


def provider_at(state: Reader, i: int) -> bytes:
    return state.get(b"mkt/pi/" + u64(i)) or bytes(20)


def get_order(state: Reader, oid: int) -> Order | None:
    raw = state.get(b"mkt/o/" + u64(oid))
    return ORDER.decode(raw) if raw else None


def put_order(state: Journal, o: Order) -> None:
    state.set(b"mkt/o/" + u64(o.id), ORDER.encode(o))


def get_lease(state: Reader, lid: int) -> Lease | None:
    raw = state.get(b"mkt/l/" + u64(lid))
    return LEASE.decode(raw) if raw else None


def put_lease(state: Journal, lease: Lease) -> None:
    state.set(b"mkt/l/" + u64(lease.id), LEASE.encode(lease))


def get_check(state: Reader, cid: int) -> Check | None:
    raw = state.get(b"mkt/c/" + u64(cid))
    return CHECK.decode(raw) if raw else None


def put_check(state: Journal, c: Check) -> None:
    state.set(b"mkt/c/" + u64(c.id), CHECK.encode(c))


def put_check_seed(state: Journal, cid: int, seed: bytes) -> None:
    state.set(b"mkt/cs/" + u64(cid), seed)


def check_seed(state: Reader, cid: int) -> bytes | None:
    return state.get(b"mkt/cs/" + u64(cid))


def _train_root_key(lid: int, digest: bytes) -> bytes:
    return b"mkt/tr/" + u64(lid) + digest


@dataclass(frozen=True)
class TrainRoot:
    """What a report_training committed to beside its digest."""

    root: bytes
    boundaries: int
    manifest: bytes


TRAIN_ROOT = Record(TrainRoot, {"root": B32, "boundaries": U32, "manifest": B32})


def put_train_root(state: Journal, lid: int, digest: bytes, committed: TrainRoot) -> None:
    state.set(_train_root_key(lid, digest), TRAIN_ROOT.encode(committed))


def train_root(state: Reader, lid: int, digest: bytes) -> TrainRoot | None:
    """What a training report of lease `lid` committed to with `digest`; None when it came by report_work."""
    raw = state.get(_train_root_key(lid, digest))
    return TRAIN_ROOT.decode(raw) if raw else None


# -- bids -------------------------------------------------------------------------------------------

def bid_key(oid: int, address: bytes) -> bytes:
    return b"mkt/b/" + u64(oid) + address


def bidders(state: Reader, oid: int) -> list[bytes]:
    return items(state, b"mkt/bl/" + u64(oid), 20)


def add_bid(state: Journal, oid: int, address: bytes, price: int) -> None:
    state.set(bid_key(oid, address), u64(price))
    append_item(state, b"mkt/bl/" + u64(oid), address)


def take_bids(state: Journal, oid: int) -> list[tuple[bytes, int]]:
    """The window's bids (address, price), removed from state: a window's bids are read once, at its close."""
    out = []
    for address in bidders(state, oid):
        out.append((address, int(_U64.unpack(state.get(bid_key(oid, address)) or u64(0))[0])))
        state.delete(bid_key(oid, address))
    state.delete(b"mkt/bl/" + u64(oid))
    return out


# -- per-height queues ------------------------------------------------------------------------------

def queue_key(tag: bytes, height: int) -> bytes:
    return b"mkt/q/" + tag + u64(height)


def enqueue(state: Journal, tag: bytes, height: int, ident: int) -> None:
    append_item(state, queue_key(tag, height), u64(ident))


def dequeue(state: Journal, tag: bytes, height: int) -> list[int]:
    """The ids queued under `tag` for `height`, removed from state."""
    key = queue_key(tag, height)
    out = [int(_U64.unpack(x)[0]) for x in items(state, key, 8)]
    if out:
        state.delete(key)
    return out


def must_order(state: Reader, oid: int) -> Order:
    """An order a lease or queue names; its absence means the store is damaged, not a user error."""
    o = get_order(state, oid)
    if o is None:
        raise LedgerError(errors.STORE_CORRUPT, f"market order {oid} missing")
    return o
