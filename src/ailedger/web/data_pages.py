"""What the data pages show: a Datanet and its records, a model's provenance, an answer's attribution.

Like the chain pages, each reads keyed state (the Datanet's positional indexes, a receipt by id, a
blob by hash) or one indexed range of the history tables. An answer's attribution record is the
blob the receipt names by SHA-256, so the page checks that hash before showing anything from it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.attribution.attributor import receipt_shares, record_hash
from ailedger.billing.service import receipt_json
from ailedger.chain import accounts
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import sha256
from ailedger.datanet import views as datanet_views
from ailedger.datanet.service import record_json
from ailedger.datanet.state import contributor_index_key, get_counters
from ailedger.market.service import job_json
from ailedger.models import views as model_views
from ailedger.models.service import model_json
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from ailedger.web.chain_pages import PAGE, Explorer, parse_cursor

ZERO = "0" * 64
TEXT_SHOWN = 4_000  # characters of a record shown on a page


@dataclass
class Verifier:
    """What re-verifying an answer needs beyond the ledger: the base model and the adapters' bundles.

    Loaded on first use (a base model takes seconds to load) and kept; `None` paths mean the page
    can only run the ledger checks (hashes and shares), not the recomputation.
    """

    base: Path | None = None
    adapters: list[Path] = field(default_factory=list)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _base_model: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)  # one load, one recompute

    def decode(self, tokens: list[int]) -> str | None:
        if self.base is None:
            return None
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.base))
            return str(self._tokenizer.decode(tokens))

    def recompute(self, record: dict[str, Any]) -> tuple[bool, list[str]] | None:
        """Recompute with the adapter whose bundle has the record's root; None when none is configured."""
        if self.base is None or not self.adapters:
            return None
        from ailedger.attribution.attributor import Attributor, verify
        from ailedger.factory.basemodel import load_base

        with self._lock:
            if self._base_model is None:
                self._base_model = load_base(self.base)
            for adapter in self.adapters:
                try:
                    attributor = Attributor.load(adapter, self._base_model, str(record.get("bundle_root")))
                except LedgerError:
                    continue
                result = verify(record, attributor)
                return result.ok, list(result.differences)
        return None


def blob_text(ex: Explorer, hash_hex: str) -> str | None:
    try:
        raw = ex.node.get_blob(hash_hex)
    except LedgerError:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False)[:TEXT_SHOWN]
    except ValueError:
        return text[:TEXT_SHOWN]


# -- Datanets ------------------------------------------------------------------------------------

def datanet_doc(state: Reader, height: int, name: str) -> dict[str, Any]:
    """The Datanet's configuration, counts, snapshots and validators, without listing its contributors.

    (`datanet.service.datanet_json` walks every contributor to count them; the page pages through them.)
    """
    view = datanet_views.get_datanet(state, name)
    if view is None:
        raise LedgerError(errors.DATANET_NOT_FOUND, repr(name))
    doc = view.to_json()
    doc["versions"] = [v.to_json() for v in datanet_views.list_versions(state, name)]
    doc["validator_details"] = [
        {"address": encode_address(a), "stake": _stake(state, a),
         "reputation_bps": reputation.score_bps(state, a, Role.VALIDATOR, height)}
        for a in view.validators]
    return doc


def _stake(state: Reader, address: bytes) -> int:
    raw = state.get(accounts.account_key(address))
    return accounts.decode_account(raw).stake if raw else 0


def datanet(ex: Explorer, name: str, after: str | None, contributors_after: str | None) -> dict[str, Any]:
    cursor = parse_cursor(after, 1)
    c_cursor = parse_cursor(contributors_after, 1)
    with ex.node.lock:
        state, height = ex.node.state, ex.node.store.height()
        doc = datanet_doc(state, height, name)
        total = get_counters(state, name).contributors
        start = c_cursor[0] + 1 if c_cursor else 0
        people = [datanet_views.contributor_json(state, name, state.get(contributor_index_key(name, i)) or b"",
                                                 height) for i in range(start, min(start + PAGE, total))]
        found = ex.history.records(name, cursor[0] if cursor else -1, PAGE)
        records = [record_json(state, height, name, h.hex()) | {"n": n, "first_seen": seen} for n, h, seen in found]
    schema = blob_text(ex, doc["schema_hash"]) if doc["schema_hash"] != ZERO else None
    last_c = start + len(people) - 1
    return {"d": doc, "schema": schema, "records": records,
            "next": str(found[-1][0]) if len(found) == PAGE else None, "first": cursor is None,
            "contributors": people, "contributors_next": str(last_c) if last_c + 1 < total else None}


def record(ex: Explorer, name: str, hash_hex: str) -> dict[str, Any]:
    with ex.node.lock:
        doc = record_json(ex.node.state, ex.node.store.height(), name, hash_hex)
    return {"r": doc, "text": blob_text(ex, doc["hash"])}


# -- models --------------------------------------------------------------------------------------

def model(ex: Explorer, ref: str) -> dict[str, Any]:
    with ex.node.lock:
        state, height = ex.node.state, ex.node.store.height()
        adapter = model_views.resolve(state, ref, allow_retired=True)
        doc = model_json(state, height, adapter.ref)
        job = None
        if doc.get("job_id"):
            try:
                job = job_json(state, height, doc["job_id"])
            except LedgerError:
                job = None
    calls = ex.history.model_calls(doc["id"])
    return {"m": doc, "job": job, "series": {"height": [c[0] for c in calls], "calls": [c[1] for c in calls],
                                              "fees": [c[2] for c in calls]}}


# -- answers -------------------------------------------------------------------------------------

def attribution_record(ex: Explorer, receipt: dict[str, Any]) -> dict[str, Any] | None:
    """The attribution record the receipt names, after checking its SHA-256; None when it carries none."""
    digest = str(receipt.get("attribution") or ZERO)
    if digest == ZERO:
        return None
    raw = ex.node.get_blob(digest)
    if sha256(raw).hex() != digest:
        raise LedgerError(errors.ATTRIBUTION_VERIFY_FAILED, f"the blob store answered other bytes for {digest}")
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise LedgerError(errors.ATTRIBUTION_VERIFY_FAILED, f"blob {digest} is not an attribution record")
    return doc


def highlighted(tokens: list[int], spans: list[dict[str, Any]], decode: Any) -> list[dict[str, Any]]:
    """The answer cut into segments: plain text, or a verbatim span with the records it occurs in.

    Spans may overlap; a token belongs to the first span that covers it. `decode` turns token ids
    into text (None without a tokenizer: the ids are shown).
    """
    owner: list[int | None] = [None] * len(tokens)
    for i, sp in enumerate(spans):
        for t in range(max(0, int(sp["start"])), min(len(tokens), int(sp["end"]))):
            if owner[t] is None:
                owner[t] = i
    out: list[dict[str, Any]] = []
    t = 0
    while t < len(tokens):
        j = t
        while j < len(tokens) and owner[j] == owner[t]:
            j += 1
        piece = tokens[t:j]
        text = decode(piece) if decode else None
        seg: dict[str, Any] = {"text": text if text is not None else " ".join(map(str, piece))}
        which = owner[t]
        if which is not None:
            sp = spans[which]
            seg.update(span=which, records=list(sp.get("records", [])), count=sp.get("record_count", 0))
        out.append(seg)
        t = j
    return out


def fee_split(fee: int, split_bps: dict[str, int]) -> list[dict[str, Any]]:
    """The fee's parts by the Datanet's split (floor of each part; settlement gives the remainder by its rule)."""
    return [{"to": k, "bps": v, "amount": fee * v // 10_000} for k, v in split_bps.items()]


def answer(ex: Explorer, receipt_id: str, verifier: Verifier) -> dict[str, Any]:
    with ex.node.lock:
        state, height = ex.node.state, ex.node.store.height()
        receipt = receipt_json(state, height, receipt_id)
        try:
            adapter = model_views.resolve(state, f"{receipt['model']}@{receipt['version']}", allow_retired=True)
            split = datanet_views.get_datanet(state, adapter.datanet) if adapter.datanet else None
        except LedgerError:
            adapter, split = None, None
    rec = attribution_record(ex, receipt)
    out: dict[str, Any] = {"receipt": receipt, "a": rec, "datanet": split.config.name if split else None}
    fee = int(receipt["charged"])
    out["split"] = fee_split(fee, split.config.to_json()["fee_split_bps"]) if split else []
    if rec is not None:
        prompt = verifier.decode(list(rec.get("prompt_tokens", [])))
        out["prompt"] = prompt if prompt is not None else " ".join(map(str, rec.get("prompt_tokens", [])))
        out["segments"] = highlighted(list(rec.get("answer_tokens", [])), list(rec.get("spans", [])),
                                      verifier.decode if verifier.base else None)
        data_part = next((p["amount"] for p in out["split"] if p["to"] == "data"), 0)
        out["shares"] = [{**s, "amount": data_part * int(s["bp"]) // 10_000} for s in rec.get("shares", [])]
    return out


def verify_answer(ex: Explorer, receipt_id: str, verifier: Verifier) -> dict[str, Any]:
    """The ledger checks (hash, shares, published root) and, when configured, the recomputation."""
    with ex.node.lock:
        state, height = ex.node.state, ex.node.store.height()
        receipt = receipt_json(state, height, receipt_id)
        published = None
        try:
            adapter = model_views.resolve(state, f"{receipt['model']}@{receipt['version']}", allow_retired=True)
            published = model_json(state, height, adapter.ref).get("attribution_root")
        except LedgerError:
            pass
    problems: list[str] = []
    try:
        rec = attribution_record(ex, receipt)
    except LedgerError as exc:
        return {"receipt": receipt_id, "matches": False, "checks": [], "differences": [exc.detail or exc.code.message],
                "recomputed": False}
    if rec is None:
        return {"receipt": receipt_id, "matches": False, "checks": [],
                "differences": ["the receipt carries no attribution record"], "recomputed": False}
    checks = ["the attribution record hashes to the receipt's digest"]
    if str(receipt.get("attribution")) != record_hash(rec).hex():
        problems.append("the receipt's attribution hash is not the record's canonical hash")
    on_ledger = tuple(sorted((bytes.fromhex(x["record"]), int(x["bp"])) for x in receipt.get("shares", [])))
    if on_ledger != receipt_shares(rec):
        problems.append("the receipt's shares are not the record's")
    else:
        checks.append("the receipt's per-record shares are the record's")
    if published is not None and published != rec.get("bundle_root"):
        problems.append(f"the ledger's attribution root is {published}, the record used {rec.get('bundle_root')}")
    elif published is not None:
        checks.append("the record used the attribution root the model's owner published")
    recomputed = verifier.recompute(rec)
    if recomputed is not None:
        ok, diffs = recomputed
        problems += diffs
        if ok:
            checks.append("recomputing the attribution from the prompt and answer gives the same record")
    return {"receipt": receipt_id, "matches": not problems, "checks": checks, "differences": problems,
            "recomputed": recomputed is not None}
