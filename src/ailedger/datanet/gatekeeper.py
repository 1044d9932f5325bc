"""The gatekeeper worker: every automatic gate over a Datanet's pending records, verdicts posted on the ledger.

A gatekeeper does not trust the contributor's own check: it fetches each pending record's bytes
from the blob store (hash-verified on read), runs the gates with the settings the ledger records
for the Datanet (schema blob, near-duplicate threshold, PII policy) and posts `gate_verdict`
transactions naming every failing record with its (gate, reason). Records that pass stay pending
for the validators. The records are read and gated a chunk at a time; with a Ray cluster (`--ray`)
the chunks are screened as Ray tasks a few ahead while the duplicate decisions and the verdicts
stay here, in order, so the outcome is the one a run without Ray gives.

The Datanet's near-duplicate index lives on disk (`state_dir/<name>.npz`). Records that pass join
it once the verdicts are in a block, so later batches are checked against earlier ones; a pending
record already in it was checked by an earlier run and is not checked again (it would otherwise
match itself). A crash before the index is saved costs only a re-check: rejected records are no
longer pending, and passing ones pass again.

Records the gates cannot judge: bytes missing from the store are left to the validators (counted
as `unreadable`); bytes that are not JSON are rejected as schema/not_object. Under the redact
policy a stored record that still holds PII is rejected with its PII reason: the ledger names the
bytes as stored, so redaction has to happen before staking (as `contribute` does).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.datanet.embedding import Embedder
from ailedger.datanet.gates.lsh import NearDupIndex
from ailedger.datanet.gates.offtopic import OffTopicGate
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.gates.runner import GateConfig, GateRunner, RecordResult
from ailedger.datanet.gates.verdict import Gate, SchemaReason, Verdict, describe, gate_name, reason_name
from ailedger.datanet.payloads import GATE_VERDICT, GATE_VERDICT_CODEC, GateVerdict, Rejection
from ailedger.datanet.remote import DatanetBackend, TxSender, datanet_gate_config, pages, param, send_refreshed

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

Progress = Callable[[str, int, int | None], None]
SHOWN = 100


@dataclass
class GateSummary:
    datanet: str
    pending: int = 0
    already_checked: int = 0
    checked: int = 0
    passed: int = 0
    rejected: int = 0
    unreadable: int = 0
    offtopic: bool = False
    by_reason: Counter[str] = field(default_factory=Counter)
    rejections: list[dict[str, Any]] = field(default_factory=list)  # the first SHOWN, for people
    tx_ids: list[str] = field(default_factory=list)
    index_path: str = ""
    index_size: int = 0

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "by_reason"}
        out["by_reason"] = dict(sorted(self.by_reason.items()))
        return out

    def reject(self, record_hash: bytes, v: Verdict) -> Rejection:
        self.rejected += 1
        self.by_reason[f"{v.gate_name}/{v.reason_name}"] += 1
        if len(self.rejections) < SHOWN:
            self.rejections.append({"record_hash": record_hash.hex(), "gate": v.gate, "reason": v.reason,
                                    "gate_name": gate_name(v.gate), "reason_name": reason_name(v.gate, v.reason),
                                    "message": describe(v.gate, v.reason, v.detail)})
        return Rejection(record_hash, int(v.gate), int(v.reason))


def index_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.npz"


def load_index(path: Path, config: GateConfig) -> NearDupIndex:
    if path.exists():
        return NearDupIndex.load(path)
    return NearDupIndex(config.neardup_threshold, config.neardup_num_perm, config.neardup_seed)


def save_index(index: NearDupIndex, path: Path) -> None:
    """Write then rename, so a crash leaves the old index or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    index.save(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def pending_hashes(backend: DatanetBackend, name: str, page: int = 1_000) -> list[bytes]:
    return [bytes.fromhex(r["hash"]) for doc in pages(lambda offset: backend.datanet_pending(name, page, offset))
            for r in doc["records"]]


def offtopic_gate(backend: DatanetBackend, dn: dict[str, Any], embed: Embedder, threshold: float | None,
                  sample: int, text_fields: tuple[str, ...] | None) -> OffTopicGate | None:
    """The off-topic gate centred on (up to `sample` of the latest) accepted records; None before any."""
    accepted = int(dn["counts"]["accepted"])
    if accepted == 0:
        return None
    start = max(0, accepted - sample)
    hashes = backend.datanet_hashes(dn["name"], "accepted", start, min(sample, accepted))["hashes"]
    texts = []
    for h in hashes:
        try:
            texts.append(record_text(json.loads(backend.get_blob(h)), text_fields))
        except (LedgerError, ValueError):
            continue
    if not texts:
        return None
    if threshold is None:  # calibrated on the accepted records themselves
        return OffTopicGate.calibrated(embed, texts)
    return OffTopicGate.from_accepted(embed, texts, threshold)


def _read(backend: DatanetBackend, h: bytes) -> tuple[Any, bool]:
    """(record, ok): ok is False for bytes that are not JSON; raises blob errors."""
    raw = backend.get_blob(h.hex())
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


@dataclass
class _Chunk:
    """A chunk of pending records as read: the hashes of its JSON records (screened, in order) and the rest."""

    end: int  # position in the work list after the chunk
    hashes: list[bytes] = field(default_factory=list)
    not_json: list[bytes] = field(default_factory=list)
    unreadable: int = 0


def _judge(summary: GateSummary, h: bytes, r: RecordResult) -> Rejection | None:
    failures = r.failures
    if failures:
        return summary.reject(h, failures[0])
    redacted = [v for v in r.verdicts if v.gate == Gate.PII]
    if r.stored_hash != r.record_hash and redacted:  # PII in the bytes the ledger names
        return summary.reject(h, redacted[0])
    summary.passed += 1
    return None


def run_gates(datanet_name: str, gatekeeper_key: KeyPair, backend: DatanetBackend, state_dir: Path, *,
              embedder: Embedder | None = None, offtopic_threshold: float | None = None, offtopic_sample: int = 2_000,
              gate_config: GateConfig | None = None, fee: int | None = None,
              progress: Progress | None = None, cluster: Cluster | None = None) -> GateSummary:
    """Gate every pending record not checked before and post the rejections; returns what happened.

    With a `cluster` the chunks are screened on it as Ray tasks, a few ahead of the verdicts; the
    summary, the rejections posted and the index saved are the ones a run without it gives.
    """
    dn = backend.datanet(datanet_name)
    name = dn["name"]
    if gatekeeper_key.address_text not in dn["gatekeepers"]:
        raise LedgerError(errors.NOT_GATEKEEPER, f"{gatekeeper_key.address_text} is not a gatekeeper of {name}")
    config = gate_config or datanet_gate_config(backend, dn)
    path = index_path(state_dir, name)
    index = load_index(path, config)
    summary = GateSummary(name, index_path=str(path))
    tick = progress or (lambda stage, done, total: None)
    seen = {index.record_hash_at(i) for i in range(len(index))}
    pending = pending_hashes(backend, name)
    todo = [h for h in pending if h not in seen]
    summary.pending, summary.already_checked = len(pending), len(pending) - len(todo)
    offtopic = None
    if embedder is not None:
        offtopic = offtopic_gate(backend, dn, embedder, offtopic_threshold, offtopic_sample, config.text_fields)
    summary.offtopic = offtopic is not None
    runner = GateRunner(config, frozenset(), index, offtopic, cluster)
    rejections: list[Rejection] = []
    joining: list[tuple[bytes, str]] = []

    def chunks() -> Iterator[tuple[_Chunk, list[Any]]]:
        """Each chunk as read (what it held beside its JSON records), with those records, in order."""
        for start in range(0, len(todo), config.chunk_size):
            chunk, records = _Chunk(min(start + config.chunk_size, len(todo))), []
            for h in todo[start:chunk.end]:
                try:
                    record, ok = _read(backend, h)
                except LedgerError as exc:
                    if exc.code not in (errors.BLOB_NOT_FOUND, errors.BLOB_CORRUPT):
                        raise
                    chunk.unreadable += 1
                    continue
                if ok:
                    chunk.hashes.append(h)
                    records.append(record)
                else:
                    chunk.not_json.append(h)
            yield chunk, records

    tick("gates", 0, len(todo))
    for chunk, results in runner.check_chunks(chunks()):
        summary.unreadable += chunk.unreadable
        for h in chunk.not_json:  # before the chunk's gate findings, as they are read first
            rejections.append(summary.reject(h, Verdict(0, h, Gate.SCHEMA, SchemaReason.NOT_OBJECT, "not JSON")))
        for h, r in zip(chunk.hashes, results, strict=True):
            rejection = _judge(summary, h, r)
            if rejection is None:
                joining.append((h, record_text(r.record, config.text_fields)))
            else:
                rejections.append(rejection)
        tick("gates", chunk.end, len(todo))
    summary.checked = summary.passed + summary.rejected
    _post(backend, gatekeeper_key, name, rejections, fee, summary, tick)
    if joining:
        index.add_many([h for h, _ in joining], index.signatures([t for _, t in joining]))
        save_index(index, path)
    summary.index_size = len(index)
    return summary


def _post(backend: DatanetBackend, key: KeyPair, name: str, rejections: list[Rejection], fee: int | None,
          summary: GateSummary, tick: Progress) -> None:
    if not rejections:
        return
    per_tx = param(backend, "datanet_max_records_per_tx")
    sender = TxSender(backend, key, fee)
    posted = 0

    def still_pending(items: list[Rejection]) -> list[Rejection]:
        known = backend.datanet_known(name, [r.record.hex() for r in items])["known"]
        return [r for r in items if known.get(r.record.hex()) == "pending"]

    def done(items: list[Rejection]) -> None:
        nonlocal posted
        posted += len(items)
        tick("verdicts", posted, len(rejections))

    def encode(items: list[Rejection]) -> bytes:
        return GATE_VERDICT_CODEC.encode(GateVerdict(name, items))

    tick("verdicts", 0, len(rejections))
    try:
        for i in range(0, len(rejections), per_tx):
            send_refreshed(sender, GATE_VERDICT, rejections[i:i + per_tx], encode, still_pending,
                           [errors.RECORD_NOT_PENDING], done)
        sender.finish()
    finally:
        summary.tx_ids = sender.sent
