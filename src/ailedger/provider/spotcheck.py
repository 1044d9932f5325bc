"""Training spot checks by segments: the trainer commits to every K-th step, a verifier re-runs a few segments.

The trainer (work.Trainer.run) trains with `checkpoint_every = K` from the job spec and keeps every
checkpoint. Each boundary (steps K, 2K, ... and the last step) becomes a leaf
    step u64 || params b32 || checkpoint b32
where `params` is the hash of the adapter's LoRA tensors at that step (factory.tensors.tensors_hash:
each tensor's name, dtype, shape and bytes in name order) and `checkpoint` is the SHA-256 of the
checkpoint blob: the whole checkpoint directory (adapter, AdamW moments, schedule, torch's random
state, the data cursor and run id), packed canonically and put in the node's blob store. The manifest
blob lists the leaves; report_training carries the adapter's hash, the Merkle root over the leaves
(core.merkle), their count and the manifest's hash.

The check (check_segments): the check's block seed picks SEGMENTS distinct segments (segment i runs
from boundary i-1, or the seeded start, to boundary i). For each the verifier proves both boundary
leaves against the root on the ledger, downloads the start checkpoint, checks that it holds the
parameters its leaf names, re-runs exactly those steps with `factory.train.train(until=...)` (same
data order and random state: the trainer is deterministic), and compares the result with the
trainer's end checkpoint: every tensor within TRAIN_TOLERANCE (bit-exact on one machine). The
delivered adapter must hold the last boundary's parameters. Any mismatch, a missing blob, a
malformed manifest or a boundary list that is not the run's fails the check.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import tagged
from ailedger.core.merkle import MerkleTree, verify_proof
from ailedger.factory import checkpoints
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.checkpoints import ADAPTER_CONFIG, ADAPTER_FILE, SCHEDULER_FILE
from ailedger.factory.data import Order, encode
from ailedger.factory.tensors import read_header, tensors_hash
from ailedger.factory.train import TrainSpec, train
from ailedger.provider.verify import TRAIN_TOLERANCE, sample, tensors_match

SEGMENTS = 2  # segments re-run per check (docs/market.md gives the odds this buys)
MANIFEST_KIND = "ailedger/train-manifest/v1"
PACK_MAGIC = b"ailedger/train-checkpoint/v1\n"
FILES = (ADAPTER_FILE, ADAPTER_CONFIG, "optimizer.pt", SCHEDULER_FILE, "rng.pt", "state.json")
MAX_BOUNDARIES = 1 << 20
Fetch = Callable[[str], bytes]  # a blob by its hex hash (Node.get_blob, HttpClient.get_blob)


@dataclass(frozen=True)
class Boundary:
    step: int
    params: bytes  # tensors_hash of the adapter at this step
    checkpoint: bytes  # sha256 of the packed checkpoint

    def leaf(self) -> bytes:
        return struct.pack(">Q", self.step) + self.params + self.checkpoint


@dataclass(frozen=True)
class Manifest:
    adapter: bytes  # sha256 of the adapter file delivered (the report's digest)
    every: int
    boundaries: tuple[Boundary, ...]

    def tree(self) -> MerkleTree:
        return MerkleTree.from_data(b.leaf() for b in self.boundaries)

    def encode(self) -> bytes:
        doc = {"kind": MANIFEST_KIND, "adapter": self.adapter.hex(), "every": self.every,
               "boundaries": [[b.step, b.params.hex(), b.checkpoint.hex()] for b in self.boundaries]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def decode(blob: bytes) -> Manifest:
        try:
            doc = json.loads(blob)
            if doc.get("kind") != MANIFEST_KIND:
                raise ValueError(f"kind {doc.get('kind')!r}")
            rows = doc["boundaries"]
            if not isinstance(rows, list) or not 0 < len(rows) <= MAX_BOUNDARIES:
                raise ValueError("boundaries")
            bounds = tuple(Boundary(int(s), _b32(p), _b32(c)) for s, p, c in rows)
            return Manifest(_b32(doc["adapter"]), int(doc["every"]), bounds)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LedgerError(errors.MARKET_BAD_REPORT, f"not a training manifest: {exc}") from exc


def _b32(text: Any) -> bytes:
    raw = bytes.fromhex(str(text))
    if len(raw) != 32:
        raise ValueError(f"{text!r} is not 32 bytes")
    return raw


@dataclass(frozen=True)
class TrainedWork:
    """What a trainer uploads and reports: the adapter, every boundary checkpoint, the manifest."""

    adapter: bytes
    manifest: Manifest
    blobs: list[bytes]  # the adapter, the packed checkpoints and the manifest, for put_blobs

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.adapter).digest()

    @property
    def manifest_hash(self) -> bytes:
        return hashlib.sha256(self.manifest.encode()).digest()

    @property
    def root(self) -> bytes:
        return self.manifest.tree().root()


@dataclass(frozen=True)
class Verdict:
    passed: bool
    why: str
    digest: bytes  # the verifier's own result: a hash over the re-run end boundaries' parameters


# -- the trainer's side ---------------------------------------------------------------------------------

def boundary_steps(total: int, every: int) -> list[int]:
    """The steps a run of `total` steps commits to: every `every`-th, and the last."""
    return sorted({*range(every, total + 1, every), total}) if total > 0 else []


def total_steps(spec: TrainSpec, records: Sequence[dict[str, Any]], base: BaseModel) -> int:
    """The steps `train` takes on these records (what the boundary list must end at)."""
    examples = encode(records, base.tokenizer, spec.max_len, spec.loss_on)
    return spec.epochs * Order(len(examples), spec.batch_size, spec.seed).steps_per_epoch


def params_hash(directory: Path) -> bytes:
    return bytes.fromhex(tensors_hash(read_header(directory / ADAPTER_FILE)))


def pack(directory: Path) -> bytes:
    """A checkpoint directory as one canonical blob: magic, a JSON index of (name, size), the files' bytes."""
    parts = [(name, (directory / name).read_bytes()) for name in FILES if (directory / name).is_file()]
    index = json.dumps([[n, len(b)] for n, b in parts], separators=(",", ":")).encode()
    return PACK_MAGIC + struct.pack(">I", len(index)) + index + b"".join(b for _, b in parts)


def unpack(blob: bytes, directory: Path) -> None:
    """Write a packed checkpoint into `directory`; a blob that is not one is a bad report."""
    try:
        if not blob.startswith(PACK_MAGIC):
            raise ValueError("no checkpoint magic")
        at = len(PACK_MAGIC)
        (n,) = struct.unpack(">I", blob[at:at + 4])
        index = json.loads(blob[at + 4:at + 4 + n])
        at += 4 + n
        files = [(str(name), int(size)) for name, size in index]
        if not {name for name, _ in files} <= set(FILES) or len({n for n, _ in files}) != len(files) \
                or at + sum(size for _, size in files) != len(blob) or ADAPTER_FILE not in dict(files):
            raise ValueError("index does not match the files")
    except (ValueError, TypeError, struct.error) as exc:
        raise LedgerError(errors.MARKET_BAD_REPORT, f"not a packed checkpoint: {exc}") from exc
    directory.mkdir(parents=True, exist_ok=True)
    for name, size in files:
        (directory / name).write_bytes(blob[at:at + size])
        at += size


def commit(out_dir: Path, total: int, every: int) -> TrainedWork:
    """Pack the boundary checkpoints a finished run left in `out_dir` and build its manifest."""
    found = {c.step: c.path for c in checkpoints.listing(out_dir / "checkpoints")}
    bounds, blobs = [], []
    for step in boundary_steps(total, every):
        if step not in found:
            raise LedgerError(errors.CHECKPOINT_MISMATCH, f"no checkpoint at boundary step {step} in {out_dir}")
        blob = pack(found[step])
        bounds.append(Boundary(step, params_hash(found[step]), hashlib.sha256(blob).digest()))
        blobs.append(blob)
    adapter = (out_dir / ADAPTER_FILE).read_bytes()
    manifest = Manifest(hashlib.sha256(adapter).digest(), every, tuple(bounds))
    return TrainedWork(adapter, manifest, [adapter, *blobs, manifest.encode()])


# -- the verifier's side --------------------------------------------------------------------------------

def segments(seed: bytes, check_id: int, n: int, k: int = SEGMENTS) -> list[int]:
    """`min(k, n)` distinct segment indices in 0..n-1, drawn from the check's block seed and its id."""
    return sample(n, tagged(b"train-segments", seed + struct.pack(">Q", check_id)), k)


def _fetch(fetch: Fetch, want: bytes) -> bytes:
    blob = fetch(want.hex())
    if hashlib.sha256(blob).digest() != want:
        raise LedgerError(errors.MARKET_BAD_REPORT, f"blob {want.hex()} has other bytes than its hash")
    return blob


def check_segments(spec: TrainSpec, records: Sequence[dict[str, Any]], base: BaseModel, fetch: Fetch,
                   check: dict[str, Any], work_dir: Path, tolerance: float = TRAIN_TOLERANCE) -> Verdict:
    """Re-run the segments the check's seed picks and compare (module docstring); every failure is a verdict."""
    try:
        return _check(spec, records, base, fetch, check, work_dir, tolerance)
    except LedgerError as exc:  # a missing blob, a malformed manifest or checkpoint, a checkpoint of another run
        return Verdict(False, f"{exc.code.name}: {exc.detail or exc.code.message}", bytes(32))
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        # torch refusing the trainer's checkpoint mid-run (an optimizer state of other shapes, say): the trainer's
        # data cannot be re-run, which fails its check rather than stopping the verifier's worker
        return Verdict(False, f"the segment cannot be re-run from the trainer's checkpoint: {exc!r:.200}", bytes(32))


def _check(spec: TrainSpec, records: Sequence[dict[str, Any]], base: BaseModel, fetch: Fetch,
           check: dict[str, Any], work_dir: Path, tolerance: float) -> Verdict:
    root, n = bytes.fromhex(check["root"]), int(check["boundaries"])
    manifest = Manifest.decode(_fetch(fetch, bytes.fromhex(check["manifest"])))
    steps = [b.step for b in manifest.boundaries]
    want = boundary_steps(total_steps(spec, records, base), spec.checkpoint_every)
    if manifest.every != spec.checkpoint_every or steps != want or len(steps) != n:
        return Verdict(False, f"the manifest's boundaries {steps[:4]}... are not this run's ({len(want)} at "
                              f"every {spec.checkpoint_every} steps, {n} on the ledger)", bytes(32))
    if manifest.adapter.hex() != check["digest"]:
        return Verdict(False, "the manifest names another adapter than the report", bytes(32))
    tree = manifest.tree()
    picked = segments(bytes.fromhex(check["seed"]), int(check["id"]), n)
    for i in sorted({j for s in picked for j in (s - 1, s) if j >= 0}):
        if not verify_proof(root, manifest.boundaries[i].leaf(), tree.proof(i)):
            return Verdict(False, f"boundary {i} (step {steps[i]}) is not under the reported root", bytes(32))
    last = manifest.boundaries[-1]
    adapter_dir = work_dir / "adapter"
    adapter_dir.mkdir(parents=True, exist_ok=True)
    (adapter_dir / ADAPTER_FILE).write_bytes(_fetch(fetch, manifest.adapter))
    if params_hash(adapter_dir) != last.params:
        return Verdict(False, f"the delivered adapter is not the last boundary's (step {last.step})", bytes(32))
    results, notes = [], []
    for s in picked:
        ok, why, rerun = _segment(spec, records, base, fetch, manifest, s, work_dir / f"segment-{s}", tolerance)
        if not ok:
            return Verdict(False, why, bytes(32))
        results.append(rerun)
        notes.append(why)
    return Verdict(True, f"{len(picked)} of {n} segments re-run: " + "; ".join(notes),
                   hashlib.sha256(b"".join(results)).digest())


def _segment(spec: TrainSpec, records: Sequence[dict[str, Any]], base: BaseModel, fetch: Fetch, manifest: Manifest,
             s: int, where: Path, tolerance: float) -> tuple[bool, str, bytes]:
    """Re-run segment `s` in `where` from its start checkpoint; (passed, why, the re-run's params hash)."""
    shutil.rmtree(where, ignore_errors=True)
    start, end = (manifest.boundaries[s - 1] if s else None), manifest.boundaries[s]
    label = f"steps {start.step if start else 0}..{end.step}"
    if start is not None:
        into = where / "checkpoints" / f"{checkpoints.PREFIX}{start.step:06d}"
        unpack(_fetch(fetch, start.checkpoint), into)
        if params_hash(into) != start.params:
            return False, f"{label}: the start checkpoint does not hold the parameters its boundary names", b""
        if [c.step for c in checkpoints.listing(into.parent)] != [start.step]:
            return False, f"{label}: the start checkpoint is not at step {start.step}", b""
    reported = where / "reported"
    unpack(_fetch(fetch, end.checkpoint), reported)
    if params_hash(reported) != end.params:
        return False, f"{label}: the end checkpoint does not hold the parameters its boundary names", b""
    result = train(spec, records, base, where, until=end.step)
    again = params_hash(result.out_dir)
    if again == end.params:
        return True, f"{label} bit for bit", again
    ok, why = tensors_match((reported / ADAPTER_FILE).read_bytes(), (result.out_dir / ADAPTER_FILE).read_bytes(),
                            tolerance)
    return ok, f"{label}: {why}", again
