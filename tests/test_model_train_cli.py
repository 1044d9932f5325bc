"""`ailedger model train` end to end on the tiny model: a Datanet snapshot trained on as a paid compute job.

A Datanet gets a few records accepted by a validator and frozen as version 1; the tiny Llama model
(`factory.tiny`) is the base, registered by its weights hash. Training posts a job (budget
escrowed), the worker claims it, trains, delivers the adapter hash and the poster accepts it, with
every balance exact. An interrupt leaves the job claimed and its checkpoints on disk; the same
command resumes them. Refusals are codes and leave the ledger as it was.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ailedger.chain import writerlock
from ailedger.cli.backend import open_backend
from ailedger.cli.demo import running_node
from ailedger.cli.keys import key_dir
from ailedger.cli.output import Settings
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.job import STATE_FILE, run_training_job
from ailedger.factory.tiny import build_tiny
from ailedger.factory.train import TrainSpec, adapter_hash
from tests.test_cli import as_json, fails, home, run
from tests.test_datanet_cli import advance_to, ledger_now, write

__all__ = ["home"]

FEE = 1_000
KEYS = ("owner", "builder", "worker", "stranger", "validator")  # advance_to: stranger pays owner
SENTENCES = [
    "The ledger records who contributed each piece of data.",
    "A datanet is a versioned set of accepted records.",
    "Contributors are paid when models trained on their records are used.",
    "Validators review records and vote on what passes.",
    "Every fee is split exactly between contributors, owners and providers.",
    "The quick brown fox jumps over the lazy dog.",
]
HYPER = ("--rank", "4", "--alpha", "8", "--epochs", "4", "--lr", "0.02", "--batch-size", "2", "--max-len", "48",
         "--seed", "3", "--checkpoint-every", "3")  # 6 records, batches of 2: 3 steps an epoch, 12 steps


def balance(name: str) -> int:
    return int(as_json("account", "show", name)["balance"])


@pytest.fixture
def chain(home: Path, tmp_path: Path) -> dict[str, Any]:
    """Datanet `facts` v1 with SENTENCES accepted; the tiny base built and registered; the worker staked."""
    for k in KEYS:
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "train-cli", "--alloc", "owner=100", "--alloc", "builder=100",
        "--alloc", "worker=10", "--alloc", "stranger=10", "--alloc", "validator=20",
        "--param", "datanet_min_window_blocks=1")
    run("tx", "stake", "--from", "validator", "--amount", "5")
    run("tx", "stake", "--from", "worker", "--amount", "2")
    run("datanet", "create", "facts", "--from", "owner", "--topic", "ledger facts", "--stake-per-record", "0.01",
        "--quorum", "1", "--window", "1")
    run("datanet", "register-validator", "facts", "--from", "validator")
    records = write(tmp_path / "facts.jsonl", [{"text": t} for t in SENTENCES])
    assert as_json("datanet", "contribute", "facts", str(records), "--from", "owner")["staked"] == len(SENTENCES)
    pending = as_json("datanet", "review", "facts", "--limit", "100")["records"]
    run("datanet", "vote", "facts", "accept", *[r["hash"] for r in pending], "--from", "validator")
    advance_to(max(r["window_end"] for r in pending) + 1)
    snap = as_json("datanet", "snapshot", "facts", "--from", "owner")
    assert snap["count"] == len(SENTENCES)
    tiny = build_tiny(tmp_path / "tiny", seed=5)
    base = as_json("model", "register-base", "tiny", "--from", "builder", "--dir", str(tiny))
    return {"root": snap["root"], "tiny": tiny, "base": base, "tmp": tmp_path}


def train_args(chain: dict[str, Any], out: Path, *extra: str, version: str = "1", worker: str = "worker",
               budget: str = "5") -> list[str]:
    return ["model", "train", "--datanet", "facts", "--version", version, "--base", str(chain["tiny"]), *HYPER,
            "--out", str(out), "--from", "builder", "--worker", worker, "--budget", budget, "--deadline", "100",
            *extra]


def test_train_publish_show(chain: dict[str, Any]) -> None:
    out = chain["tmp"] / "adapter"
    b0, w0 = balance("builder"), balance("worker")
    done = as_json(*train_args(chain, out))
    assert done["status"] == "paid" and done["budget"] == done["budget_paid"] == 5_000_000
    assert done["steps"] == 12 and not done["resumed"] and done["records"] == len(SENTENCES)
    # poster: budget + post + accept fees; worker: the budget less claim + submit fees
    assert balance("builder") == b0 - 5_000_000 - 2 * FEE
    assert balance("worker") == w0 + 5_000_000 - 2 * FEE
    job = as_json("job", "show", done["job_id"])
    assert job["kind"] == "train" and job["status"] == "paid" and job["result_hash"] == done["adapter_hash"]
    assert job["spec_hash"] == done["spec_hash"] and job["worker"] == as_json("keys", "show", "worker")["address"]
    assert job["posted"] <= job["claimed"] <= job["delivered"] <= job["closed"]  # open, claimed, delivered, paid
    assert json.loads((out / STATE_FILE).read_text())["job_id"] == done["job_id"]

    card = json.loads((out / "model_card.json").read_text())
    assert card["adapter_hash"] == adapter_hash(out) == done["adapter_hash"]
    assert card["base"]["weights_hash"] == chain["base"]["weights_hash"] == done["base_weights_hash"]
    assert card["datanet"] == {"name": "facts", "version": 1, "root": chain["root"]}
    assert len(card["checkpoints"]) >= 3 and (out / "adapter_model.safetensors").is_file()
    assert card["hyperparams"]["schedule"] == "cosine" and card["hyperparams"]["loss_on"] == "assistant"
    assert card["schedule"]["warmup_steps"] == 0 and card["schedule"]["lrs"][0] == 0.02  # 12 steps: no warm-up

    again = as_json(*train_args(chain, out))  # a finished job is only summarised: nothing is sent
    assert again["resumed"] and again["job_id"] == done["job_id"] and again["adapter_hash"] == done["adapter_hash"]
    assert balance("builder") == b0 - 5_000_000 - 2 * FEE

    published = as_json("model", "publish", "facts-lora", "--from", "builder", "--base", "tiny", "--adapter-dir",
                        str(out), "--datanet", "facts", "--version", "1", "--price", "0.002", "--job", done["job_id"])
    shown = as_json("model", "show", "facts-lora")
    assert shown["adapter_hash"] == published["adapter_hash"] == done["adapter_hash"]
    assert shown["job_id"] == done["job_id"] and shown["datanet"]["snapshot_root"] == chain["root"]
    assert shown["base"]["weights_hash"] == chain["base"]["weights_hash"]
    assert shown["hyperparams_hash"] == done["hyperparams_hash"]
    text = run(*train_args(chain, out)).stdout
    assert done["job_id"] in text and "model publish" in text


def test_interrupt_then_same_command_resumes(chain: dict[str, Any], home: Path) -> None:
    out = chain["tmp"] / "adapter"
    s = Settings(home=home)
    keys = key_dir(s)
    poster, worker = keys.unlock("builder", "pw"), keys.unlock("worker", "pw")
    spec = TrainSpec(base=str(chain["tiny"]), datanet="facts", version=1, snapshot_root="", rank=4, alpha=8, lr=0.02,
                     epochs=4, batch_size=2, max_len=48, seed=3, checkpoint_every=3)

    def ctrl_c_at_5(step: int, total: int, loss: float) -> None:
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # honoured after the step: a checkpoint at 5, the job stays claimed

    with open_backend(s, None, None, write=True) as backend, pytest.raises(LedgerError) as exc:
        run_training_job(backend, poster, worker, spec, out, 5_000_000, 100, on_step=ctrl_c_at_5)
    assert exc.value.code == errors.INTERRUPTED
    jid = json.loads((out / STATE_FILE).read_text())["job_id"]
    assert as_json("job", "show", jid)["status"] == "claimed"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000003", "step-000005"]

    done = as_json(*train_args(chain, out))
    assert done["resumed"] and done["job_id"] == jid and done["status"] == "paid" and done["steps"] == 12
    assert len(as_json("job", "list")["jobs"]) == 1

    fresh = as_json(*train_args(chain, chain["tmp"] / "fresh"))  # uninterrupted: the same adapter, bit for bit
    assert fresh["adapter_hash"] == done["adapter_hash"] and fresh["job_id"] != jid
    fails(*train_args(chain, out, "--lr", "0.01"), code="train_job_mismatch")


def test_refusals_change_nothing(chain: dict[str, Any]) -> None:
    tmp = chain["tmp"]
    before = ledger_now()
    fails(*train_args(chain, tmp / "a"), "--version", "7", code="version_not_found")
    fails(*train_args(chain, tmp / "b", worker="stranger"), code="worker_stake_too_low")
    fails(*train_args(chain, tmp / "c", worker="builder"), code="own_job")
    fails(*train_args(chain, tmp / "d", budget="1000"), code="insufficient_balance")
    fails(*train_args(chain, tmp / "e", "--rank", "0"), code="bad_train_spec")
    for bad in (("--schedule", "step"), ("--warmup-steps", "-1"), ("--min-lr-ratio", "2"), ("--loss-on", "user")):
        assert "Invalid value" in run(*train_args(chain, tmp / "e", *bad), exit=2).output
    fails(*train_args(chain, tmp / "f"), "--base", str(tmp / "nowhere"), code="base_model_unavailable")
    (tmp / "g").mkdir()
    (tmp / "g" / STATE_FILE).write_text("{ not json")
    fails(*train_args(chain, tmp / "g"), code="train_state_corrupt")
    assert ledger_now() == before
    assert as_json("job", "list")["jobs"] == []
    for d in "abcdef":
        assert not (tmp / d / STATE_FILE).exists()


def test_train_over_http(chain: dict[str, Any], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writerlock, "WRITER_WAIT_S", 0.2)
    with running_node(home, home / "data", tmp_path / "node.log", 0.05) as url:
        node = ("--node", url)
        b0 = as_json("account", "show", "builder", *node)
        fails(*train_args(chain, tmp_path / "x", worker="stranger"), *node, code="worker_stake_too_low")
        assert as_json("account", "show", "builder", *node)["nonce"] == b0["nonce"]  # nothing was sent
        assert as_json("job", "list", *node)["jobs"] == []
        w0 = int(as_json("account", "show", "worker", *node)["balance"])
        done = as_json(*train_args(chain, tmp_path / "http", "--schedule", "linear", "--warmup-steps", "2",
                                   "--min-lr-ratio", "0.5", "--loss-on", "all", budget="2"), *node)
        assert done["status"] == "paid" and done["budget_paid"] == 2_000_000
        card = json.loads((tmp_path / "http" / "model_card.json").read_text())
        assert {k: card["hyperparams"][k] for k in ("schedule", "warmup_steps", "min_lr_ratio", "loss_on")} == {
            "schedule": "linear", "warmup_steps": 2, "min_lr_ratio": 0.5, "loss_on": "all"}
        assert card["schedule"]["lrs"][:3] == pytest.approx([0.02 / 3, 0.04 / 3, 0.02])
        assert int(as_json("account", "show", "worker", *node)["balance"]) == w0 + 2_000_000 - 2 * FEE
        assert as_json("job", "show", done["job_id"], *node)["result_hash"] == done["adapter_hash"]
    assert as_json("chain", "verify")["ok"]
