"""Datanet state: typed records, their canonical codecs, and the keys they live under.

Layout (every key under `dn/`; a name is [a-z0-9-], so it never contains the '/' that ends it):
  dn/n                          -> u64 number of Datanets
  dn/names/<u64 i>              -> name of the i-th Datanet created (for listing)
  dn/meta/<name>                -> Config: written once by create_datanet
  dn/count/<name>               -> Counters: records by status, versions, contributors
  dn/gk/<name>                  -> gatekeeper addresses, 20 bytes each, in order added
  dn/val/<name>                 -> validator addresses, 20 bytes each, in order registered
  dn/pool/<name>                -> u64 validator pool (stakes of gate-rejected records, unclaimed payouts)
  dn/rec/<name>/<b32 hash>      -> RecordState (status, contributor, escrowed stake, window, votes)
  dn/contrib/<name>/<b20 addr>  -> ContributorStats;  dn/cidx/<name>/<u64 i> -> i-th contributor's address
  dn/acc/<name>/<u64 seq>       -> b32 hash of the seq-th accepted record (acceptance order)
  dn/tree/<name>                -> Merkle frontier over the accepted hashes (datanet/frontier.py)
  dn/ver/<name>/<u64 n>         -> Version n (from 1): root, count, height
  dn/due/<u64 height>           -> groups (u8 len | name | u32 n | n x b32) of records whose window ends there
  dn/ret/<name>/<b32 hash>      -> Retraction (height, by, reason) of a retracted record
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.core.address import encode_address
from ailedger.core.encoding import AMOUNT, B20, B32, U8, U16, U32, U64, ListOf, Record, Text

MAX_NAME = 64
MAX_TOPIC = 200
MAX_DESCRIPTION = 2_000
MAX_LICENCE = 64
MAX_VOTES_CODEC = 1_000  # upper bound of the datanet_max_votes_per_record parameter

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


class Status:
    """A record's status (plain ints: the codec writes exact ints, not enum members)."""

    PENDING = 0
    ACCEPTED = 1
    REJECTED = 2
    GATE_REJECTED = 3
    EXPIRED = 4
    RETRACTED = 5  # was accepted; taken out of paid use by its contributor or the Datanet's owner


STATUS_NAMES = {0: "pending", 1: "accepted", 2: "rejected", 3: "gate_rejected", 4: "expired", 5: "retracted"}


@dataclass(frozen=True)
class FeeSplit:
    """Basis points of every fee earned through this Datanet's models; they sum to 10,000."""

    data: int
    model_owner: int
    compute: int
    validators: int

    def total(self) -> int:
        return self.data + self.model_owner + self.compute + self.validators


FEE_SPLIT = Record(FeeSplit, {"data": U16, "model_owner": U16, "compute": U16, "validators": U16})


@dataclass(frozen=True)
class Config:
    name: str
    owner: bytes
    topic: str
    description: str
    schema_hash: bytes  # sha256 of the JSON schema blob kept off the ledger; 32 zero bytes = no schema
    licence: str
    stake_per_record: int
    quorum: int
    window_blocks: int
    split: FeeSplit
    neardup_threshold_bps: int
    pii_policy: int  # 0 reject, 1 redact
    created_height: int

    def to_json(self) -> dict[str, Any]:
        s = self.split
        return {"name": self.name, "owner": encode_address(self.owner), "topic": self.topic,
                "description": self.description, "schema_hash": self.schema_hash.hex(), "licence": self.licence,
                "stake_per_record": self.stake_per_record, "quorum": self.quorum, "window_blocks": self.window_blocks,
                "fee_split_bps": {"data": s.data, "model_owner": s.model_owner, "compute": s.compute,
                                  "validators": s.validators},
                "neardup_threshold_bps": self.neardup_threshold_bps,
                "pii_policy": "redact" if self.pii_policy == 1 else "reject", "created_height": self.created_height}


CONFIG = Record(Config, {
    "name": Text(MAX_NAME), "owner": B20, "topic": Text(MAX_TOPIC), "description": Text(MAX_DESCRIPTION),
    "schema_hash": B32, "licence": Text(MAX_LICENCE), "stake_per_record": AMOUNT, "quorum": U16,
    "window_blocks": U32, "split": FEE_SPLIT, "neardup_threshold_bps": U16, "pii_policy": U8, "created_height": U64,
})


@dataclass
class Counters:
    pending: int = 0
    accepted: int = 0  # every record ever accepted (the accepted list's length), retracted ones included
    rejected: int = 0
    gate_rejected: int = 0
    expired: int = 0
    versions: int = 0
    contributors: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


COUNTERS = Record(Counters, {f: U64 for f in Counters.__dataclass_fields__})


@dataclass(frozen=True)
class Vote:
    voter: bytes
    accept: int  # 1 accept, 0 reject
    weight: int  # bonded stake x validator reputation (bps) / 10,000, fixed when the vote is cast


VOTE = Record(Vote, {"voter": B20, "accept": U8, "weight": AMOUNT})


@dataclass
class RecordState:
    status: int
    contributor: bytes
    stake: int  # escrowed while pending; kept afterwards as the amount that was at stake
    submitted: int
    window_end: int
    gate: int = 0  # gate id and reason code when gate-rejected
    reason: int = 0
    finalised: int = 0  # height at which it left `pending`
    seq: int = 0  # acceptance order, meaningful when accepted
    votes: list[Vote] = field(default_factory=list)


RECORD = Record(RecordState, {
    "status": U8, "contributor": B20, "stake": AMOUNT, "submitted": U64, "window_end": U64, "gate": U8,
    "reason": U16, "finalised": U64, "seq": U64, "votes": ListOf(VOTE, MAX_VOTES_CODEC),
})


@dataclass
class ContributorStats:
    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    gate_rejected: int = 0
    expired: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


CONTRIBUTOR = Record(ContributorStats, {f: U64 for f in ContributorStats.__dataclass_fields__})


@dataclass(frozen=True)
class Version:
    number: int
    root: bytes
    count: int
    height: int

    def to_json(self) -> dict[str, Any]:
        return {"version": self.number, "root": self.root.hex(), "count": self.count, "height": self.height}


VERSION = Record(Version, {"number": U32, "root": B32, "count": U64, "height": U64})


# -- keys -----------------------------------------------------------------------------------------

COUNT_KEY = b"dn/n"


def _k(kind: str, name: str, tail: bytes = b"") -> bytes:
    return b"dn/" + kind.encode() + b"/" + name.encode() + (b"/" + tail if tail else b"")


def name_index_key(i: int) -> bytes:
    return b"dn/names/" + _U64.pack(i)


def meta_key(name: str) -> bytes:
    return _k("meta", name)


def counters_key(name: str) -> bytes:
    return _k("count", name)


def gatekeepers_key(name: str) -> bytes:
    return _k("gk", name)


def validators_key(name: str) -> bytes:
    return _k("val", name)


def pool_key(name: str) -> bytes:
    return _k("pool", name)


def record_key(name: str, record_hash: bytes) -> bytes:
    return _k("rec", name, record_hash)


def contributor_key(name: str, address: bytes) -> bytes:
    return _k("contrib", name, address)


def contributor_index_key(name: str, i: int) -> bytes:
    return _k("cidx", name, _U64.pack(i))


def accepted_key(name: str, seq: int) -> bytes:
    return _k("acc", name, _U64.pack(seq))


def tree_key(name: str) -> bytes:
    return _k("tree", name)


def version_key(name: str, n: int) -> bytes:
    return _k("ver", name, _U64.pack(n))


def due_key(height: int) -> bytes:
    return b"dn/due/" + _U64.pack(height)


def retraction_key(name: str, record_hash: bytes) -> bytes:
    return _k("ret", name, record_hash)


@dataclass(frozen=True)
class Retraction:
    """When and by whom an accepted record was retracted, and why (payloads.RETRACT_REASONS)."""

    height: int
    by: bytes
    reason: int


RETRACTION = Record(Retraction, {"height": U64, "by": B20, "reason": U8})


def get_retraction(state: Reader, name: str, record_hash: bytes) -> Retraction | None:
    raw = state.get(retraction_key(name, record_hash))
    return None if raw is None else RETRACTION.decode(raw)


def put_retraction(state: Journal, name: str, record_hash: bytes, r: Retraction) -> None:
    state.set(retraction_key(name, record_hash), RETRACTION.encode(r))


# -- typed get/put --------------------------------------------------------------------------------

def get_config(state: Reader, name: str) -> Config | None:
    raw = state.get(meta_key(name))
    return CONFIG.decode(raw) if raw else None


def get_counters(state: Reader, name: str) -> Counters:
    raw = state.get(counters_key(name))
    return COUNTERS.decode(raw) if raw else Counters()


def put_counters(state: Journal, name: str, c: Counters) -> None:
    state.set(counters_key(name), COUNTERS.encode(c))


def get_record_state(state: Reader, name: str, record_hash: bytes) -> RecordState | None:
    raw = state.get(record_key(name, record_hash))
    return RECORD.decode(raw) if raw else None


def put_record_state(state: Journal, name: str, record_hash: bytes, r: RecordState) -> None:
    state.set(record_key(name, record_hash), RECORD.encode(r))


def addresses(state: Reader, key: bytes) -> list[bytes]:
    raw = state.get(key) or b""
    return [raw[i:i + 20] for i in range(0, len(raw), 20)]


def get_amount(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def put_amount(state: Journal, key: bytes, amount: int) -> None:
    state.set(key, _U64.pack(amount))


def get_contributor(state: Reader, name: str, address: bytes) -> ContributorStats | None:
    raw = state.get(contributor_key(name, address))
    return CONTRIBUTOR.decode(raw) if raw else None


def put_contributor(state: Journal, name: str, address: bytes, s: ContributorStats) -> None:
    state.set(contributor_key(name, address), CONTRIBUTOR.encode(s))


# -- the due queue ----------------------------------------------------------------------------------

def append_due(state: Journal, height: int, name: str, hashes: list[bytes]) -> None:
    """Queue `hashes` of Datanet `name` for finalisation at the end of block `height`."""
    raw = name.encode()
    group = bytes([len(raw)]) + raw + _U32.pack(len(hashes)) + b"".join(hashes)
    key = due_key(height)
    state.set(key, (state.get(key) or b"") + group)


def due_groups(state: Reader, height: int) -> Iterator[tuple[str, list[bytes]]]:
    """The (name, record hashes) groups due at `height`, in the order they were queued."""
    raw = state.get(due_key(height)) or b""
    pos = 0
    while pos < len(raw):
        n = raw[pos]
        name = raw[pos + 1:pos + 1 + n].decode()
        pos += 1 + n
        (count,) = _U32.unpack_from(raw, pos)
        pos += 4
        yield name, [raw[pos + 32 * i:pos + 32 * (i + 1)] for i in range(count)]
        pos += 32 * count
