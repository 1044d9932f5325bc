"""Running a lease's work: training on ModelFactory, serving on the engine; and re-doing it for a spot check.

`Trainer` runs a train order: the order's spec hash names a job spec blob (`factory.job.job_spec_blob`: the
TrainSpec, the base weights hash, the record count), the records are the Datanet version the spec names,
exported and checked against the root the ledger froze, and the run is the real `factory.train` (resumable
from its checkpoints in the lease's directory). The work digest is the adapter file's SHA-256, uploaded to
the node's blob store with every boundary checkpoint and the manifest that a report_training commits to by
a Merkle root. `spot_check` re-runs the few segments a check's seed picks from those checkpoints
(spotcheck.py); `verify`, for a training reported without boundaries, re-runs it all and compares tensors.

`Server` runs a serve lease: prompts dropped into `inbox/<lease id>/` (one UTF-8 text file per request)
are answered greedily by the serving engine with the model the order names (its `model`: an exact adapter
version `NAME@N`, a base's name, or nothing for the base); each period's request log is uploaded and its
hash reported with the tokens served. The engine is the real serving stack (`serving.stack.build_stack`):
the adapters it can load are the ledger's published versions whose files are in the `--adapters`
directory, matched by adapter hash (`serving.catalog.Catalog.from_ledger`, as `ailedger serve --node`
does). `verify` re-generates a seeded sample of a log on this engine with the order's adapter, token by
token, after checking that every logged request names that adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.remote import DatanetBackend
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.checkpoints import ADAPTER_FILE
from ailedger.factory.data import exported_snapshot
from ailedger.factory.job import SPEC_KIND
from ailedger.factory.train import TrainSpec
from ailedger.factory.train_tasks import train_on
from ailedger.provider.spotcheck import TrainedWork, Verdict, check_segments, commit
from ailedger.provider.verify import decode_log, encode_log, generate, regenerate_matches, served_tokens, tensors_match
from ailedger.serving.catalog import Catalog
from ailedger.serving.stack import build_stack, served_base

if TYPE_CHECKING:
    from ailedger.cluster import Cluster


class Trainer:
    """Runs train orders; with a `cluster`, each training is a Ray task (`factory.train_tasks`), the same adapter."""

    def __init__(self, backend: DatanetBackend, root: Path, base: BaseModel | None = None,
                 cluster: Cluster | None = None) -> None:
        self.backend, self.root, self.cluster = backend, root, cluster
        self._bases: dict[str, BaseModel] = {base.info.weights_hash: base} if base is not None else {}

    def _prepare(self, spec_hash_hex: str, out: Path) -> tuple[TrainSpec, list[dict[str, Any]], BaseModel]:
        try:
            doc = json.loads(self.backend.get_blob(spec_hash_hex))
            if doc.get("kind") != SPEC_KIND:
                raise ValueError(doc.get("kind"))
            spec = TrainSpec.from_json(json.dumps(doc["spec"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LedgerError(errors.MARKET_BAD_ORDER, f"spec blob {spec_hash_hex} is not a training spec") from exc
        _, records = exported_snapshot(self.backend, spec.datanet, spec.version, out / "data")
        want = str(doc["base_weights_hash"])
        if want not in self._bases:
            base = load_base(spec.base)
            if base.info.weights_hash != want:
                raise LedgerError(errors.MARKET_BAD_ORDER, f"base {spec.base} has weights {base.info.weights_hash}, "
                                                           f"the spec names {want}")
            self._bases[want] = base
        return spec, records, self._bases[want]

    def run(self, order: dict[str, Any], lease_id: int) -> TrainedWork:
        """Train the order's spec (resuming from earlier checkpoints, keeping all of them); the work is the adapter
        file, and its boundary checkpoints and manifest are what a spot check re-runs segments from (spotcheck.py)."""
        out = self.root / f"lease-{lease_id}"
        spec, records, base = self._prepare(order["spec_hash"], out)
        result = train_on(self.cluster, spec, records, base, out)
        return commit(out, result.steps, spec.checkpoint_every)

    def spot_check(self, order: dict[str, Any], check: dict[str, Any]) -> Verdict:
        """A check of a report_training: re-run the segments its seed picks, here, in this process."""
        out = self.root / f"check-{check['id']}"
        spec, records, base = self._prepare(order["spec_hash"], out)
        return check_segments(spec, records, base, self.backend.get_blob, check, out)

    def verify(self, order: dict[str, Any], reported: bytes, check_id: int) -> tuple[bool, str]:
        """A check of a training reported by plain report_work (no boundaries to sample): the whole run again."""
        out = self.root / f"check-{check_id}"
        spec, records, base = self._prepare(order["spec_hash"], out)
        train_on(self.cluster, spec, records, base, out, resume=False)
        return tensors_match(reported, (out / ADAPTER_FILE).read_bytes())


def adapter_for(catalog: Catalog, model: str | None) -> str | None:
    """The engine's adapter id (its hash) for an order's model; None: the base. A coded error when the model is
    another base, unknown, retired, or its files are not in the catalog's adapters directory."""
    if not model or model == catalog.base.name:
        return None
    return catalog.resolve(model).adapter_id


def why_not(catalog: Catalog, model: str | None) -> str:
    """Why a server with `catalog` cannot serve `model` ("" when it can)."""
    try:
        adapter_for(catalog, model)
    except LedgerError as exc:
        return f"cannot serve {model}: {exc.code.name}" + (f" ({exc.detail})" if exc.detail else "")
    return ""


class Server:
    def __init__(self, base: BaseModel, inbox: Path, max_tokens: int = 32, catalog: Catalog | None = None,
                 max_batch: int = 16) -> None:
        """`catalog` lists the adapters this server can load (None: the base alone); it injects LoRA slots into
        `base.model` in place, so one base model backs one Server."""
        self.base, self.inbox, self.max_tokens = base, inbox, max_tokens
        self.catalog = catalog if catalog is not None else Catalog(served_base(base))
        self.engine = build_stack(base, self.catalog, max_batch=max_batch).engine
        eos = base.tokenizer.eos_token_id
        self.stop_ids = [int(eos)] if isinstance(eos, int) else []

    def adapter_for(self, model: str | None) -> str | None:
        return adapter_for(self.catalog, model)

    def why_not(self, model: str | None) -> str:
        return why_not(self.catalog, model)

    def run(self, lease_id: int, model: str | None = None) -> tuple[bytes, int]:
        """Answer the lease's waiting requests with `model`; returns the period's log and the tokens served."""
        adapter = self.adapter_for(model)
        box = self.inbox / str(lease_id)
        files = sorted(box.glob("*.txt")) if box.is_dir() else []
        prompts = [list(self.base.tokenizer(f.read_text(), add_special_tokens=False)["input_ids"]) for f in files]
        log = generate(self.engine, [p for p in prompts if p], self.max_tokens, self.stop_ids, adapter)
        for f in files:
            f.rename(f.with_suffix(".served"))
        return encode_log(log), served_tokens(log)

    def verify(self, reported: bytes, seed: bytes, model: str | None = None) -> tuple[bool, str]:
        """Re-generate a seeded sample of `reported` with the order's model on this engine (a coded error when
        this server cannot serve it); a request logged with another adapter fails."""
        adapter = self.adapter_for(model)
        log = decode_log(reported)
        if not log:
            return True, "an empty period: nothing was served, nothing to re-generate"
        wrong = next((i for i, r in enumerate(log) if r.adapter != adapter), None)
        if wrong is not None:
            return False, (f"request {wrong} was served with adapter {log[wrong].adapter or 'none (the base)'}, "
                           f"the order names {model or 'the base'} ({adapter or 'no adapter'})")
        return regenerate_matches(self.engine, log, seed)
