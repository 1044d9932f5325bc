"""Read helpers over any state (committed State, an Overlay, or a store-backed reader) and their JSON.

Pure functions, no writes: the CLI, the HTTP API and the explorer read Datanets through these so
they all show the same thing. `height` arguments are the height the reader considers current (the
head), used for reputation decay and to find pending records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.chain.params import Reader
from ailedger.core.address import encode_address
from ailedger.datanet import frontier
from ailedger.datanet.state import (
    COUNT_KEY,
    STATUS_NAMES,
    VERSION,
    Config,
    ContributorStats,
    Counters,
    RecordState,
    Status,
    Version,
    accepted_key,
    addresses,
    contributor_index_key,
    due_groups,
    gatekeepers_key,
    get_amount,
    get_config,
    get_contributor,
    get_counters,
    get_record_state,
    name_index_key,
    pool_key,
    tree_key,
    validators_key,
    version_key,
)
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role


@dataclass(frozen=True)
class DatanetView:
    config: Config
    counters: Counters
    gatekeepers: list[bytes]
    validators: list[bytes]
    pool: int
    accepted_root: bytes  # root over every accepted hash so far (what the next snapshot would freeze)

    def to_json(self) -> dict[str, Any]:
        return {**self.config.to_json(), "counts": self.counters.to_json(),
                "gatekeepers": [encode_address(a) for a in self.gatekeepers],
                "validators": [encode_address(a) for a in self.validators], "pool": self.pool,
                "accepted_root": self.accepted_root.hex()}


@dataclass(frozen=True)
class RecordView:
    datanet: str
    hash: bytes
    state: RecordState

    def to_json(self) -> dict[str, Any]:
        r = self.state
        out: dict[str, Any] = {
            "datanet": self.datanet, "hash": self.hash.hex(), "status": STATUS_NAMES[r.status],
            "contributor": encode_address(r.contributor), "stake": r.stake, "submitted": r.submitted,
            "window_end": r.window_end, "finalised": r.finalised if r.status != Status.PENDING else None,
            "votes": [{"voter": encode_address(v.voter), "accept": bool(v.accept), "weight": v.weight}
                      for v in r.votes],
        }
        if r.status == Status.GATE_REJECTED:
            out["gate"] = {"gate": r.gate, "reason": r.reason}
        if r.status == Status.ACCEPTED:
            out["seq"] = r.seq
        return out


def list_datanets(state: Reader) -> list[str]:
    """Names in creation order."""
    return [(state.get(name_index_key(i)) or b"").decode() for i in range(get_amount(state, COUNT_KEY))]


def get_datanet(state: Reader, name: str) -> DatanetView | None:
    cfg = get_config(state, name)
    if cfg is None:
        return None
    counters = get_counters(state, name)
    return DatanetView(cfg, counters, gatekeepers(state, name), validators(state, name), pool(state, name),
                       frontier.root(state.get(tree_key(name)) or b"", counters.accepted))


def get_record(state: Reader, name: str, record_hash: bytes) -> RecordView | None:
    rec = get_record_state(state, name, record_hash)
    return RecordView(name, record_hash, rec) if rec is not None else None


def gatekeepers(state: Reader, name: str) -> list[bytes]:
    return addresses(state, gatekeepers_key(name))


def validators(state: Reader, name: str) -> list[bytes]:
    return addresses(state, validators_key(name))


def pool(state: Reader, name: str) -> int:
    return get_amount(state, pool_key(name))


def get_version(state: Reader, name: str, number: int) -> Version | None:
    raw = state.get(version_key(name, number))
    return VERSION.decode(raw) if raw else None


def list_versions(state: Reader, name: str) -> list[Version]:
    out = []
    for n in range(1, get_counters(state, name).versions + 1):
        v = get_version(state, name, n)
        if v is not None:
            out.append(v)
    return out


def accepted_hashes(state: Reader, name: str, start: int = 0, stop: int | None = None) -> list[bytes]:
    """Accepted record hashes in acceptance order; version v covers [0, v.count)."""
    end = get_counters(state, name).accepted if stop is None else stop
    return [state.get(accepted_key(name, i)) or b"" for i in range(start, end)]


def accepted_contributors(state: Reader, name: str, start: int, stop: int) -> list[tuple[bytes, bytes]]:
    """(record hash, contributor address) of accepted records [start, stop), in acceptance order.

    Why with the contributor: attribution pays contributors, not records, so whoever maps a snapshot's
    records to payees (an attribution bundle) needs both, a page at a time.
    """
    out = []
    for h in accepted_hashes(state, name, start, stop):
        rec = get_record_state(state, name, h)
        out.append((h, rec.contributor if rec is not None else bytes(20)))
    return out


def pending_records(state: Reader, name: str, height: int, limit: int = 1_000) -> list[RecordView]:
    """Records still open for votes after block `height`, soonest window end first.

    Found through the due queue: a pending record's window ends within (height, height + window_blocks].
    """
    cfg = get_config(state, name)
    if cfg is None:
        return []
    out: list[RecordView] = []
    for h in range(height + 1, height + cfg.window_blocks + 1):
        for group_name, hashes in due_groups(state, h):
            if group_name != name:
                continue
            for rh in hashes:
                rec = get_record_state(state, name, rh)
                if rec is not None and rec.status == Status.PENDING:
                    out.append(RecordView(name, rh, rec))
                    if len(out) >= limit:
                        return out
    return out


def contributors(state: Reader, name: str) -> list[tuple[bytes, ContributorStats]]:
    """Every contributor of the Datanet, in order of first contribution, with their counts."""
    out = []
    for i in range(get_counters(state, name).contributors):
        addr = state.get(contributor_index_key(name, i)) or b""
        out.append((addr, get_contributor(state, name, addr) or ContributorStats()))
    return out


def contributor_json(state: Reader, name: str, address: bytes, height: int) -> dict[str, Any]:
    """One contributor's counts in a Datanet with their contributor reputation at `height`."""
    stats = get_contributor(state, name, address) or ContributorStats()
    return {"address": encode_address(address), **stats.to_json(),
            "reputation_bps": reputation.score_bps(state, address, Role.CONTRIBUTOR, height)}

