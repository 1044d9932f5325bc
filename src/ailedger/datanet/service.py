"""Datanet and reputation reads as JSON, for the HTTP API and the embedded CLI alike.

Why here and not in the node: the chain layer must not know about Datanets, so the node only
offers its state, its lock and its head height, and this module turns them into the documents a
client reads. Every function below takes a state reader and the head height and returns plain
JSON; `DatanetReads` wraps a `Node` (lock held, committed state) so the API routes and the CLI's
embedded backend answer the same calls with the same bytes.

Paging: lists that grow with a Datanet (pending records, a version's hashes, all record hashes)
come in pages of at most `MAX_PAGE` entries with `offset`/`limit`; each answer says the
`next_offset` (None at the end). `known` answers "which of these hashes does the Datanet hold?"
for a chunk of hashes at once, against the pending state too, so a contributor who reruns a file
never stakes a record twice, even while its earlier transaction still waits for a block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from ailedger.chain import accounts
from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32
from ailedger.datanet import views
from ailedger.datanet.gates.verdict import describe, gate_name, reason_name
from ailedger.datanet.payloads import RETRACT_REASONS
from ailedger.datanet.state import STATUS_NAMES, Version, get_retraction, record_key
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role

MAX_PAGE = 10_000
MAX_PENDING_PAGE = 1_000
CONTRIBUTORS_SHOWN = 100
STATUSES = ("accepted", "pending", "any")

T = TypeVar("T")


class Scannable(Reader, Protocol):
    """A reader that can also list its keys (the committed `State`); needed to list every record hash."""

    def items(self) -> Iterator[tuple[bytes, bytes]]: ...


# -- inputs ---------------------------------------------------------------------------------------

def parse_record_hash(text: str) -> bytes:
    """A record hash as 64 hex digits (any case), else bad_record_hash."""
    return parse_hex32(text, errors.BAD_RECORD_HASH)


def _page(offset: int, limit: int, most: int) -> tuple[int, int]:
    if offset < 0 or not 1 <= limit <= most:
        raise LedgerError(errors.BAD_REQUEST, f"offset must be >= 0 and limit within 1..{most}")
    return offset, limit


def _next(offset: int, got: int, limit: int, total: int | None = None) -> int | None:
    end = offset + got
    if total is not None:
        return end if end < total else None
    return end if got == limit else None


def _view(state: Reader, name: str) -> views.DatanetView:
    found = views.get_datanet(state, name)
    if found is None:
        raise LedgerError(errors.DATANET_NOT_FOUND, repr(name))
    return found


# -- documents --------------------------------------------------------------------------------------

def record_doc(view: views.RecordView) -> dict[str, Any]:
    """A record's JSON, with its gate verdict spelt out when a gate rejected it."""
    doc = view.to_json()
    gate = doc.get("gate")
    if gate is not None:
        g, r = gate["gate"], gate["reason"]
        gate.update(gate_name=gate_name(g), reason_name=reason_name(g, r), message=describe(g, r))
    return doc


def datanets_json(state: Reader, height: int) -> dict[str, Any]:
    """Every Datanet (creation order) with its configuration and counts."""
    return {"height": height, "datanets": [_view(state, n).to_json() for n in views.list_datanets(state)]}


def datanet_json(state: Reader, height: int, name: str) -> dict[str, Any]:
    """One Datanet: configuration, counts, versions, contributors and validators with their reputation."""
    doc = _view(state, name).to_json()
    contributors = views.contributors(state, name)
    doc["versions"] = [v.to_json() for v in views.list_versions(state, name)]
    doc["contributors_total"] = len(contributors)
    doc["contributors"] = [views.contributor_json(state, name, addr, height)
                           for addr, _ in contributors[:CONTRIBUTORS_SHOWN]]
    doc["validator_details"] = [
        {"address": encode_address(a), "stake": _stake(state, a),
         "reputation_bps": reputation.score_bps(state, a, Role.VALIDATOR, height)}
        for a in views.validators(state, name)]
    doc["height"] = height
    return doc


def _stake(state: Reader, address: bytes) -> int:
    raw = state.get(accounts.account_key(address))
    return accounts.decode_account(raw).stake if raw else 0


def record_json(state: Reader, height: int, name: str, hash_hex: str) -> dict[str, Any]:
    _view(state, name)
    h = parse_record_hash(hash_hex)
    found = views.get_record(state, name, h)
    if found is None:
        raise LedgerError(errors.RECORD_NOT_FOUND, f"{hash_hex} in {name}")
    doc = {**record_doc(found), "height": height}
    retraction = get_retraction(state, name, h)
    if retraction is not None:
        doc["retracted"] = {"height": retraction.height, "by": encode_address(retraction.by),
                            "reason": RETRACT_REASONS.get(retraction.reason, str(retraction.reason))}
    return doc


def pending_json(state: Reader, height: int, name: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Records open for votes after block `height`, soonest window end first."""
    _view(state, name)
    offset, limit = _page(offset, limit, MAX_PENDING_PAGE)
    found = views.pending_records(state, name, height, offset + limit)[offset:]
    return {"datanet": name, "height": height, "offset": offset, "records": [record_doc(r) for r in found],
            "next_offset": _next(offset, len(found), limit)}


def version_json(state: Reader, height: int, name: str, number: int, offset: int = 0,
                 limit: int = MAX_PAGE) -> dict[str, Any]:
    """Version `number` and a page of the record hashes it covers, in acceptance order (for export)."""
    _view(state, name)
    offset, limit = _page(offset, limit, MAX_PAGE)
    v = _version(state, name, number)
    stop = min(v.count, offset + limit)
    hashes = views.accepted_hashes(state, name, offset, stop) if offset < stop else []
    return {"datanet": name, "height": height, **v.to_json(), "offset": offset, "hashes": [h.hex() for h in hashes],
            "next_offset": _next(offset, len(hashes), limit, v.count)}


def _version(state: Reader, name: str, number: int) -> Version:
    v = views.get_version(state, name, number) if 1 <= number < 1 << 32 else None
    if v is None:
        raise LedgerError(errors.VERSION_NOT_FOUND, f"{name} version {number}")
    return v


def version_contributors_json(state: Reader, height: int, name: str, number: int, offset: int = 0,
                              limit: int = MAX_PAGE) -> dict[str, Any]:
    """A page of version `number`'s records with who contributed each, in the version's order.

    An attribution bundle needs record hash -> contributor for the whole snapshot; `records` holds
    [record_hash_hex, contributor_address] pairs, and `next_offset` is null on the last page.
    """
    _view(state, name)
    offset, limit = _page(offset, limit, MAX_PAGE)
    v = _version(state, name, number)
    stop = min(v.count, offset + limit)
    pairs = views.accepted_contributors(state, name, offset, stop) if offset < stop else []
    return {"datanet": name, "version": number, "height": height, "offset": offset,
            "records": [[h.hex(), encode_address(a)] for h, a in pairs],
            "next_offset": _next(offset, len(pairs), limit, v.count)}


def hashes_json(state: Scannable, height: int, name: str, status: str = "accepted", offset: int = 0,
                limit: int = MAX_PAGE, all_hashes: Callable[[], list[bytes]] | None = None) -> dict[str, Any]:
    """A page of the Datanet's record hashes: accepted (acceptance order), pending, or any (byte order)."""
    view = _view(state, name)
    offset, limit = _page(offset, limit, MAX_PAGE)
    total: int | None = None
    if status == "accepted":
        total = view.counters.accepted
        page = views.accepted_hashes(state, name, offset, min(total, offset + limit)) if offset < total else []
    elif status == "pending":
        page = [r.hash for r in views.pending_records(state, name, height, offset + limit)[offset:]]
    elif status == "any":
        every = all_hashes() if all_hashes is not None else record_hashes(state, name)
        total = len(every)
        page = every[offset:offset + limit]
    else:
        raise LedgerError(errors.BAD_REQUEST, f"status {status!r}: use one of {', '.join(STATUSES)}")
    return {"datanet": name, "height": height, "status": status, "offset": offset,
            "hashes": [h.hex() for h in page], "next_offset": _next(offset, len(page), limit, total)}


def record_hashes(state: Scannable, name: str) -> list[bytes]:
    """Every record hash of the Datanet, whatever its status, in byte order (one scan of the state)."""
    prefix = record_key(name, bytes(32))[:-32]  # b"dn/rec/<name>/"
    return sorted(k[len(prefix):] for k, _ in state.items() if k.startswith(prefix) and len(k) == len(prefix) + 32)


def known_json(state: Reader, name: str, hashes_hex: Iterable[str]) -> dict[str, Any]:
    """Which of the given hashes the Datanet holds, with each one's status; the others are absent."""
    _view(state, name)
    items = list(hashes_hex)
    if len(items) > MAX_PAGE:
        raise LedgerError(errors.BAD_REQUEST, f"ask about at most {MAX_PAGE} hashes at once")
    known: dict[str, str] = {}
    for text in items:
        rec = views.get_record(state, name, parse_record_hash(text))
        if rec is not None:
            known[text.lower()] = STATUS_NAMES[rec.state.status]
    return {"datanet": name, "known": known}


def reputation_json(state: Reader, height: int, address: str) -> dict[str, Any]:
    return reputation.to_json(state, decode_address(address), height)


# -- over a node --------------------------------------------------------------------------------------

class DatanetReads:
    """The reads above over a node's committed state, under its lock (the producer may be sealing a block).

    `known` reads the mempool's overlay instead: hashes in a contribution that waits for a block
    already count as taken. The list of every record hash (`hashes?status=any`) costs a scan of the
    state, so the last one is kept until the next block.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self._any: tuple[str, int, list[bytes]] | None = None
        self._any_lock = threading.Lock()

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def datanets(self) -> dict[str, Any]:
        return self._read(datanets_json)

    def datanet(self, name: str) -> dict[str, Any]:
        return self._read(datanet_json, name)

    def record(self, name: str, hash_hex: str) -> dict[str, Any]:
        return self._read(record_json, name, hash_hex)

    def pending(self, name: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self._read(pending_json, name, limit, offset)

    def version(self, name: str, number: int, offset: int = 0, limit: int = MAX_PAGE) -> dict[str, Any]:
        return self._read(version_json, name, number, offset, limit)

    def version_contributors(self, name: str, number: int, offset: int = 0, limit: int = MAX_PAGE) -> dict[str, Any]:
        return self._read(version_contributors_json, name, number, offset, limit)

    def hashes(self, name: str, status: str = "accepted", offset: int = 0, limit: int = MAX_PAGE) -> dict[str, Any]:
        with self.node.lock:
            height = self.node.store.height()

            def every() -> list[bytes]:
                with self._any_lock:
                    if self._any is None or self._any[:2] != (name, height):
                        self._any = (name, height, record_hashes(self.node.state, name))
                    return self._any[2]

            return hashes_json(self.node.state, height, name, status, offset, limit, every)

    def known(self, name: str, hashes_hex: list[str]) -> dict[str, Any]:
        with self.node.lock:
            return known_json(self.node.mempool.overlay, name, hashes_hex)

    def reputation(self, address: str) -> dict[str, Any]:
        return self._read(reputation_json, address)
