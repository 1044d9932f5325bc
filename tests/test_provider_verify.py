"""Verified work off the ledger (provider/verify.py, provider/work.py) on the tiny model, and a faked serving
lease caught end to end: the drawn verifier re-generates the faker's log, the check fails, the faker is slashed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ailedger.cli.backend import Embedded
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.basemodel import load_base
from ailedger.factory.checkpoints import ADAPTER_FILE
from ailedger.factory.tiny import build_tiny
from ailedger.provider.verify import Served, decode_log, encode_log, sample, tensors_match
from ailedger.provider.work import Server
from ailedger.serving.synthetic import random_adapter
from tests.test_cli import as_json, fails, home, run

__all__ = ["home"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("prov") / "tiny", seed=5)


def test_training_tensors_match_within_tolerance_only(tiny: Path, tmp_path: Path) -> None:
    base = load_base(tiny)
    a = (random_adapter(base, tmp_path / "a", seed=1) / ADAPTER_FILE).read_bytes()
    b = (random_adapter(base, tmp_path / "b", seed=2) / ADAPTER_FILE).read_bytes()
    assert tensors_match(a, a) == (True, "max |difference| 0 (tolerance 0.0001)")
    assert not tensors_match(a, b)[0]
    nudged = {k: v + 5e-5 for k, v in load_tensors(a).items()}
    assert tensors_match(a, save_tensors(nudged))[0]  # another machine's rounding passes
    assert not tensors_match(a, b"junk")[0]
    fewer = dict(list(load_tensors(a).items())[1:])
    assert "names differ" in tensors_match(a, save_tensors(fewer))[1]


def test_serving_logs_regenerate_token_for_token(tiny: Path, tmp_path: Path) -> None:
    served = Server(load_base(tiny), tmp_path / "inbox", max_tokens=6)
    box = tmp_path / "inbox" / "7"
    box.mkdir(parents=True)
    for i, text in enumerate(["The ledger records", "hello there", "Every fee is split", "A datanet"]):
        (box / f"{i}.txt").write_text(text)
    log, tokens = served.run(7)
    requests = decode_log(log)
    assert len(requests) == 4 and tokens == sum(len(r.prompt) + len(r.tokens) for r in requests) > 0
    assert not list(box.glob("*.txt"))  # answered once
    verifier = Server(load_base(tiny), tmp_path / "other", max_tokens=6)  # a second engine
    assert verifier.verify(log, b"seed")[0]
    forged = [Served(r.prompt, r.max_tokens, r.stop_ids, r.adapter, [t ^ 1 for t in r.tokens]) for r in requests]
    ok, why = verifier.verify(encode_log(forged), b"seed")
    assert not ok and "token 0 differs" in why
    assert verifier.verify(served.run(7)[0], b"x") == (True, "an empty period: nothing was served, nothing to "
                                                             "re-generate")
    with pytest.raises(LedgerError) as exc:
        decode_log(b"{}")
    assert exc.value.code is errors.MARKET_BAD_REPORT
    assert sample(10, b"s", 4) == sample(10, b"s", 4) != sample(10, b"t", 4) and len(set(sample(10, b"s", 4))) == 4


def test_a_faked_serving_lease_is_caught_by_the_drawn_verifier(home: Path, tiny: Path, tmp_path: Path) -> None:
    for k in ("consumer", "honest", "faker"):
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "prov-verify", "--alloc", "consumer=100", "--alloc", "honest=10",
        "--alloc", "faker=10", "--param", "market_check_min_bps=10000", "--param", "market_check_max_bps=10000")
    order = as_json("market", "order", "--from", "consumer", "--kind", "serve", "--unit", "ktokens",
                    "--cpu", "1", "--memory", "1", "--max-price", "0.01", "--budget", "1", "--window", "10",
                    "--duration", "30", "--spec-hash", "ab" * 32)["orders"][0]
    run("market", "register", "--from", "faker", "--bond", "1", "--operator", "faker")
    run("market", "offer", "--from", "faker", "--cpu", "4", "--memory", "8", "--price-per-ktokens", "0.001")
    run("market", "bid", str(order["id"]), "0.001", "--from", "faker")  # cheaper than honest's 0.002: wins
    out = as_json("provider", "start", "--from", "honest", "--serve-base", str(tiny), "--steps", "6",
                  "--price-per-ktokens", "0.002", "--work-dir", str(tmp_path / "honest"))
    assert any("bid 2000 on order" in line for line in out["log"]), out["log"]
    lease = as_json("market", "leases", "--status", "active")["leases"][0]
    assert lease["provider"] == as_json("keys", "show", "faker")["address"]

    fake = encode_log([Served([1, 2, 3], 4, [], None, [9, 9, 9, 9])])  # well-formed, never generated
    data = Embedded(home / "data", write=True)
    try:
        (digest,) = data.put_blobs([fake])
    finally:
        data.close()
    run("market", "report", str(lease["id"]), "--from", "faker", "--digest", digest, "--tokens", "7")
    run("tx", "transfer", "--from", "consumer", "--to", "faker", "--amount", "0.000001")  # one block: the draw
    (check,) = as_json("market", "checks", "--status", "pending")["checks"]
    assert check["verifier"] == as_json("keys", "show", "honest")["address"] and check["digest"] == digest

    out = as_json("provider", "start", "--from", "honest", "--serve-base", str(tiny), "--steps", "1",
                  "--work-dir", str(tmp_path / "honest"))
    assert any(line.startswith(f"check {check['id']}") and "FAILED" in line for line in out["log"]), out["log"]
    failed: dict[str, Any] = as_json("market", "leases", "--id", str(lease["id"]))["leases"][0]
    assert failed["status"] == "failed_check"
    faker = as_json("market", "providers", "faker")["providers"][0]
    assert faker["bond"] == 900_000 and faker["reputation_bps"] < 5_000  # market_slash_bps 10% of 1 unit
    reopened = as_json("market", "orders", "--id", str(order["id"]))["orders"][0]
    assert reopened["status"] == "bidding" and reopened["reopened"] == 1


# -- serving a published adapter ----------------------------------------------------------------------------

def _ledger_models(base: Any, **adapters: Path) -> dict[str, Any]:
    """What `ledger_models()` answers for adapters published as NAME@1 for `base`."""
    from ailedger.factory.adapters import inspect_adapter

    return {"models": [{"name": n, "version": 1, "adapter_hash": inspect_adapter(d).adapter_hash,
                        "base": {"name": base.name, "weights_hash": base.weights_hash}} for n, d in adapters.items()]}


def test_an_adapter_is_served_and_only_the_same_adapter_verifies(tiny: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from ailedger.factory.adapters import inspect_adapter
    from ailedger.provider.verify import regenerate_matches
    from ailedger.serving.catalog import Catalog, ServedAdapter
    from ailedger.serving.stack import served_base

    base = load_base(tiny)
    legal = random_adapter(base, tmp_path / "adapters" / "legal", seed=1, b_std=0.5)
    other = random_adapter(base, tmp_path / "elsewhere" / "other", seed=2, b_std=0.5)
    sb = served_base(base)
    models = _ledger_models(sb, legal=legal)
    served = Server(base, tmp_path / "inbox", max_tokens=6,
                    catalog=Catalog.from_ledger(sb, models, tmp_path / "adapters"))
    assert served.why_not("legal@1") == "" and "model_not_found" in served.why_not("chat@1")
    box = tmp_path / "inbox" / "3"
    box.mkdir(parents=True)
    for i, text in enumerate(["The ledger records", "hello there", "Every fee is split", "A datanet"]):
        (box / f"{i}.txt").write_text(text)
    log, tokens = served.run(3, "legal@1")
    requests = decode_log(log)
    legal_hash = inspect_adapter(legal).adapter_hash
    assert tokens > 0 and {r.adapter for r in requests} == {legal_hash}

    honest = Server(load_base(tiny), tmp_path / "v1", max_tokens=6,
                    catalog=Catalog.from_ledger(sb, models, tmp_path / "adapters"))
    assert honest.verify(log, b"seed", "legal@1")[0]
    # a verifier without the files cannot re-run it (the worker leaves such a check unanswered)
    bare = Server(load_base(tiny), tmp_path / "v2", max_tokens=6,
                  catalog=Catalog.from_ledger(sb, models, tmp_path / "elsewhere"))
    assert "not served here" in bare.why_not("legal@1")
    # a verifier whose engine serves other weights under legal@1's hash re-generates other tokens
    info = inspect_adapter(other)
    swapped = Server(load_base(tiny), tmp_path / "v3", max_tokens=6, catalog=Catalog(sb, [ServedAdapter(
        "legal", 1, legal_hash, other, rank=info.rank, targets=info.target_modules)]))
    ok, why = swapped.verify(log, b"seed", "legal@1")
    assert not ok and "differs" in why, why
    # ... and so does one whose engine serves the base
    ok, why = regenerate_matches(bare.engine, [replace(r, adapter=None) for r in requests], b"seed")
    assert not ok and "differs" in why, why
    # a log served with the base under an order for legal@1 fails without re-generating
    base_log = encode_log([replace(r, adapter=None) for r in requests])
    ok, why = honest.verify(base_log, b"seed", "legal@1")
    assert not ok and "served with adapter none (the base)" in why, why


def _publishable(adapter: Path, seed: int) -> Path:
    """A random adapter's card with the hyperparameters `model publish` asks for (as factory.train writes)."""
    import hashlib
    import json

    card = json.loads((adapter / "model_card.json").read_text())
    card["hyperparams"] = {"rank": 8, "alpha": 16, "lr": 0.001, "epochs": 1, "seed": seed}
    card["hyperparams_hash"] = hashlib.sha256(json.dumps(card["hyperparams"], sort_keys=True, separators=(",", ":"))
                                              .encode()).hexdigest()
    (adapter / "model_card.json").write_text(json.dumps(card, indent=2))
    return adapter


def test_an_order_for_legal_1_is_served_by_a_provider_with_its_files_and_passes_a_spot_check(
        home: Path, tiny: Path, tmp_path: Path) -> None:
    from tests.test_models_cli import datanet_v1

    for k in ("curator", "builder", "consumer", "honest", "checker", "bare"):
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "prov-adapter", "--alloc", "curator=100", "--alloc", "builder=100",
        "--alloc", "consumer=100", "--alloc", "honest=10", "--alloc", "checker=10", "--alloc", "bare=10",
        "--param", "datanet_min_window_blocks=1", "--param", "market_check_min_bps=10000",
        "--param", "market_check_max_bps=10000")
    datanet_v1()
    run("model", "register-base", "tiny", "--from", "builder", "--dir", str(tiny), "--licence", "apache-2.0")
    ads = tmp_path / "adapters"
    legal = _publishable(random_adapter(load_base(tiny), ads / "anything", seed=1, b_std=0.5), 1)
    run("model", "publish", "legal", "--from", "builder", "--base", "tiny", "--adapter-dir", str(legal),
        "--datanet", "news", "--version", "1", "--price", "0.003")
    old = _publishable(random_adapter(load_base(tiny), tmp_path / "old" / "old", seed=3), 3)
    run("model", "publish", "old", "--from", "builder", "--base", "tiny", "--adapter-dir", str(old),
        "--datanet", "news", "--version", "1", "--price", "0")
    run("model", "retire", "old", "1", "--from", "builder")
    serve_args = ("--kind", "serve", "--unit", "ktokens", "--cpu", "1", "--memory", "1", "--max-price", "0.01",
                  "--budget", "1", "--window", "12", "--duration", "30")
    before = as_json("account", "show", "consumer")["balance"]
    refused = (("chat@1", "model_not_found"), ("old@1", "model_retired"), ("legal@7", "model_version_not_found"))
    for ref, code in refused:
        fails("market", "order", "--from", "consumer", *serve_args, "--model", ref, code=code)
    assert as_json("account", "show", "consumer")["balance"] == before  # refused before sending: no fee
    order = as_json("market", "order", "--from", "consumer", *serve_args, "--model", "legal@1")["orders"][0]
    assert order["model"] == "legal@1" and order["spec_hash"] == (legal / "model_card.json").read_text().split(
        '"adapter_hash": "')[1][:64]

    # a provider without legal's files does not bid, and says why
    out = as_json("provider", "start", "--from", "bare", "--serve-base", str(tiny), "--steps", "1",
                  "--work-dir", str(tmp_path / "bare"))
    assert any(line.startswith(f"not bidding on order {order['id']}: cannot serve legal@1") for line in out["log"])
    gaps = as_json("provider", "status", "bare", "--serve-base", str(tiny), "--adapters", str(tmp_path / "old"))
    assert [g["order"] for g in gaps["not_bidding"]] == [order["id"]] and "not served here" in \
        gaps["not_bidding"][0]["why"]
    run("market", "retire", "--from", "bare")  # out of the verifier draw: it could not re-run the check

    run("provider", "start", "--from", "checker", "--serve-base", str(tiny), "--adapters", str(ads), "--steps", "1",
        "--price-per-ktokens", "0.002", "--work-dir", str(tmp_path / "checker"))
    inbox = tmp_path / "honest" / "inbox" / "1"  # the first lease
    inbox.mkdir(parents=True)
    for i, text in enumerate(["The ledger records", "hello there", "Every fee is split", "A datanet"]):
        (inbox / f"{i}.txt").write_text(text)
    out = as_json("provider", "start", "--from", "honest", "--serve-base", str(tiny), "--adapters", str(ads),
                  "--steps", "10", "--price-per-ktokens", "0.001", "--work-dir", str(tmp_path / "honest"))
    assert any("served lease 1 with legal@1:" in line for line in out["log"]), out["log"]
    lease = as_json("market", "leases", "--id", "1")["leases"][0]
    assert lease["provider"] == as_json("keys", "show", "honest")["address"] and lease["tokens"] > 0
    run("tx", "transfer", "--from", "consumer", "--to", "honest", "--amount", "0.000001")  # a block: the draw
    checks = as_json("market", "checks", "--status", "pending")["checks"]
    assert checks and {c["verifier"] for c in checks} == {as_json("keys", "show", "checker")["address"]}
    out = as_json("provider", "start", "--from", "checker", "--serve-base", str(tiny), "--adapters", str(ads),
                  "--steps", "1", "--work-dir", str(tmp_path / "checker"))
    assert all(any(line.startswith(f"check {c['id']}") and "passed" in line for line in out["log"]) for c in checks), \
        out["log"]
    assert any("re-generated token for token" in line for line in out["log"]), out["log"]  # the served period
    assert {c["status"] for c in as_json("market", "checks", "--verifier", "checker")["checks"]} == {"passed"}
    assert as_json("market", "leases", "--id", "1")["leases"][0]["status"] == "active"
