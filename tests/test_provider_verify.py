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
from tests.test_cli import as_json, home, run

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
