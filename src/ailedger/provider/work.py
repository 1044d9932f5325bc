"""Running a lease's work: training on ModelFactory, serving on the engine; and re-doing it for a spot check.

`Trainer` runs a train order: the order's spec hash names a job spec blob (`factory.job.job_spec_blob`: the
TrainSpec, the base weights hash, the record count), the records are the Datanet version the spec names,
exported and checked against the root the ledger froze, and the run is the real `factory.train` (resumable
from its checkpoints in the lease's directory). The work digest is the adapter file's SHA-256, uploaded to
the node's blob store. `verify` re-runs the same training elsewhere and compares tensors (verify.py).

`Server` runs a serve lease: prompts dropped into `inbox/<lease id>/` (one UTF-8 text file per request)
are answered greedily by the serving engine; each period's request log is uploaded and its hash reported
with the tokens served. `verify` re-generates a seeded sample of a log on this engine, token by token.
The engine serves the base model; adapters are served by `ailedger serve`, not yet by market leases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.remote import DatanetBackend
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.checkpoints import ADAPTER_FILE
from ailedger.factory.data import exported_snapshot
from ailedger.factory.job import SPEC_KIND
from ailedger.factory.train import TrainSpec, train
from ailedger.provider.verify import decode_log, encode_log, generate, regenerate_matches, served_tokens, tensors_match
from ailedger.serving.engine import Engine
from ailedger.serving.lora import inject


class Trainer:
    def __init__(self, backend: DatanetBackend, root: Path, base: BaseModel | None = None) -> None:
        self.backend, self.root = backend, root
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

    def run(self, order: dict[str, Any], lease_id: int) -> bytes:
        """Train the order's spec (resuming from earlier checkpoints); the adapter file is the work."""
        out = self.root / f"lease-{lease_id}"
        spec, records, base = self._prepare(order["spec_hash"], out)
        train(spec, records, base, out)
        return (out / ADAPTER_FILE).read_bytes()

    def verify(self, order: dict[str, Any], reported: bytes, check_id: int) -> tuple[bool, str]:
        out = self.root / f"check-{check_id}"
        spec, records, base = self._prepare(order["spec_hash"], out)
        train(spec, records, base, out, resume=False)
        return tensors_match(reported, (out / ADAPTER_FILE).read_bytes())


class Server:
    def __init__(self, base: BaseModel, inbox: Path, max_tokens: int = 32) -> None:
        self.base, self.inbox, self.max_tokens = base, inbox, max_tokens
        slots = inject(base.model, max_slots=2, max_rank=8)  # slot 0 is the base itself
        self.engine = Engine(base.model, slots, None, decode=lambda ids: str(base.tokenizer.decode(ids)))
        eos = base.tokenizer.eos_token_id
        self.stop_ids = [int(eos)] if isinstance(eos, int) else []

    def run(self, lease_id: int) -> tuple[bytes, int]:
        """Answer the lease's waiting requests; returns the period's log and the tokens served (0 if none came)."""
        box = self.inbox / str(lease_id)
        files = sorted(box.glob("*.txt")) if box.is_dir() else []
        prompts = [list(self.base.tokenizer(f.read_text(), add_special_tokens=False)["input_ids"]) for f in files]
        log = generate(self.engine, [p for p in prompts if p], self.max_tokens, self.stop_ids, None)
        for f in files:
            f.rename(f.with_suffix(".served"))
        return encode_log(log), served_tokens(log)

    def verify(self, reported: bytes, seed: bytes) -> tuple[bool, str]:
        log = decode_log(reported)
        if not log:
            return True, "an empty period: nothing was served, nothing to re-generate"
        return regenerate_matches(self.engine, log, seed)
