"""Training spot checks on the ledger: report_training commits a root, the check keeps its block seed, and end to
end a provider's honest training passes a drawn check while a lazy provider's faked report fails and is slashed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ailedger.cli.backend import Embedded
from ailedger.factory.basemodel import describe
from ailedger.factory.job import job_spec_blob
from ailedger.factory.tiny import build_tiny
from ailedger.factory.train import TrainSpec
from ailedger.market import book, views
from ailedger.market import payloads as p
from ailedger.market.service import market_json
from ailedger.market.state import Kind
from ailedger.provider import spotcheck as sc
from ailedger.serving.synthetic import random_adapter
from tests.market_sim import CONSUMER, PROVIDERS, fails_cleanly, lease_of, market, order
from tests.models_sim import assert_replay_matches
from tests.test_cli import as_json, home, run
from tests.test_datanet_cli import advance_to, write
from tests.test_model_train_cli import SENTENCES

__all__ = ["home"]

DIGEST, ROOT, MANIFEST = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


def _leased(sim: Any, provider: int = 0, **kw: Any) -> int:
    sim.ok((CONSUMER, p.POST_ORDER, order(**kw)))
    oid = len(views.orders(sim.state))
    sim.ok((PROVIDERS[provider], p.BID, p.Bid(oid, 50)))
    sim.until(views.get_order(sim.state, oid).window_end)  # type: ignore[union-attr]
    return lease_of(sim, oid).id


def test_report_training_commits_a_root_and_the_check_keeps_its_seed() -> None:
    sim = market({"market_check_min_bps": 10_000, "market_check_max_bps": 10_000})
    lid = _leased(sim)
    sim.ok((PROVIDERS[0], p.REPORT_TRAINING, p.ReportTraining(lid, DIGEST, ROOT, 4, MANIFEST)))
    lease = views.get_lease(sim.state, lid)
    assert lease is not None and lease.digest == DIGEST and lease.reports == 1
    assert book.train_root(sim.state, lid, DIGEST) == book.TrainRoot(ROOT, 4, MANIFEST)
    sim.block()  # the draw, with the seed of the block holding the report
    (check,) = views.checks(sim.state)
    seed = book.check_seed(sim.state, check.id)
    assert seed is not None and len(seed) == 32 and any(seed)
    (doc,) = market_json(sim.state, sim.height, "checks")["checks"]
    assert doc["seed"] == seed.hex() and doc["root"] == ROOT.hex() and doc["boundaries"] == 4
    assert doc["manifest"] == MANIFEST.hex() and doc["digest"] == DIGEST.hex()
    # the same digest again with the same commitment is a plain repeat report; another root for it is refused
    sim.ok((PROVIDERS[0], p.REPORT_TRAINING, p.ReportTraining(lid, DIGEST, ROOT, 4, MANIFEST)))
    fails_cleanly(sim, PROVIDERS[0], p.REPORT_TRAINING, p.ReportTraining(lid, DIGEST, b"\x09" * 32, 4, MANIFEST),
                  "market_bad_report")
    assert_replay_matches(sim)


def test_report_training_refusals_leave_state_as_it_was() -> None:
    sim = market()
    lid = _leased(sim)
    fails_cleanly(sim, PROVIDERS[1], p.REPORT_TRAINING, p.ReportTraining(lid, DIGEST, ROOT, 4, MANIFEST),
                  "not_lease_party")
    fails_cleanly(sim, PROVIDERS[0], p.REPORT_TRAINING, p.ReportTraining(99, DIGEST, ROOT, 4, MANIFEST),
                  "lease_not_found")
    for bad in (p.ReportTraining(lid, DIGEST, bytes(32), 4, MANIFEST), p.ReportTraining(lid, DIGEST, ROOT, 0, MANIFEST),
                p.ReportTraining(lid, DIGEST, ROOT, 4, bytes(32)), p.ReportTraining(lid, bytes(32), ROOT, 4, MANIFEST)):
        fails_cleanly(sim, PROVIDERS[0], p.REPORT_TRAINING, bad, "market_bad_report")
    serve = _leased(sim, 1, kind=Kind.SERVE, unit=p.Unit.KTOKENS)  # another operator: the cap allows it
    fails_cleanly(sim, PROVIDERS[1], p.REPORT_TRAINING, p.ReportTraining(serve, DIGEST, ROOT, 4, MANIFEST),
                  "market_bad_report")


# -- end to end: `provider start` trains and reports, a second provider re-runs the drawn segments ------------

def facts_v1(tmp: Path, texts: list[str], *init: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A chain (`init`: more chain init arguments) whose Datanet `facts` v1 holds `texts`, accepted by `validator`
    (keys owner, validator and stranger, made here); returns the snapshot and the records as reviewed."""
    for k in ("owner", "validator", "stranger"):
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "spotcheck", "--alloc", "owner=100", "--alloc", "validator=20",
        "--alloc", "stranger=10", "--param", "datanet_min_window_blocks=1", *init)
    run("tx", "stake", "--from", "validator", "--amount", "5")
    run("datanet", "create", "facts", "--from", "owner", "--topic", "ledger facts", "--stake-per-record", "0.01",
        "--quorum", "1", "--window", "1")
    run("datanet", "register-validator", "facts", "--from", "validator")
    run("datanet", "contribute", "facts", str(write(tmp / "facts.jsonl", [{"text": t} for t in texts])),
        "--from", "owner")
    pending = as_json("datanet", "review", "facts", "--limit", "100")["records"]
    run("datanet", "vote", "facts", "accept", *[r["hash"] for r in pending], "--from", "validator")
    advance_to(max(r["window_end"] for r in pending) + 1)
    return as_json("datanet", "snapshot", "facts", "--from", "owner"), pending


def _chain(tmp: Path) -> dict[str, Any]:
    for k in ("builder", "worker", "checker", "faker"):
        run("keys", "new", k)
    snap, _ = facts_v1(tmp, SENTENCES, "--alloc", "builder=100", "--alloc", "worker=10", "--alloc", "checker=10",
                       "--alloc", "faker=10", "--param", "market_check_min_bps=10000",
                       "--param", "market_check_max_bps=10000")
    tiny = build_tiny(tmp / "tiny", seed=5)
    spec = TrainSpec(base=str(tiny), datanet="facts", version=1, snapshot_root=snap["root"], rank=4, alpha=8,
                     epochs=2, lr=0.02, batch_size=2, max_len=48, seed=3, checkpoint_every=1)  # 6 steps, 6 boundaries
    (tmp / "spec.json").write_bytes(job_spec_blob(spec, describe(tiny).weights_hash, len(SENTENCES)))
    return {"tiny": tiny, "spec": tmp / "spec.json"}


def test_an_honest_training_passes_its_segment_checks_and_a_faked_one_is_slashed(home: Path, tmp_path: Path) -> None:
    c = _chain(tmp_path)
    order_args = ["market", "order", "--from", "builder", "--cpu", "1", "--memory", "1", "--max-price", "0.01",
                  "--duration", "6", "--window", "3", "--spec-file", str(c["spec"])]
    run("market", "register", "--from", "checker", "--bond", "1", "--operator", "checker")  # a verifier, no offer
    (honest,) = as_json(*order_args)["orders"]
    out = as_json("provider", "start", "--from", "worker", "--report-every", "2", "--work-dir", str(tmp_path / "w"))
    assert any(line.startswith("trained lease") and "6 boundaries" in line for line in out["log"]), out["log"]
    (lease,) = out["leases"]
    checks = as_json("market", "checks", "--status", "pending")["checks"]
    assert checks and {x["lease"] for x in checks} == {lease["id"]} and all(x["boundaries"] == 6 for x in checks)
    out = as_json("provider", "start", "--from", "checker", "--steps", "1", "--work-dir", str(tmp_path / "c"))
    answered = [line for line in out["log"] if line.startswith("check ")]
    assert answered and all("passed (2 of 6 segments re-run" in line for line in answered), out["log"]
    assert all("bit for bit" in line for line in answered)
    done = as_json("market", "checks")["checks"]
    assert {x["status"] for x in done if x["lease"] == lease["id"]} == {"passed"}
    assert as_json("market", "orders", "--id", str(honest["id"]))["orders"][0]["status"] == "done"

    # a lazy provider: wins the next order, trains nothing, uploads a random adapter and a manifest of made-up
    # boundaries under a root of its own
    run("market", "register", "--from", "faker", "--bond", "1", "--operator", "faker")
    run("market", "offer", "--from", "faker", "--cpu", "4", "--memory", "8", "--price-per-block", "0.0005")
    (lazy,) = as_json(*order_args)["orders"]
    run("market", "bid", str(lazy["id"]), "0.0005", "--from", "faker")
    advance_to(lazy["window_end"] + 1)
    (leased,) = as_json("market", "leases", "--status", "active")["leases"]
    assert leased["order"] == lazy["id"] and leased["provider"] == as_json("keys", "show", "faker")["address"]
    from ailedger.factory.basemodel import load_base

    adapter = (random_adapter(load_base(c["tiny"]), tmp_path / "fake", seed=9) / "adapter_model.safetensors")
    adapter_bytes = adapter.read_bytes()
    params = sc.params_hash(adapter.parent)
    bounds = tuple(sc.Boundary(s, params if s == 6 else hashlib.sha256(b"%d" % s).digest(),
                               hashlib.sha256(b"ckpt %d" % s).digest()) for s in range(1, 7))
    manifest = sc.Manifest(hashlib.sha256(adapter_bytes).digest(), 1, bounds)
    data = Embedded(home / "data", write=True)
    try:
        data.put_blobs([adapter_bytes, manifest.encode()])  # no checkpoint blobs: there was no training
    finally:
        data.close()
    run("market", "report", str(leased["id"]), "--from", "faker", "--digest", manifest.adapter.hex(),
        "--root", manifest.tree().root().hex(), "--boundaries", "6", "--manifest",
        hashlib.sha256(manifest.encode()).hexdigest())
    run("tx", "transfer", "--from", "stranger", "--to", "owner", "--amount", "0.000001")  # one block: the draw
    (check,) = as_json("market", "checks", "--status", "pending")["checks"]
    assert check["lease"] == leased["id"] and check["root"] == manifest.tree().root().hex()
    verifier = "checker" if check["verifier"] == as_json("keys", "show", "checker")["address"] else "worker"
    out = as_json("provider", "start", "--from", verifier, "--steps", "1", "--work-dir", str(tmp_path / verifier))
    assert any(line.startswith(f"check {check['id']}") and "FAILED" in line for line in out["log"]), out["log"]
    failed = as_json("market", "leases", "--id", str(leased["id"]))["leases"][0]
    assert failed["status"] == "failed_check"
    assert as_json("market", "providers", "faker")["providers"][0]["bond"] == 900_000  # 10% of its 1-unit bond
    assert json.dumps(out)  # the --json document is plain JSON
