"""Training as a compute job on the ledger: the local worker flow behind `ailedger model train`.

One call takes a training run from nothing to a paid job:

1. export the Datanet version's records into `out_dir/data/` and check them against the root the
   ledger froze (`datanet.export.export_version`, then `data.read_snapshot` re-hashes the file);
2. upload the job spec (the `TrainSpec`, the base weights hash and the record count, canonical JSON)
   as a blob and post a `train` job escrowing `budget` from the poster;
3. claim it with the worker key (the market refuses a poster claiming its own job, and a worker
   below `market_worker_min_stake`; both are checked before anything is sent);
4. train (`factory.train`: checkpoints in `out_dir/checkpoints`, Ctrl-C caught between steps);
5. submit the adapter hash as the job's result (the ledger's `result_hash` is the adapter's tensors
   hash, the hash `model publish` records), the worker's key signing;
6. accept it with the poster's key, which pays the whole budget to the worker.

Resuming: the job id (known from the poster and the post's nonce) is written to `out_dir/job.json`
just before the job is posted (a job.json whose job never reached a block is posted again). Running the same
command again reads it, asks the ledger where the job stands and continues from there: an open job
is claimed, a claimed one trains on from its last checkpoint, a delivered one is accepted, a paid
one is only summarised. Another spec, Datanet version, base or poster in the same directory is
refused (`train_job_mismatch`), never silently mixed.

Every refusal that can be known before the first transaction is checked first (spec, Datanet
version, base model, worker stake, poster balance, budget and deadline against the market
parameters), so a refused command leaves the ledger as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.datanet.remote import DatanetBackend, TxSender, param
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.data import exported_snapshot
from ailedger.factory.train import CARD_FILE, StepCallback, TrainSpec, adapter_hash
from ailedger.factory.train_tasks import train_on
from ailedger.market import payloads as mp
from ailedger.market.state import Kind, job_id

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

STATE_FILE = "job.json"
SPEC_KIND = "ailedger/train-job/v1"
Event = Callable[[str], None]  # one line per phase: "exported 12 records", "posted job …"


class JobBackend(DatanetBackend, Protocol):
    """What the worker flow needs from a node: the Datanet calls plus the job reads."""

    def job(self, id_hex: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TrainJobResult:
    job_id: str
    status: str
    adapter_dir: str
    adapter_hash: str
    hyperparams_hash: str
    spec_hash: str
    base_weights_hash: str
    datanet: str
    version: int
    snapshot_root: str
    records: int
    steps: int
    final_loss: float
    budget: int
    budget_paid: int
    poster: str
    worker: str
    resumed: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def job_spec_blob(spec: TrainSpec, base_weights_hash: str, records: int) -> bytes:
    """The spec a worker trains to, stored as a blob; the job's `spec_hash` is its SHA-256."""
    return canonical({"kind": SPEC_KIND, "spec": json.loads(spec.to_json()), "base_weights_hash": base_weights_hash,
                      "records": records})


def _read_state(out: Path) -> dict[str, Any] | None:
    path = out / STATE_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LedgerError(errors.TRAIN_STATE_CORRUPT, f"{path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("job_id"), str) or not isinstance(doc.get("spec_hash"),
                                                                                                str):
        raise LedgerError(errors.TRAIN_STATE_CORRUPT, f"{path} has no job_id and spec_hash")
    return doc


def _write_state(out: Path, doc: dict[str, Any]) -> None:
    path = out / STATE_FILE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _send(backend: JobBackend, key: KeyPair, tx_type: int, payload: bytes, fee: int | None) -> str:
    sender = TxSender(backend, key, fee)
    tx_id = sender.send(tx_type, payload)
    sender.finish()
    return tx_id


def _fee(backend: JobBackend, fee: int | None) -> int:
    return fee if fee is not None else param(backend, "min_fee")


def _check_worker(backend: JobBackend, poster: KeyPair, worker: KeyPair) -> None:
    if worker.address_text == poster.address_text:
        raise LedgerError(errors.OWN_JOB, "--worker must be another key than --from: the market refuses a poster "
                                          "claiming its own job")
    stake = int(backend.account(worker.address_text)["stake"])
    minimum = param(backend, "market_worker_min_stake")
    if stake < minimum:
        raise LedgerError(errors.WORKER_STAKE_TOO_LOW, f"worker {worker.address_text} has {stake} bonded < "
                                                       f"market_worker_min_stake {minimum}; `ailedger tx stake "
                                                       "--from WORKER --amount …` first")


def _check_post(backend: JobBackend, poster: KeyPair, budget: int, deadline_blocks: int, fee: int) -> None:
    lo = max(param(backend, "market_min_budget"), 1)
    if budget < lo:
        raise LedgerError(errors.BAD_JOB_PARAM, f"budget {budget} < market_min_budget {lo}")
    dmin, dmax = param(backend, "market_min_deadline_blocks"), param(backend, "market_max_deadline_blocks")
    if not dmin <= deadline_blocks <= dmax:
        raise LedgerError(errors.BAD_JOB_PARAM, f"deadline {deadline_blocks} blocks outside {dmin}..{dmax}")
    balance = int(backend.account(poster.address_text)["balance"])
    if balance < budget + 2 * fee:  # post and accept are the poster's
        raise LedgerError(errors.INSUFFICIENT_BALANCE, f"balance {balance} < budget {budget} + fees {2 * fee}")


def run_training_job(backend: JobBackend, poster: KeyPair, worker: KeyPair, spec: TrainSpec, out_dir: Path | str,
                     budget: int, deadline_blocks: int, on_step: StepCallback | None = None,
                     on_event: Event | None = None, on_stage: Callable[[str, int, int | None], None] | None = None,
                     base: BaseModel | None = None, fee: int | None = None, keep: int | None = None,
                     cluster: Cluster | None = None) -> TrainJobResult:
    """Run (or resume) the training job for `spec` in `out_dir`; see the module docstring.

    `spec.base` names the base (`smollm2` or a directory) unless `base` is given already loaded;
    `spec.snapshot_root` is filled in from the ledger. `budget` and `fee` are in micro-units. With a
    `cluster` the training runs as a Ray task (`train_tasks`; no per-step progress), the same adapter.
    """
    say = on_event or (lambda line: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec.validate()
    state = _read_state(out)
    root, records = exported_snapshot(backend, spec.datanet, spec.version, out / "data", on_stage)
    spec = replace(spec, snapshot_root=root)
    say(f"exported {len(records)} records of {spec.datanet} v{spec.version}, root {root} verified")
    loaded = base if base is not None else load_base(spec.base, progress=on_stage)
    spec = replace(spec, base=loaded.info.name)
    blob = job_spec_blob(spec, loaded.info.weights_hash, len(records))
    spec_hash = hashlib.sha256(blob).hexdigest()
    fee_units = _fee(backend, fee)

    if state is not None:
        if state["spec_hash"] != spec_hash or state.get("poster") != poster.address_text:
            raise LedgerError(errors.TRAIN_JOB_MISMATCH, f"{out / STATE_FILE} is job {state['job_id']} for spec "
                                                         f"{state['spec_hash']} posted by {state.get('poster')}")
        try:
            posted = backend.job(state["job_id"])
        except LedgerError as exc:
            if exc.code is not errors.JOB_NOT_FOUND:
                raise
            state = None  # job.json was written before a post that never reached a block: post it now
        else:
            if posted["spec_hash"] != spec_hash:
                raise LedgerError(errors.TRAIN_JOB_MISMATCH, f"job {state['job_id']} has another spec hash")
    if state is not None:
        jid = state["job_id"]
        say(f"resuming job {jid}")
    else:
        _check_worker(backend, poster, worker)
        _check_post(backend, poster, budget, deadline_blocks, fee_units)
        backend.put_blobs([blob])  # first: a job never exists without its spec
        sender = TxSender(backend, poster, fee_units)
        jid = job_id(decode_address(poster.address_text), sender.nonce).hex()  # known before the post is sent
        _write_state(out, {"job_id": jid, "spec_hash": spec_hash, "poster": poster.address_text,
                           "worker": worker.address_text, "budget": budget})  # first: a crash cannot orphan it
        payload = mp.POST_JOB_CODEC.encode(mp.PostJob(Kind.TRAIN, bytes.fromhex(spec_hash), budget, deadline_blocks))
        try:
            sender.send(mp.POST_JOB, payload)
        except LedgerError:
            (out / STATE_FILE).unlink(missing_ok=True)  # refused: no job exists
            raise
        sender.finish()
        say(f"posted job {jid}, budget {budget} escrowed")

    job = backend.job(jid)
    ref = mp.JOB_REF_CODEC.encode(mp.JobRef(bytes.fromhex(jid)))
    if job["status"] == "refunded":
        raise LedgerError(errors.TRAIN_JOB_CLOSED, f"job {jid} was refunded at height {job.get('closed')}")
    if job["status"] == "open":
        _check_worker(backend, poster, worker)
        _send(backend, worker, mp.CLAIM_JOB, ref, fee_units)
        say(f"claimed by {worker.address_text}")
        job = backend.job(jid)
    if job["worker"] != worker.address_text:
        raise LedgerError(errors.TRAIN_JOB_MISMATCH, f"job {jid} was claimed by {job['worker']}, not by "
                                                     f"{worker.address_text}")

    if job["status"] == "claimed":
        result = train_on(cluster, spec, records, loaded, out, keep=keep, on_step=on_step)
        digest = result.adapter_hash
        backend.put_blobs([(out / CARD_FILE).read_bytes()])  # the card, fetchable by its hash
        payload = mp.SUBMIT_RESULT_CODEC.encode(mp.SubmitResult(bytes.fromhex(jid), bytes.fromhex(digest)))
        _send(backend, worker, mp.SUBMIT_RESULT, payload, fee_units)
        say(f"delivered adapter {digest}")
        job = backend.job(jid)
    card = json.loads((out / CARD_FILE).read_text())
    if job["result_hash"] != adapter_hash(out) or card.get("adapter_hash") != job["result_hash"]:
        raise LedgerError(errors.TRAIN_JOB_MISMATCH, f"job {jid} delivered {job['result_hash']}, {out} holds "
                                                     f"{card.get('adapter_hash')}")
    if job["status"] == "submitted":
        _send(backend, poster, mp.ACCEPT_RESULT, ref, fee_units)
        say(f"accepted: {job['budget']} paid to {worker.address_text}")
        job = backend.job(jid)
    return TrainJobResult(
        job_id=jid, status=job["status"], adapter_dir=str(out), adapter_hash=card["adapter_hash"],
        hyperparams_hash=card["hyperparams_hash"], spec_hash=spec_hash, base_weights_hash=loaded.info.weights_hash,
        datanet=spec.datanet, version=spec.version, snapshot_root=root, records=len(records), steps=card["steps"],
        final_loss=card["final_loss"], budget=job["budget"],
        budget_paid=job["budget"] if job["status"] == "paid" else 0, poster=poster.address_text,
        worker=worker.address_text, resumed=state is not None)
