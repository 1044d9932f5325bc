"""An adapter's attribution bundle, and the attribution record of each answer it gives.

The bundle is what `ailedger attribution index ADAPTER` writes under `ADAPTER/attribution/`: the
influence index (`influence.bin`), the verbatim-span index (`spans.bin`) and `manifest.json`, which
names both files by their roots, lists the contributor of every snapshot record (in snapshot order)
and states the payout rule (`combine.Rule`). The bundle's root, `tagged(b"attribution-bundle",
canonical manifest without its root)`, is what the adapter's owner publishes on the ledger, so a
served answer's attribution can be traced to one exact set of indexes, contributors and rule.

An attribution record is plain JSON (`record_bytes` is its canonical form, `record_hash` the SHA-256
that a receipt carries): the prompt and answer token ids (the public inputs of the recomputation),
the bundle and index roots, the projection seed and dimension, the rule, the best records with their
influence, span and combined scores (integers in millionths, so the bytes are the same on every
machine), the verbatim spans, the paid records' basis points and the contributor shares.

`verify` recomputes a record from those inputs with a bundle that has the same root and compares:
spans and shares are exact integer computations once the scores are known, and scores come from
floating point (gradients, eigendecompositions), so they are compared within `SCORE_TOLERANCE`
millionths and contributor shares within `BPS_TOLERANCE` basis points (docs/attribution.md,
"Verifying a record").
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ailedger.attribution.combine import METHOD, Rule, combined_scores, paid, payable, span_scores
from ailedger.attribution.features import training_examples
from ailedger.attribution.influence import InfluenceConfig, InfluenceScorer, build_index
from ailedger.attribution.influence_index import InfluenceIndex
from ailedger.attribution.shares import ADDRESS_BYTES, contributor_shares, record_shares
from ailedger.attribution.spans import MIN_SPAN, Span, SpanIndex
from ailedger.chain.files import atomic_write
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import canonical_json, sha256, tagged
from ailedger.core.merkle import merkle_root
from ailedger.factory.adapters import AdapterInfo, validate_adapter
from ailedger.factory.basemodel import BaseModel
from ailedger.serving.attribution_hook import Attributed

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

BUNDLE_DIR = "attribution"
MANIFEST = "manifest.json"
INFLUENCE_FILE = "influence.bin"
SPANS_FILE = "spans.bin"
BUNDLE_TAG = b"attribution-bundle"
FORMAT = 1
SHOWN = 10  # records listed in an attribution record besides the paid ones
SCORE_TOLERANCE = 2_000  # millionths: a recomputed score may differ by this much
BPS_TOLERANCE = 50  # basis points: a recomputed contributor share may differ by this much
MICRO = 1_000_000

Progress = Callable[[str, int, int | None], None]
F64 = npt.NDArray[np.float64]


def tokenizer_id(base: BaseModel) -> str:
    """What the span index is keyed by: the base weights (the tokenizer ships with them)."""
    return f"base:{base.info.weights_hash}"


def micro(x: float) -> int:
    """A score in millionths, rounded half to even (signed: influence may be negative)."""
    return round(float(x) * MICRO)


@dataclass(frozen=True)
class Bundle:
    """A loaded, checked attribution bundle."""

    adapter: AdapterInfo
    manifest: dict[str, Any]
    root: bytes
    influence: InfluenceIndex
    spans: SpanIndex
    contributors: dict[bytes, bytes]  # record hash -> contributor address, every snapshot record
    rule: Rule

    @property
    def record_hashes(self) -> tuple[bytes, ...]:
        return self.spans.record_ids


@dataclass(frozen=True)
class Scores:
    """Every snapshot record's scores for one answer (snapshot order)."""

    influence: F64
    span: F64
    combined: F64
    spans: tuple[Span, ...]


def bundle_dir(adapter_dir: Path | str) -> Path:
    return Path(adapter_dir) / BUNDLE_DIR


def _manifest_root(manifest: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "root"}
    return tagged(BUNDLE_TAG, canonical_json(body))


def build_bundle(adapter_dir: Path | str, base: BaseModel, records: Sequence[dict[str, Any]],
                 record_hashes: Sequence[bytes], contributors: Mapping[bytes, bytes],
                 config: InfluenceConfig | None = None, progress: Progress | None = None,
                 rule: Rule = Rule(), cluster: Cluster | None = None) -> Bundle:
    """Build (or finish building) the adapter's bundle over its snapshot's records, in snapshot order.

    `contributors` must name a 20-byte contributor for every record (the ledger's accepted records of
    the snapshot). An influence index already in place for the same adapter, snapshot and settings is
    kept; an interrupted influence build resumes (`influence.build_index`).
    """
    cfg = config or InfluenceConfig()
    info = validate_adapter(adapter_dir, base.info)
    missing = [h.hex() for h in record_hashes if len(contributors.get(h, b"")) != ADDRESS_BYTES]
    if missing:
        raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{len(missing)} records have no contributor, first "
                                                             f"{missing[0]}")
    root = merkle_root(list(record_hashes)).hex()
    trained_on = info.card.get("datanet", {}).get("root")
    if root != trained_on:
        raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"these records make snapshot root {root}, the adapter "
                                                             f"was trained on {trained_on}")
    out = bundle_dir(info.path)
    out.mkdir(parents=True, exist_ok=True)
    influence = _reuse_influence(out / INFLUENCE_FILE, info, base, record_hashes, cfg)
    if influence is None:
        influence = build_index(info.path, base, records, record_hashes, out / INFLUENCE_FILE, cfg, progress,
                                cluster)  # with a cluster, gradients are extracted by Ray tasks
    tick = progress or (lambda stage, done, total: None)
    tick("spans", 0, 1)
    examples = training_examples(records, base, info.card)
    spans = SpanIndex.build([e.ids if e is not None else [] for e in examples], record_hashes, tokenizer_id(base))
    spans.save(out / SPANS_FILE)
    tick("spans", 1, 1)
    manifest: dict[str, Any] = {
        "format": FORMAT, "method": METHOD, "adapter_hash": info.adapter_hash,
        "base_weights_hash": base.info.weights_hash, "snapshot_root": root,
        "datanet": info.card.get("datanet", {}),
        "influence": {"file": INFLUENCE_FILE, "root": influence.root.hex(), "k": influence.k,
                      "seed": int(influence.header["projection"]["seed"]), "steps": influence.steps},
        "spans": {"file": SPANS_FILE, "root": spans.root.hex(), "tokenizer": spans.tokenizer, "min_span": MIN_SPAN},
        "rule": rule.to_json(),
        "contributors": [encode_address(contributors[h]) for h in record_hashes],
    }
    bundle_root = _manifest_root(manifest)
    with atomic_write(out / MANIFEST) as f:
        f.write(json.dumps({"root": bundle_root.hex(), **manifest}, indent=1, sort_keys=True).encode())
    return load_bundle(info.path, base, bundle_root.hex())


def _reuse_influence(path: Path, info: AdapterInfo, base: BaseModel, record_hashes: Sequence[bytes],
                     cfg: InfluenceConfig) -> InfluenceIndex | None:
    """The influence index already at `path`, if it is whole and was built for exactly this."""
    if not path.is_file():
        return None
    try:
        index = InfluenceIndex.load(path, adapter_hash=info.adapter_hash, base_weights_hash=base.info.weights_hash,
                                    snapshot_root=merkle_root(list(record_hashes)))
    except LedgerError:
        return None
    h = index.header
    same = (h["projection"]["k"] == cfg.k and h["projection"]["seed"] == cfg.seed
            and h["projection"]["nnz"] == cfg.nnz and h["damping_ratio"] == cfg.damping
            and h["optimizer_correction"] == cfg.optimizer_correction and h["dtype"] == cfg.dtype
            and h.get("top_layers", 0) == cfg.top_layers)
    return index if same else None


def load_bundle(adapter_dir: Path | str, base: BaseModel, expected_root: str | None = None) -> Bundle:
    """Load and check an adapter's bundle; `expected_root` (the ledger's) must match when given."""
    info = validate_adapter(adapter_dir, base.info)
    d = bundle_dir(info.path)
    path = d / MANIFEST
    if not path.is_file():
        raise LedgerError(errors.ATTRIBUTION_MISSING, f"{path} does not exist")
    try:
        manifest = json.loads(path.read_bytes())
        stated = bytes.fromhex(manifest["root"])
        contributors = [decode_address(a) for a in manifest["contributors"]]
        rule = Rule.from_json(manifest["rule"])
        inf, sp = manifest["influence"], manifest["spans"]
    except (OSError, ValueError, KeyError, TypeError, LedgerError) as exc:
        raise LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"{path}: {exc}") from exc
    if _manifest_root(manifest) != stated:
        raise LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"{path}: its content does not hash to its root")
    if expected_root is not None and stated.hex() != expected_root.lower():
        raise LedgerError(errors.ATTRIBUTION_ROOT_MISMATCH, f"{path}: root {stated.hex()}, expected {expected_root}")
    if manifest.get("method") != METHOD:
        raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{path}: method {manifest.get('method')}, this "
                                                             f"program computes {METHOD}")
    if manifest.get("adapter_hash") != info.adapter_hash:
        raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{path}: built for adapter {manifest.get('adapter_hash')}"
                                                             f", this adapter is {info.adapter_hash}")
    try:
        snapshot = bytes.fromhex(str(manifest["snapshot_root"]))
        roots = bytes.fromhex(str(inf["root"])), bytes.fromhex(str(sp["root"]))
    except (KeyError, ValueError) as exc:
        raise LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"{path}: {exc}") from exc
    influence = InfluenceIndex.load(d / str(inf["file"]), adapter_hash=info.adapter_hash,
                                    base_weights_hash=base.info.weights_hash, snapshot_root=snapshot, root=roots[0])
    spans = SpanIndex.load(d / str(sp["file"]), snapshot_root=snapshot, tokenizer=tokenizer_id(base), root=roots[1])
    if len(contributors) != len(spans.record_ids) or tuple(influence.record_hashes) != spans.record_ids:
        raise LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"{path}: {len(contributors)} contributors, "
                                                            f"{len(spans.record_ids)} span records and "
                                                            f"{len(influence.record_hashes)} influence records")
    return Bundle(info, manifest, stated, influence, spans, dict(zip(spans.record_ids, contributors, strict=True)),
                  rule)


class Attributor:
    """Attribution records for the answers of one adapter (thread-safe: one answer at a time)."""

    def __init__(self, bundle: Bundle, base: BaseModel) -> None:
        self.bundle = bundle
        self.scorer = InfluenceScorer(bundle.influence, base, bundle.adapter.path)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, adapter_dir: Path | str, base: BaseModel, expected_root: str | None = None) -> Attributor:
        return cls(load_bundle(adapter_dir, base, expected_root), base)

    @property
    def root(self) -> str:
        return self.bundle.root.hex()

    def scores(self, prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> Scores:
        """Influence, span and combined scores of every snapshot record for this answer."""
        with self._lock:
            influence = self.scorer.scores(prompt_ids, answer_ids)
        spans = tuple(self.bundle.spans.find(list(answer_ids)))
        span = span_scores(spans, len(answer_ids), len(self.bundle.record_hashes))
        return Scores(influence, span, combined_scores(influence, span, self.bundle.rule), spans)

    def attribute(self, prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> dict[str, Any]:
        """The attribution record of one answer (see the module docstring)."""
        return self.record(prompt_ids, answer_ids, self.scores(prompt_ids, answer_ids))

    def record(self, prompt_ids: Sequence[int], answer_ids: Sequence[int], s: Scores) -> dict[str, Any]:
        b = self.bundle
        hashes = b.record_hashes
        fixed = payable(hashes, s.combined, b.rule)
        by_record = record_shares(fixed, b.contributors).bps()
        by_contributor = contributor_shares(fixed, b.contributors)
        chosen = paid(s.combined, b.rule)
        shown = chosen + [int(i) for i in np.argsort(-s.combined, kind="stable")[:SHOWN] if int(i) not in chosen]
        rows = [{"record": hashes[i].hex(), "contributor": encode_address(b.contributors[hashes[i]]),
                 "influence": micro(s.influence[i]), "span": micro(s.span[i]), "score": micro(s.combined[i]),
                 "bp": by_record.get(hashes[i], 0), "paid": i in chosen}
                for i in shown if s.combined[i] > 0 or i in chosen]
        return {
            "method": METHOD, "bundle_root": b.root.hex(), "adapter_hash": b.adapter.adapter_hash,
            "base_weights_hash": b.manifest["base_weights_hash"], "snapshot_root": b.manifest["snapshot_root"],
            "influence_root": b.influence.root.hex(), "spans_root": b.spans.root.hex(),
            "projection_seed": int(b.manifest["influence"]["seed"]), "k": b.influence.k, "rule": b.rule.to_json(),
            "prompt_tokens": [int(t) for t in prompt_ids], "answer_tokens": [int(t) for t in answer_ids],
            "records": rows,
            "spans": [{"start": sp.start, "end": sp.end, "records": [hashes[r].hex() for r in sp.records],
                       "record_count": sp.record_count, "count": sp.count} for sp in s.spans],
            "shares": [{"contributor": encode_address(sh.key), "bp": sh.bps} for sh in by_contributor.shares
                       if sh.bps],
        }


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an attribution record (what its hash and the stored blob are of)."""
    return canonical_json(dict(record))


def record_hash(record: Mapping[str, Any]) -> bytes:
    return sha256(record_bytes(record))


def receipt_shares(record: Mapping[str, Any]) -> tuple[tuple[bytes, int], ...]:
    """The paid records' shares as a receipt carries them: (record hash, bp), ascending by hash.

    The ledger maps each record to its contributor and status when it settles the receipt, so these
    are per record, not per contributor (docs/billing.md).
    """
    return tuple(sorted((bytes.fromhex(r["record"]), int(r["bp"])) for r in record.get("records", [])
                        if r.get("paid") and int(r["bp"]) > 0))


@dataclass(frozen=True)
class Verification:
    ok: bool
    differences: tuple[str, ...]
    recomputed: dict[str, Any]


def verify(record: Mapping[str, Any], attributor: Attributor) -> Verification:
    """Recompute `record` from its prompt and answer with `attributor`'s bundle and compare."""
    diffs: list[str] = []
    for field, have in (("method", METHOD), ("bundle_root", attributor.root),
                        ("adapter_hash", attributor.bundle.adapter.adapter_hash)):
        if record.get(field) != have:
            diffs.append(f"{field}: the record says {record.get(field)}, the bundle has {have}")
    try:
        prompt = [int(t) for t in record["prompt_tokens"]]
        answer = [int(t) for t in record["answer_tokens"]]
        stored_rows = {str(r["record"]): r for r in record["records"]}
        stored_shares = {str(s["contributor"]): int(s["bp"]) for s in record["shares"]}
        stored_spans = [(int(s["start"]), int(s["end"]), int(s["record_count"])) for s in record["spans"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(errors.ATTRIBUTION_VERIFY_FAILED, f"the record is malformed: {exc}") from exc
    if diffs:
        return Verification(False, tuple(diffs), {})
    scores = attributor.scores(prompt, answer)
    again = attributor.record(prompt, answer, scores)
    hashes = {h.hex(): i for i, h in enumerate(attributor.bundle.record_hashes)}
    for rec, row in stored_rows.items():
        i = hashes.get(rec)
        if i is None:
            diffs.append(f"record {rec} is not in the snapshot")
            continue
        for field, values in (("influence", scores.influence), ("span", scores.span), ("score", scores.combined)):
            now = micro(values[i])
            if abs(now - int(row[field])) > SCORE_TOLERANCE:
                diffs.append(f"record {rec[:16]}…: {field} {int(row[field]) / MICRO:.6f} stored, {now / MICRO:.6f} "
                             "recomputed")
    if [(s["start"], s["end"], s["record_count"]) for s in again["spans"]] != stored_spans:
        diffs.append("the verbatim spans differ")
    now_rows = {str(r["record"]): r for r in again["records"]}
    for rec, row in stored_rows.items():  # the per-record basis points are what a receipt carries
        a, b = int(row.get("bp", 0)), int(now_rows.get(rec, {}).get("bp", 0))
        if abs(a - b) > BPS_TOLERANCE:
            diffs.append(f"record {rec[:16]}…: {a} bp stored, {b} bp recomputed")
    for rec, row in now_rows.items():
        if int(row["bp"]) > BPS_TOLERANCE and rec not in stored_rows:
            diffs.append(f"record {rec[:16]}… is paid {row['bp']} bp by the recomputation, the record omits it")
    now_shares = {str(s["contributor"]): int(s["bp"]) for s in again["shares"]}
    for who in sorted(set(now_shares) | set(stored_shares)):
        a, b = stored_shares.get(who, 0), now_shares.get(who, 0)
        if abs(a - b) > BPS_TOLERANCE:
            diffs.append(f"contributor {who}: {a} bp stored, {b} bp recomputed")
    if sum(stored_shares.values()) not in (0, 10_000):
        diffs.append(f"the stored shares sum to {sum(stored_shares.values())} bp, not 10000")
    return Verification(not diffs, tuple(diffs), again)


class ServingAttribution:
    """The serving hook (`serving.attribution_hook.AnswerAttribution`) over one Attributor per adapter version."""

    def __init__(self, attributors: Mapping[tuple[str, int], Attributor]) -> None:
        self.attributors = dict(attributors)

    @classmethod
    def from_dirs(cls, adapters: Mapping[tuple[str, int], Path | str], base: BaseModel,
                  roots: Mapping[tuple[str, int], str | None] | None = None) -> ServingAttribution:
        """Load each adapter's bundle; `roots` (the ledger's published roots) must match where given."""
        known = roots or {}
        return cls({ref: Attributor.load(path, base, known.get(ref)) for ref, path in adapters.items()})

    def covers(self, model: str, version: int, adapter_hash: str) -> bool:
        found = self.attributors.get((model, version))
        return found is not None and found.bundle.adapter.adapter_hash == adapter_hash

    def attribute(self, model: str, version: int, adapter_hash: str, prompt_ids: Sequence[int],
                  answer_ids: Sequence[int]) -> Attributed:
        found = self.attributors.get((model, version))
        if found is None or found.bundle.adapter.adapter_hash != adapter_hash:
            raise LedgerError(errors.ATTRIBUTION_MISSING, f"{model}@{version} ({adapter_hash}) has no bundle loaded")
        record = found.attribute(prompt_ids, answer_ids)
        body = record_bytes(record)
        return Attributed(record, sha256(body), body, receipt_shares(record))
