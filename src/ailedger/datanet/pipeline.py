"""The contributor's side of a Datanet: check a file against the gates, then stake what passes.

`check_file` streams a file through every gate and yields each record's verdicts with its line.
`contribute` runs in three steps, so that a refusal leaves nothing behind and an interruption
loses nothing:

1. **Gates, locally, nothing sent.** The file is streamed through the gates; each record that
   passed (or every one, with `include_rejected`) is spooled to a temporary file as its canonical
   bytes. Exact duplicates — within the file, or already in the Datanet (asked chunk by chunk,
   pending transactions included) — are skipped, never staked.
2. **Balance.** The stake for every spooled record plus the fees must be on the account, else
   `insufficient_balance` before a single byte is uploaded.
3. **Chunks.** Per chunk of at most `datanet_max_records_per_tx` records: upload the canonical
   bytes to the blob store, then submit a `contribute` (hashes under their Merkle root) with the
   next nonce. A chunk is staked when its transaction is in a block. After Ctrl-C, running the same
   file again skips whatever the Datanet already holds and stakes the rest, never anything twice.

Why the gates see the whole file even on a rerun: what is already in the Datanet is removed only
after the gates, so a rerun judges each record exactly as the first run did (an original that is
already staked still shadows its near-copies later in the file).

`run_gates` (the gatekeeper) and `export_version` live in `gatekeeper.py` and `export.py`.
"""

from __future__ import annotations

import dataclasses
import struct
import tempfile
from collections import Counter
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.datanet.export import export_version
from ailedger.datanet.gatekeeper import run_gates
from ailedger.datanet.gates.lsh import NearDupIndex
from ailedger.datanet.gates.offtopic import OffTopicGate
from ailedger.datanet.gates.records import canonical_record
from ailedger.datanet.gates.runner import GateConfig, GateRunner, RecordResult
from ailedger.datanet.gates.verdict import DuplicateReason, Gate, Verdict
from ailedger.datanet.payloads import CONTRIBUTE, CONTRIBUTE_CODEC, Contribute
from ailedger.datanet.readers import TxtMode, read_records
from ailedger.datanet.remote import DatanetBackend, TxSender, WithReport, datanet_gate_config, param, send_refreshed

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

__all__ = ["ContributeSummary", "LineResult", "check_file", "contribute", "export_version", "run_gates"]

Progress = Callable[[str, int, int | None], None]  # (stage, done, total or None)
Lookup = Callable[[Sequence[bytes]], set[bytes]]
_ORDER = (Gate.SCHEMA, Gate.EXACT_DUPLICATE, Gate.PII, Gate.QUALITY, Gate.OFF_TOPIC, Gate.NEAR_DUPLICATE)
_GATE_ORDER: dict[int, int] = {g: i for i, g in enumerate(_ORDER)}  # the runner's order
_LEN = struct.Struct(">I")
EXAMPLES = 20


@dataclass(frozen=True)
class LineResult:
    """One record's gate results and the line (or row) of the file it came from."""

    line: int
    result: RecordResult

    @property
    def duplicate(self) -> bool:
        return any(v.gate == Gate.EXACT_DUPLICATE for v in self.result.failures)

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {"line": self.line, "record_hash": r.record_hash.hex(), "stored_hash": r.stored_hash.hex(),
                "passed": r.passed, "verdicts": [v.to_json() for v in r.verdicts]}


def _lookup_of(known: Container[bytes] | Lookup) -> Lookup:
    if callable(known):
        return known
    return lambda hashes: {h for h in hashes if h in known}


def backend_lookup(backend: DatanetBackend, name: str) -> Lookup:
    """Ask the node which hashes Datanet `name` holds (committed or in a waiting transaction)."""
    def ask(hashes: Sequence[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for i in range(0, len(hashes), 5_000):
            answer = backend.datanet_known(name, [h.hex() for h in hashes[i:i + 5_000]])
            found.update(bytes.fromhex(h) for h in answer["known"])
        return found
    return ask


def _in_datanet(r: RecordResult) -> RecordResult:
    if any(v.gate == Gate.EXACT_DUPLICATE for v in r.verdicts):
        return r
    mark = Verdict(r.index, r.record_hash, Gate.EXACT_DUPLICATE, DuplicateReason.IN_DATANET)
    return dataclasses.replace(r, verdicts=tuple(sorted((*r.verdicts, mark), key=lambda v: _GATE_ORDER[v.gate])))


def check_file(path: Path | str, gate_config: GateConfig | None = None,
               known_hashes: Container[bytes] | Lookup = frozenset(), neardup_index: NearDupIndex | None = None,
               offtopic: OffTopicGate | None = None, fmt: str | None = None,
               txt_mode: TxtMode = "line", cluster: Cluster | None = None) -> Iterator[LineResult]:
    """Every gate over the file's records, streamed chunk by chunk, one result per record in file order.

    `known_hashes` (a set, or a function answering which of a chunk's hashes are known) are the
    Datanet's records: a record among them gets an exact-duplicate verdict on top of what the gates
    found. A malformed file raises the reader's error naming the file and line. With a `cluster`
    the chunks are screened by Ray tasks a few ahead of the results (`gates.screen_tasks`).
    """
    config = gate_config or GateConfig()
    runner = GateRunner(config, frozenset(), neardup_index, offtopic, cluster)
    lookup = _lookup_of(known_hashes)
    source = read_records(path, fmt, txt_mode)

    def chunks() -> Iterator[tuple[list[Any], list[Any]]]:
        while chunk := list(islice(source, config.chunk_size)):
            yield chunk, [s.record for s in chunk]

    for chunk, results in runner.check_chunks(chunks()):
        held = lookup(sorted({r.record_hash for r in results} | {r.stored_hash for r in results}))
        for s, r in zip(chunk, results, strict=True):
            in_datanet = r.record_hash in held or r.stored_hash in held
            yield LineResult(s.line, _in_datanet(r) if in_datanet else r)


@dataclass
class ContributeSummary:
    datanet: str
    file: str
    read: int = 0
    passed: int = 0
    rejected: int = 0  # records with a failing gate other than an exact duplicate
    duplicates_in_file: int = 0
    already_in_datanet: int = 0
    to_stake: int = 0
    staked: int = 0
    stake_per_record: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)  # "gate/reason" -> records
    examples: list[dict[str, Any]] = field(default_factory=list)  # the first rejections, for people
    tx_ids: list[str] = field(default_factory=list)
    include_rejected: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "by_reason"}
        out["by_reason"] = dict(sorted(self.by_reason.items()))
        out["skipped_duplicates"] = self.duplicates_in_file + self.already_in_datanet
        out["stake_total"] = self.staked * self.stake_per_record
        return out

    def count(self, lr: LineResult) -> None:
        """Tally one record under passed, duplicate (of the file or of the Datanet) or rejected."""
        self.read += 1
        r = lr.result
        if r.passed:
            self.passed += 1
            return
        if lr.duplicate:
            in_dn = any(v.reason == DuplicateReason.IN_DATANET for v in r.failures if v.gate == Gate.EXACT_DUPLICATE)
            if in_dn:
                self.already_in_datanet += 1
            else:
                self.duplicates_in_file += 1
            return
        self.rejected += 1
        for v in r.failures:
            self.by_reason[f"{v.gate_name}/{v.reason_name}"] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"line": lr.line, "record_hash": r.record_hash.hex(),
                                  "reasons": [f"{v.gate_name}/{v.reason_name}: {v.sentence()}" for v in r.failures]})


class _Spool:
    """Canonical records waiting to be staked, in a temporary file: (u32 length, bytes) each, hash first."""

    def __init__(self, directory: Path | None) -> None:
        self.file: BinaryIO = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, record_hash: bytes, blob: bytes) -> None:
        self.file.write(record_hash + _LEN.pack(len(blob)) + blob)
        self.count += 1

    def chunks(self, size: int) -> Iterator[list[tuple[bytes, bytes]]]:
        self.file.flush()
        self.file.seek(0)
        chunk: list[tuple[bytes, bytes]] = []
        for _ in range(self.count):
            head = self.file.read(36)
            (n,) = _LEN.unpack(head[32:])
            chunk.append((head[:32], self.file.read(n)))
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def close(self) -> None:
        self.file.close()


def contribute(path: Path | str, datanet_name: str, key: KeyPair, backend: DatanetBackend, *,
               include_rejected: bool = False, gate_config: GateConfig | None = None,
               progress: Progress | None = None, fee: int | None = None, fmt: str | None = None,
               txt_mode: TxtMode = "line", spool_dir: Path | None = None,
               neardup_index: NearDupIndex | None = None, offtopic: OffTopicGate | None = None,
               cluster: Cluster | None = None) -> ContributeSummary:
    """Gate the file locally, then stake what passed, chunk by chunk (module docstring); returns the summary.

    `offtopic` is the Datanet's off-topic gate when the caller has one (see gatekeeper.offtopic_gate);
    with a `cluster` the gates' per-record work runs as Ray tasks (`check_file`).
    """
    dn = backend.datanet(datanet_name)
    config = gate_config or datanet_gate_config(backend, dn)
    summary = ContributeSummary(dn["name"], str(path), stake_per_record=int(dn["stake_per_record"]),
                                include_rejected=include_rejected)
    tick = progress or (lambda stage, done, total: None)
    spool = _Spool(spool_dir)
    try:
        # Without redaction the exact-duplicate gate already flags every repeat; with it, two records may
        # redact to the same bytes, so the stored hashes are tracked too.
        seen: set[bytes] | None = set() if config.pii_policy == "redact" else None
        for lr in check_file(path, config, backend_lookup(backend, dn["name"]), neardup_index, offtopic, fmt,
                             txt_mode, cluster):
            summary.count(lr)
            r = lr.result
            stakeable = r.passed or (include_rejected and not lr.duplicate)
            if stakeable and seen is not None and r.stored_hash in seen:
                summary.duplicates_in_file += 1
            elif stakeable:
                if seen is not None:
                    seen.add(r.stored_hash)
                spool.add(r.stored_hash, canonical_record(r.record))
            tick("gates", summary.read, None)
        summary.to_stake = spool.count
        if spool.count == 0:
            if summary.rejected and not summary.passed and not summary.already_in_datanet:
                raise WithReport(errors.NO_RECORDS_PASSED, f"{summary.rejected} of {summary.read} records failed a "
                                 "gate", summary.to_json())
            return summary
        _stake(spool, summary, dn["name"], key, backend, fee, tick)
    finally:
        spool.close()
    return summary


def _stake(spool: _Spool, summary: ContributeSummary, name: str, key: KeyPair, backend: DatanetBackend,
           fee: int | None, tick: Progress) -> None:
    per_tx = param(backend, "datanet_max_records_per_tx")
    sender = TxSender(backend, key, fee)
    n_txs = -(-spool.count // per_tx)
    need = spool.count * summary.stake_per_record + n_txs * sender.fee
    balance = int(backend.account(key.address_text)["balance"])
    if balance < need:
        raise LedgerError(errors.INSUFFICIENT_BALANCE,
                          f"staking {spool.count} records at {summary.stake_per_record} micro-units each plus "
                          f"{n_txs} fees of {sender.fee} needs {need}; {key.address_text} holds {balance}")
    lookup = backend_lookup(backend, name)

    def staked(items: list[tuple[bytes, bytes]]) -> None:
        summary.staked += len(items)
        tick("stake", summary.staked, spool.count)

    def encode(items: list[tuple[bytes, bytes]]) -> bytes:
        hashes = [h for h, _ in items]
        return CONTRIBUTE_CODEC.encode(Contribute(name, hashes, merkle_root(hashes)))

    def still_new(items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        held = lookup([h for h, _ in items])
        summary.already_in_datanet += len(held)
        summary.to_stake -= len(held)
        return [(h, b) for h, b in items if h not in held]

    tick("stake", 0, spool.count)
    try:
        for chunk in spool.chunks(per_tx):
            stored = backend.put_blobs([b for _, b in chunk])
            if stored != [h.hex() for h, _ in chunk]:
                raise LedgerError(errors.BLOB_CORRUPT, "the blob store answered other hashes than the records'")
            send_refreshed(sender, CONTRIBUTE, chunk, encode, still_new, [errors.DUPLICATE_RECORD], staked)
        sender.finish()
    except KeyboardInterrupt:
        summary.tx_ids = sender.sent
        raise WithReport(errors.INTERRUPTED, f"{summary.staked} of {spool.count} records staked so far",
                         summary.to_json()) from None
    except LedgerError as exc:
        summary.tx_ids = sender.sent
        raise WithReport(exc.code, f"{exc.detail} ({summary.staked} of {spool.count} records staked before this)",
                         summary.to_json()) from exc
    summary.tx_ids = sender.sent
