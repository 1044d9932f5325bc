"""`ailedger model` and `ailedger job` end to end: the embedded data directory and a real node over HTTP.

A Datanet with an (empty) snapshot stands in for training data; adapters are small safetensors files
written here with NumPy, with a model card naming the base and the snapshot as `factory.train` does.
Every refusal names its code and leaves the ledger (and the blob store) as it was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from safetensors.numpy import save_file

from ailedger.api.client import HttpClient
from ailedger.chain import writerlock
from ailedger.chain.blobstore import BlobStore
from ailedger.cli.demo import running_node
from ailedger.factory.tensors import read_header, tensors_hash
from tests.test_cli import as_json, fails, home, run
from tests.test_datanet_cli import ledger_now

__all__ = ["home"]

KEYS = ("curator", "builder", "worker", "stranger")
HYPER = {"rank": 4, "alpha": 8, "lr": 0.001, "epochs": 1, "seed": 0}
FEE = 1_000  # the chain's default min_fee, in micro-units


def init_chain() -> None:
    for k in KEYS:
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "models-cli", "--alloc", "curator=100", "--alloc", "builder=100",
        "--alloc", "worker=10", "--alloc", "stranger=10", "--param", "datanet_min_window_blocks=1")


def datanet_v1(*node: str) -> str:
    """Datanet `news` with version 1 (no records: enough for provenance); returns its root."""
    run("datanet", "create", "news", "--from", "curator", "--topic", "news", "--stake-per-record", "0.01",
        "--quorum", "1", "--window", "2", *node)
    return str(as_json("datanet", "snapshot", "news", "--from", "curator", *node)["root"])


def base_dir(path: Path) -> Path:
    """A tiny Llama-shaped base model directory: config.json and safetensors weights."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                                  "max_position_embeddings": 128, "hidden_size": 8}))
    rng = np.random.default_rng(0)
    save_file({"model.embed_tokens.weight": rng.standard_normal((16, 8)).astype(np.float32),
               "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((8, 8)).astype(np.float32)},
              str(path / "model.safetensors"))
    return path


def adapter_dir(path: Path, seed: int, base_hash: str, datanet: dict[str, Any], rank: int = 4) -> Path:
    """What `factory.train` writes: LoRA tensors, adapter_config.json and a model card naming base and data."""
    path.mkdir()
    rng = np.random.default_rng(seed)
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{prefix}.lora_A.weight": rng.standard_normal((rank, 8)).astype(np.float32),
               f"{prefix}.lora_B.weight": rng.standard_normal((8, rank)).astype(np.float32)},
              str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({"r": rank, "target_modules": ["q_proj"]}))
    hyper = {**HYPER, "rank": rank, "seed": seed}
    card = {"kind": "ailedger/adapter-card/v1", "base": {"name": "tiny", "weights_hash": base_hash},
            "datanet": datanet, "hyperparams": hyper,
            "hyperparams_hash": hashlib.sha256(json.dumps(hyper, sort_keys=True, separators=(",", ":"))
                                               .encode()).hexdigest(),
            "adapter_hash": tensors_hash(read_header(path / "adapter_model.safetensors"))}
    (path / "model_card.json").write_text(json.dumps(card, indent=2))
    return path


def balance(name: str, *node: str) -> int:
    return int(as_json("account", "show", name, *node)["balance"])


def explicit_base(name: str, weights: str, *node: str) -> dict[str, Any]:
    return dict(as_json("model", "register-base", name, "--from", "builder", "--weights-hash", weights,
                        "--config-hash", "cc" * 32, "--arch", "LlamaForCausalLM", "--params", "1000",
                        "--context", "128", "--licence", "apache-2.0", *node))


@pytest.fixture
def registry(home: Path, tmp_path: Path) -> dict[str, Any]:
    """A chain with Datanet news v1 and base `tiny` registered from a directory; returns what tests need."""
    init_chain()
    root = datanet_v1()
    base = as_json("model", "register-base", "tiny", "--from", "builder", "--dir", str(base_dir(tmp_path / "tiny")),
                   "--licence", "apache-2.0")
    datanet = {"name": "news", "version": 1, "root": root}
    return {"root": root, "base": base, "datanet": datanet, "tmp": tmp_path}


def publish(path: Path, *extra: str, name: str = "legal", sender: str = "builder", base: str = "tiny",
            version: str = "1", datanet: str = "news", price: str = "0.003") -> list[str]:
    return ["model", "publish", name, "--from", sender, "--base", base, "--adapter-dir", str(path),
            "--datanet", datanet, "--version", version, "--price", price, *extra]


def test_models_and_jobs_embedded(registry: dict[str, Any]) -> None:
    tmp, base = registry["tmp"], registry["base"]
    assert base["architecture"] == "LlamaForCausalLM" and base["params_count"] == 16 * 8 + 8 * 8
    assert base["context_length"] == 128 and base["tx"]["receipt"]["ok"]
    assert as_json("model", "list", "--bases")["bases"][0]["weights_hash"] == base["weights_hash"]

    a1 = adapter_dir(tmp / "a1", 1, base["weights_hash"], registry["datanet"])
    v1 = as_json(*publish(a1))
    card = (a1 / "model_card.json").read_bytes()
    assert v1["id"] == "legal@1" and v1["owner"] == as_json("keys", "show", "builder")["address"]
    assert v1["base"] == {"name": "tiny", "weights_hash": base["weights_hash"]}
    assert v1["datanet"] == {"name": "news", "version": 1, "snapshot_root": registry["root"], "records": 0}
    assert v1["adapter_hash"] == json.loads(card)["adapter_hash"] and v1["rank"] == 4
    assert v1["card_hash"] == hashlib.sha256(card).hexdigest() and v1["price_per_1k_tokens"] == 3_000
    blobs = BlobStore(tmp / "home [x]" / "data" / "blobs")
    assert blobs.get(bytes.fromhex(v1["card_hash"])) == card
    assert json.loads(blobs.get(bytes.fromhex(v1["hyperparams_hash"])))["seed"] == 1
    blobs.close()

    # a training job: posted, claimed, delivered, accepted; the budget moves exactly
    spec = tmp / "spec.json"
    spec.write_text(json.dumps({"datanet": "news", "version": 1, "base": "tiny", "rank": 8}))
    run("tx", "stake", "--from", "worker", "--amount", "2")
    b0, w0 = balance("builder"), balance("worker")
    job = as_json("job", "post", "--kind", "train", "--spec", str(spec), "--budget", "5", "--deadline", "50",
                  "--from", "builder")
    jid = job["id"]
    assert job["status"] == "open" and job["kind"] == "train" and job["budget"] == 5_000_000
    assert job["spec_hash"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert balance("builder") == b0 - 5_000_000 - FEE
    assert as_json("job", "claim", jid, "--from", "worker")["status"] == "claimed"
    fails("job", "claim", jid, "--from", "stranger", code="job_not_open")
    result = tmp / "result.json"
    result.write_text(json.dumps({"adapter_hash": v1["adapter_hash"]}))
    delivered = as_json("job", "submit", jid, "--result", str(result), "--from", "worker")
    assert delivered["status"] == "submitted"
    assert delivered["result_hash"] == hashlib.sha256(result.read_bytes()).hexdigest()
    fails("job", "accept", jid, "--from", "worker", code="not_job_poster")
    paid = as_json("job", "accept", jid, "--from", "builder")
    assert paid["status"] == "paid" and paid["worker"] == as_json("keys", "show", "worker")["address"]
    assert balance("builder") == b0 - 5_000_000 - 2 * FEE
    assert balance("worker") == w0 + 5_000_000 - 2 * FEE
    assert [j["id"] for j in as_json("job", "list", "--status", "paid")["jobs"]] == [jid]
    assert as_json("job", "list", "--status", "open")["jobs"] == []
    assert "paid" in run("job", "show", jid).stdout and jid in run("job", "list").stdout

    # version 2, trained by that job
    a2 = adapter_dir(tmp / "a2", 2, base["weights_hash"], registry["datanet"], rank=8)
    v2 = as_json(*publish(a2, "--job", jid, price="0.004"))
    assert (v2["id"], v2["job_id"], v2["rank"]) == ("legal@2", jid, 8)
    listed = as_json("model", "list")["models"]
    assert [m["id"] for m in listed] == ["legal@1", "legal@2"]
    assert as_json("model", "show", "legal")["id"] == "legal@2"
    assert as_json("model", "show", "legal@1")["adapter_hash"] == v1["adapter_hash"]
    pinned = as_json("model", "show", f"legal@sha256:{v1['adapter_hash'].upper()}")
    assert pinned["id"] == "legal@1" and [v["version"] for v in pinned["versions"]] == [1, 2]
    text = run("model", "show", "legal@1").stdout
    assert registry["root"] in text and base["weights_hash"] in text and "news version 1" in text
    assert "legal@2" in run("model", "list").stdout and "tiny" in run("model", "list", "--bases").stdout

    # the attribution bundle's root: published by the owner, shown, replaced
    root = as_json("model", "publish-attribution", "legal", "1", "ab" * 32, "--from", "builder")
    assert root["attribution_root"] == "ab" * 32 and root["attribution_height"] == root["tx"]["height"]
    again = as_json("model", "publish-attribution", "legal", "1", "CD" * 32, "--from", "builder")
    assert again["attribution_root"] == "cd" * 32 and as_json("model", "show", "legal@2")["attribution_root"] is None
    assert "cd" * 32 in run("model", "show", "legal@1").stdout

    # reprice, retire
    assert as_json("model", "set-price", "legal", "1", "0.005", "--from", "builder")["price_per_1k_tokens"] == 5_000
    retired = as_json("model", "retire", "legal", "2", "--from", "builder")
    assert retired["retired"] and retired["retired_height"] == retired["tx"]["height"]
    assert as_json("model", "show", "legal")["id"] == "legal@1"  # the latest live version answers
    assert as_json("model", "show", "legal@2")["retired"]
    assert [m["id"] for m in as_json("model", "list", "--live")["models"]] == ["legal@1"]
    assert as_json("chain", "verify")["ok"]


def test_refusals_change_nothing(registry: dict[str, Any]) -> None:
    tmp, base = registry["tmp"], registry["base"]
    wh = base["weights_hash"]
    a1 = adapter_dir(tmp / "a1", 1, wh, registry["datanet"])
    run(*publish(a1))
    run("model", "publish", "old", "--from", "builder", "--base", "tiny", "--adapter-dir",
        str(adapter_dir(tmp / "old", 9, wh, registry["datanet"])), "--datanet", "news", "--version", "1",
        "--price", "0")
    run("model", "retire", "old", "1", "--from", "builder")
    spec = tmp / "spec.json"
    spec.write_text("{}")
    run("tx", "stake", "--from", "worker", "--amount", "2")
    jid = as_json("job", "post", "--kind", "serve", "--spec", str(spec), "--budget", "1", "--deadline", "50",
                  "--from", "builder")["id"]
    run("job", "claim", jid, "--from", "worker")
    other = as_json("job", "post", "--kind", "attribution", "--spec", str(spec), "--budget", "1", "--deadline", "50",
                    "--from", "builder")["id"]

    fresh = adapter_dir(tmp / "fresh", 3, wh, registry["datanet"])
    wrong_base = adapter_dir(tmp / "wrong-base", 4, "ab" * 32, registry["datanet"])
    wrong_data = adapter_dir(tmp / "wrong-data", 5, wh, {**registry["datanet"], "root": "00" * 32})
    truncated = adapter_dir(tmp / "truncated", 6, wh, registry["datanet"])
    weights = truncated / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    no_card = adapter_dir(tmp / "no-card", 7, wh, registry["datanet"])
    (no_card / "model_card.json").unlink()
    blobs = BlobStore(tmp / "home [x]" / "data" / "blobs")
    before, stored = ledger_now(), len(blobs)
    cases: list[tuple[list[str], str, int]] = [
        (["model", "show", "nope"], "model_not_found", 1),
        (["model", "show", "legal@7"], "model_version_not_found", 1),
        (["model", "show", f"legal@sha256:{'0' * 64}"], "model_version_not_found", 1),
        (["model", "show", "Bad!"], "bad_model_ref", 1),
        (publish(fresh, version="2"), "version_not_found", 1),
        (publish(fresh, datanet="nope"), "datanet_not_found", 1),
        (publish(fresh, base="nope"), "base_model_not_found", 1),
        (publish(fresh, sender="stranger"), "not_model_owner", 1),
        (publish(fresh, name="Bad!"), "bad_model_name", 1),
        (publish(a1, name="again"), "adapter_exists", 1),
        (publish(wrong_base), "card_mismatch", 1),
        (publish(wrong_data), "card_mismatch", 1),
        (publish(truncated), "weights_truncated", 1),
        (publish(no_card), "adapter_invalid", 1),
        (publish(fresh, "--job", "ab" * 32), "job_not_found", 1),
        (publish(fresh, "--job", "xyz"), "bad_job_id", 1),
        (publish(fresh, price="-1"), "integer_out_of_range", 1),
        (["model", "set-price", "legal", "1", "0.01", "--from", "stranger"], "not_model_owner", 1),
        (["model", "set-price", "old", "1", "0.01", "--from", "builder"], "model_retired", 1),
        (["model", "retire", "old", "1", "--from", "builder"], "model_retired", 1),
        (["model", "retire", "legal", "4", "--from", "builder"], "model_version_not_found", 1),
        (["model", "publish-attribution", "legal", "1", "ab" * 32, "--from", "stranger"], "not_model_owner", 1),
        (["model", "publish-attribution", "old", "1", "ab" * 32, "--from", "builder"], "model_retired", 1),
        (["model", "publish-attribution", "legal", "4", "ab" * 32, "--from", "builder"], "model_version_not_found",
         1),
        (["model", "publish-attribution", "legal", "1", "xyz", "--from", "builder"], "bad_model_param", 1),
        (["model", "publish-attribution", "legal", "1", "00" * 32, "--from", "builder"], "bad_model_param", 1),
        (["model", "register-base", "tiny2", "--from", "builder"], "base_hashes_needed", 1),
        (["model", "register-base", "tiny2", "--from", "builder", "--weights-hash", wh, "--config-hash", "cc" * 32,
          "--arch", "llama", "--params", "5", "--context", "9"], "base_model_exists", 1),
        (["model", "register-base", "tiny2", "--from", "builder", "--weights-hash", "zz", "--config-hash", "cc" * 32,
          "--arch", "llama", "--params", "5", "--context", "9"], "bad_argument", 2),
        (["job", "claim", jid, "--from", "stranger"], "job_not_open", 1),
        (["job", "claim", other, "--from", "builder"], "own_job", 1),
        (["job", "claim", other, "--from", "stranger"], "worker_stake_too_low", 1),
        (["job", "submit", jid, "--result-hash", "ab" * 32, "--from", "stranger"], "not_job_claimant", 1),
        (["job", "submit", jid, "--from", "worker"], "bad_argument", 2),
        (["job", "accept", jid, "--from", "builder"], "job_not_open", 1),
        (["job", "show", "abc"], "bad_job_id", 1),
        (["job", "show", "cd" * 32], "job_not_found", 1),
        (["job", "claim", "cd" * 32, "--from", "worker"], "job_not_found", 1),
        (["job", "list", "--status", "lost"], "bad_request", 1),
        (["job", "post", "--kind", "train", "--spec", str(spec), "--budget", "0", "--deadline", "5",
          "--from", "stranger"], "bad_job_param", 1),
        (["job", "post", "--kind", "train", "--spec", str(spec), "--budget", "1000", "--deadline", "5",
          "--from", "stranger"], "insufficient_balance", 1),
        (["job", "post", "--kind", "mine", "--spec", str(spec), "--budget", "1", "--deadline", "5",
          "--from", "stranger"], "", 2),
    ]
    for args, code, exit in cases:
        if code:
            fails(*args, code=code, exit=exit)
        else:
            run(*args, exit=exit)
        assert ledger_now() == before, args
        if args[:2] == ["model", "publish"]:
            assert len(blobs) == stored, args
    blobs.close()
    err = json.loads(run("--json", "model", "show", "nope", exit=1).stdout)["error"]
    assert err["code"] == "model_not_found" and err["number"] == 1104


def test_models_over_http(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writerlock, "WRITER_WAIT_S", 0.2)
    init_chain()
    with running_node(home, home / "data", tmp_path / "node.log", 0.05) as url:
        node = ("--node", url)
        root = datanet_v1(*node)
        wh = "ee" * 32
        assert explicit_base("tiny", wh, *node)["licence"] == "apache-2.0"
        a1 = adapter_dir(tmp_path / "a1", 1, wh, {"name": "news", "version": 1, "root": root})
        v1 = as_json(*publish(a1, *node))
        assert v1["datanet"]["snapshot_root"] == root and v1["base"]["weights_hash"] == wh
        assert as_json("model", "show", f"legal@sha256:{v1['adapter_hash']}", *node)["id"] == "legal@1"
        assert as_json("model", "list", *node)["models"][0]["card_hash"] == v1["card_hash"]
        fails("model", "show", "legal@2", *node, code="model_version_not_found")
        fails(*publish(a1, *node, name="copy", version="3"), code="version_not_found")

        run("tx", "stake", "--from", "worker", "--amount", "2", *node)
        spec = tmp_path / "spec.json"
        spec.write_text('{"kind": "train"}')
        b0, w0 = balance("builder", *node), balance("worker", *node)
        jid = as_json("job", "post", "--kind", "train", "--spec", str(spec), "--budget", "3", "--deadline", "100",
                      "--from", "builder", *node)["id"]
        run("job", "claim", jid, "--from", "worker", *node)
        fails("job", "claim", jid, "--from", "stranger", *node, code="job_not_open")
        run("job", "submit", jid, "--result-hash", v1["adapter_hash"], "--from", "worker", *node)
        assert as_json("job", "accept", jid, "--from", "builder", *node)["status"] == "paid"
        assert balance("builder", *node) == b0 - 3_000_000 - 2 * FEE
        assert balance("worker", *node) == w0 + 3_000_000 - 2 * FEE

        with HttpClient(url) as client:
            assert client.get_blob(v1["card_hash"]) == (a1 / "model_card.json").read_bytes()
            assert client.ledger_base("tiny")["models"] == ["legal"]
            assert client.jobs()["jobs"][0]["id"] == jid
        ref = httpx.get(f"{url}/v1/ledger/models/legal%401")
        assert ref.status_code == 200 and ref.json()["id"] == "legal@1"
        missing = httpx.get(f"{url}/v1/ledger/models/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
        assert httpx.get(f"{url}/v1/ledger/bases/nope").json()["error"]["code"] == "base_model_not_found"
        assert httpx.get(f"{url}/v1/jobs/{'0' * 64}").status_code == 404
        assert httpx.get(f"{url}/v1/models").json()["error"]["code"] == "not_found"  # kept for serving
    assert as_json("chain", "verify")["ok"]
