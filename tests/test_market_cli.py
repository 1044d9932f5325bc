"""`ailedger market …` and `ailedger provider start|status` end to end on an embedded data directory.

The consumer posts a training order for the tiny model on Datanet `facts` v1 (the job spec uploaded as a
blob); `provider start` with no other set-up registers the worker as a provider with an offer for this
machine, bids, wins the lease, trains with the real ModelFactory, reports the adapter's hash, is paid for
the reported blocks and stops once nothing is left to do. The reads then agree with the ledger, and the
refusals the CLI can see beforehand cost no fee. The same reads are served over HTTP.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load as load_tensors

from ailedger.api.client import HttpClient
from ailedger.cli.backend import Embedded
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.basemodel import describe
from ailedger.factory.job import job_spec_blob
from ailedger.factory.train import TrainSpec
from ailedger.provider.verify import tensors_match
from tests.conftest_api import serve_in_thread
from tests.test_cli import as_json, fails, home, run
from tests.test_model_train_cli import SENTENCES, balance, chain

__all__ = ["chain", "home"]


def spec_file(chain: dict[str, Any]) -> Path:
    spec = TrainSpec(base=str(chain["tiny"]), datanet="facts", version=1, snapshot_root=chain["root"], rank=4,
                     alpha=8, epochs=1, lr=0.02, batch_size=2, max_len=48, seed=3, checkpoint_every=3)
    path = Path(chain["tmp"]) / "spec.json"
    path.write_bytes(job_spec_blob(spec, describe(chain["tiny"]).weights_hash, len(SENTENCES)))
    return path


def test_a_local_provider_wins_trains_reports_and_is_paid(chain: dict[str, Any], home: Path) -> None:
    fails("market", "order", "--from", "builder", "--cpu", "1", "--memory", "1", "--max-price", "0.01",
          code="bad_argument", exit=2)
    posted = as_json("market", "order", "--from", "builder", "--cpu", "1", "--memory", "1", "--max-price", "0.01",
                     "--duration", "6", "--window", "5", "--spec-file", str(spec_file(chain)))
    (order,) = posted["orders"]
    assert order["status"] == "bidding" and order["escrow"] == 60_000 and order["needs"]["class"] == "cpu"
    fails("market", "bid", str(order["id"]), "0.02", "--from", "worker", code="bid_above_max")
    fails("market", "bid", str(order["id"]), "0.005", "--from", "stranger", code="provider_not_registered")
    worker_before, nonce_before = balance("worker"), int(as_json("account", "show", "worker")["nonce"])

    out = as_json("provider", "start", "--from", "worker", "--report-every", "2",
                  "--work-dir", str(chain["tmp"] / "prov"))
    assert any(line.startswith("registered as a provider") for line in out["log"]), out
    assert any(line.startswith("trained lease") for line in out["log"]), out["log"]
    (lease,) = out["leases"]
    assert lease["status"] == "ended" and lease["reports"] >= 2 and lease["price"] == 1_000
    assert out["earned"] == lease["paid"] == 1_000 * (lease["last_report"] - lease["start"]) > 0
    adapter = (chain["tmp"] / "prov" / "train" / f"lease-{lease['id']}" / "adapter_model.safetensors").read_bytes()
    assert load_tensors(adapter) and tensors_match(adapter, adapter)[0]
    assert lease["digest"] == hashlib.sha256(adapter).hexdigest()

    status = as_json("provider", "status", "worker")
    assert status["earned"] == out["earned"] and status["provider"]["reputation_bps"] > 5_000
    bond = status["provider"]["bond"]
    sent = int(as_json("account", "show", "worker")["nonce"]) - nonce_before  # each transaction paid min_fee
    assert balance("worker") == worker_before - bond + out["earned"] - 1_000 * sent
    done = as_json("market", "orders", "--id", str(order["id"]))["orders"][0]
    assert done["status"] == "done" and done["escrow"] == 0
    stats = as_json("market", "stats")
    (cpu,) = stats["classes"]
    assert cpu["class"] == "cpu" and cpu["max_top_share_bps"] > 0 and cpu["now"]["total_units"] == 0
    assert stats["cap_bps"] == 2_500
    fails("market", "close", str(lease["id"]), "--from", "stranger", code="not_lease_party")
    fails("market", "orders", "--status", "nope", code="bad_request")
    fails("market", "leases", "--status", "nope", code="bad_request")
    for args in (("market", "offers"), ("market", "orders"), ("market", "leases"), ("market", "stats"),
                 ("market", "checks"), ("provider", "status", "worker")):
        assert "Traceback" not in run(*args).stdout

    embedded = Embedded(home / "data", write=False)
    try:
        with serve_in_thread(embedded.node) as url, HttpClient(url) as client:
            for view in ("providers", "orders", "leases", "checks", "stats"):
                assert client.market(view) == embedded.market(view)
            assert client.market("leases", {"id": str(lease["id"])})["leases"][0]["digest"] == lease["digest"]
            for view, query, code in (("nope", {}, errors.BAD_REQUEST), ("orders", {"id": "x"}, errors.BAD_MARKET_ID),
                                      ("leases", {"id": "99"}, errors.LEASE_NOT_FOUND)):
                with pytest.raises(LedgerError) as exc:
                    client.market(view, query)
                assert exc.value.code is code
    finally:
        embedded.close()
    assert json.dumps(out)  # the --json document is plain JSON


def test_the_market_by_hand_report_withdraw_close_cancel_retire(home: Path) -> None:
    for k in ("consumer", "prov"):
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "market-cli", "--alloc", "consumer=100", "--alloc", "prov=10")
    run("market", "register", "--from", "prov", "--bond", "2")  # block 1
    offered = as_json("market", "offer", "--from", "prov", "--cpu", "8", "--memory", "32", "--price-per-block",
                      "0.01")  # block 2
    assert offered["providers"][0]["offer"]["cpu_cores"] == 8 and offered["providers"][0]["bond"] == 2_000_000
    fails("market", "offer", "--from", "consumer", "--cpu", "1", "--memory", "1", "--price-per-block", "1",
          code="provider_not_registered")
    order = as_json("market", "order", "--from", "consumer", "--cpu", "2", "--memory", "4", "--max-price", "0.02",
                    "--window", "2", "--duration", "10", "--spec-hash", "cd" * 32)["orders"][0]  # block 3
    other = as_json("market", "order", "--from", "consumer", "--cpu", "2", "--memory", "4", "--max-price", "0.02",
                    "--window", "5", "--duration", "10", "--spec-hash", "ce" * 32)["orders"][-1]  # block 4
    won = as_json("market", "bid", str(order["id"]), "0.01", "--from", "prov")["orders"][0]  # block 5: window end
    assert (won["status"], won["bids"]) == ("leased", [])  # the window closed at the end of its block
    fails("market", "bid", str(order["id"]), "0.01", "--from", "prov", code="order_not_bidding")
    (lease,) = as_json("market", "leases", "--status", "active")["leases"]
    assert lease["provider"] == as_json("keys", "show", "prov")["address"] and lease["end"] == lease["start"] + 10
    fails("market", "report", str(lease["id"]), "--from", "consumer", "--digest", "11" * 32, code="not_lease_party")
    reported = as_json("market", "report", str(lease["id"]), "--from", "prov", "--digest", "11" * 32)
    owed = reported["leases"][0]["owed"]
    assert owed == 10_000 * (reported["leases"][0]["last_report"] - lease["start"]) > 0
    paid = as_json("market", "withdraw", str(lease["id"]), "--from", "prov")["leases"][0]
    assert (paid["paid"], paid["owed"]) == (owed, 0)
    fails("market", "retire", "--from", "prov", code="provider_has_leases")
    fails("market", "close", str(lease["id"]), "--from", "prov", code="not_lease_party")
    closed = as_json("market", "close", str(lease["id"]), "--from", "consumer")["leases"][0]
    assert closed["status"] == "closed"
    assert as_json("market", "orders", "--id", str(order["id"]))["orders"][0]["escrow"] == 0
    cancelled = as_json("market", "cancel", str(other["id"]), "--from", "consumer")["orders"][0]
    assert (cancelled["status"], cancelled["escrow"]) == ("cancelled", 0)
    fails("market", "check-result", "1", "--pass", "--from", "prov", code="check_not_found")
    assert as_json("market", "withdraw-offer", "--from", "prov")["providers"][0]["offer"] is None
    assert as_json("market", "offers")["providers"][0]["offer"] is None
    before = balance("prov")
    retired = as_json("market", "retire", "--from", "prov")["providers"][0]
    assert retired["bond"] == 0 and balance("prov") == before + 2_000_000 - 1_000
    assert "cpu" in run("market", "stats").stdout
