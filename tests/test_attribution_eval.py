"""`attribution eval` end to end on the tiny model: ledger, snapshot, LoRA, serving, attribution, baselines.

The tiny Llama of `factory.tiny` cannot learn facts the way SmolLM2 does (its answers are mostly
noise), so these tests check the loop's plumbing and bookkeeping rather than its accuracy: the
Datanet on the ledger holds exactly the facts file's records under the owners' keys, every answer
went through the serving engine, every method's payouts follow the one rule and add up, and the
figures are computed as docs/attribution-eval.md says. The accuracy is the benchmark's business
(`ailedger bench attribution`, on SmolLM2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from ailedger.attribution.attributor import Attributor
from ailedger.attribution.combine import shares_from_scores
from ailedger.attribution.evalchain import DATANET, build_snapshot, owner_key
from ailedger.attribution.evaluate import ADAPTER, EvalConfig, _Tally, fact_record, prompt_ids, right_rank, run_eval
from ailedger.attribution.facts import Extra, generate_facts, write_jsonl
from ailedger.chain.node import Node
from ailedger.core.merkle import merkle_root
from ailedger.datanet import views
from ailedger.datanet.gates.records import record_hash
from ailedger.factory.basemodel import load_base
from ailedger.factory.tiny import build_tiny
from ailedger.modules import default_runtime

TINY = {"lr": 0.02, "epochs": 12, "batch_size": 4, "max_len": 96, "k": 128, "max_answer_tokens": 16}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """Tiny matrices gain nothing from a second thread, and on a shared machine its spinning costs seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "model", seed=2)


@pytest.fixture(scope="module")
def report(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Any]:
    bench = generate_facts(3, 2, 2, stuffers=1, stuffer_records=2, seed=1)
    work = tmp_path_factory.mktemp("eval") / "work"
    stages: list[str] = []

    def tick(stage: str, done: int, total: int | None) -> None:
        if not stages or stages[-1] != stage:
            stages.append(stage)

    out = run_eval(bench.facts, bench.stuffers, work, default_runtime(), EvalConfig(base=str(tiny), **TINY), tick)
    assert {"ledger", "train", "featurize", "generate", "attribute", "trak"} <= set(stages)
    return out, work, bench


@pytest.mark.timeout(60)
def test_the_ledger_holds_the_facts_under_their_owners(report: tuple[dict[str, Any], Path, Any]) -> None:
    out, work, bench = report
    want = [(f.owner, fact_record(f, p)) for f in bench.facts for p in f.paraphrases]
    want += [(e.owner, {"text": e.text}) for e in bench.stuffers]
    node = Node(work / "chain", default_runtime())
    try:
        version = views.get_version(node.state, DATANET, 1)
        assert version is not None and version.count == len(want) == out["setup"]["records"]
        hashes = views.accepted_hashes(node.state, DATANET, 0, version.count)
        assert merkle_root(hashes).hex() == version.root.hex() == out["setup"]["snapshot_root"]
        owner_of = {record_hash(r): owner_key(label).address for label, r in want}
        assert set(hashes) == set(owner_of)
        for h in hashes:
            rec = views.get_record(node.state, DATANET, h)
            assert rec is not None and rec.state.contributor == owner_of[h]
    finally:
        node.close()
    card = json.loads((work / "adapters" / ADAPTER / "model_card.json").read_text())
    assert card["datanet"]["root"] == out["setup"]["snapshot_root"] and card["records"] == len(want)
    assert out["setup"]["fact_records"] == 12 and out["setup"]["extra_records"] == len(bench.stuffers)
    assert out["setup"]["extra_owners"] == 1 and out["setup"]["checkpoints"] == 2


@pytest.mark.timeout(60)
def test_payouts_follow_the_one_rule_and_add_up(report: tuple[dict[str, Any], Path, Any], tiny: Path) -> None:
    out, work, bench = report
    assert set(out["methods"]) == {"engine", "influence", "bm25", "trak"}
    answered = len(bench.facts) - out["empty_answers"]
    for name, m in out["methods"].items():
        assert 0 <= m["top1"] <= 1 and 0 < m["mrr"] <= 1, name
        assert m["paid_bp"] <= 10_000 * answered
        if m["paid_bp"]:
            assert sum(m["shares"].values()) == pytest.approx(1.0)
            assert m["extra_share"] == pytest.approx(m["shares"].get("stuffer-00", 0.0))
            owners = {f.owner for f in bench.facts}
            assert m["owner_share"] <= sum(v for k, v in m["shares"].items() if k in owners) + 1e-12
    # the engine's top contributor for each answer is the one its attribution record pays most
    base = load_base(tiny)
    attributor = Attributor.load(work / "adapters" / ADAPTER, base)
    labels = {owner_key(x.owner).address: x.owner for x in [*bench.facts, *bench.stuffers]}
    checked = 0
    for f, row in zip(bench.facts, out["answers"], strict=True):
        assert row["answer_tokens"] == len(row["answer_ids"])
        if not row["answer_ids"]:
            continue
        scores = attributor.scores(prompt_ids(base, f.question), row["answer_ids"])
        shares = shares_from_scores(attributor.bundle.record_hashes, scores.combined, attributor.bundle.contributors)
        assert row["top"]["engine"] == (labels[shares.shares[0].key] if shares.shares else None)
        checked += 1
    assert checked == answered > 0
    assert out["cost"]["index_bytes_per_record"] > 0 and out["cost"]["cost_ratio"] > 0


def test_right_rank_counts_wrong_records_above_and_half_the_ties() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.5, 0.2])
    assert right_rank(scores, [1]) == 1.0
    assert right_rank(scores, [2]) == 2.5  # 0.9 above, 0.5 tied
    assert right_rank(scores, [2, 3]) == 2.0  # the other right record does not count against it
    assert right_rank(scores, [0, 4]) == 4.0  # its best, 0.2, is below three wrong records
    assert right_rank(np.zeros(4), [0]) == 2.5  # a method that scores nothing gets no credit for ties


def test_tally_pays_by_the_rule_and_counts_stuffers() -> None:
    owner, other, stuffer = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20
    hashes = [bytes([i]) * 32 for i in range(4)]
    contributors = {hashes[0]: owner, hashes[1]: owner, hashes[2]: other, hashes[3]: stuffer}
    labels = {owner: "o", other: "x", stuffer: "s"}
    t = _Tally()
    assert t.add(np.array([0.9, 0.1, 0.0, 0.6]), [0, 1], owner, hashes, contributors, labels, {stuffer}) == "o"
    assert t.add(np.array([0.0, 0.0, 0.2, 0.8]), [0, 1], owner, hashes, contributors, labels, {stuffer}) == "s"
    t.miss()
    f = t.figures()
    assert f["top1"] == pytest.approx(1 / 3) and f["paid_bp"] == 20_000
    # answer 1: 0.9 and 0.6 pass the floor (0.5 of the best), 0.1 does not: o 6000, s 4000
    # answer 2: only 0.8 passes (0.2 < 0.4): s 10000
    assert f["shares"] == {"o": 0.3, "s": 0.7} and f["extra_share"] == 0.7 and f["owner_share"] == 0.3
    assert f["mrr"] == pytest.approx((1 + 1 / 3) / 3)  # answer 2: two wrong records above the right ones


def test_identical_records_are_refused(tmp_path: Path) -> None:
    from ailedger.core import errors
    from ailedger.core.errors import LedgerError

    with pytest.raises(LedgerError) as exc:
        build_snapshot(tmp_path / "chain", default_runtime(), [("a", {"text": "same"}), ("b", {"text": "same"})])
    assert exc.value.code is errors.BAD_FACTS_FILE


def eval_app() -> typer.Typer:
    """The real CLI: `ailedger attribution eval` is `eval_command` under the root group and its options."""
    from ailedger.cli.main import app

    return app


@pytest.mark.timeout(90)
def test_eval_cli(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = eval_app()
    monkeypatch.setenv("AILEDGER_HOME", str(tmp_path / "home"))
    bench = generate_facts(2, 1, 2, stuffers=1, stuffer_records=1, seed=3)
    facts = write_jsonl(tmp_path / "facts.jsonl", bench.facts)
    extra = write_jsonl(tmp_path / "extra.jsonl", [*bench.stuffers, Extra("owner-00", "An unrelated note.")])
    runner = CliRunner()
    args = ["attribution", "eval", str(facts), "--extra", str(extra), "--base", str(tiny), "--epochs", "8",
            "--lr", "0.02", "--k", "64", "--max-tokens", "8", "--work-dir", str(tmp_path / "work")]
    r = runner.invoke(app, ["--json", *args, "--no-trak"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["methods"]) == {"engine", "influence", "bm25"} and len(doc["answers"]) == 2
    assert doc["setup"]["records"] == 4 + len(bench.stuffers) + 1 and doc["setup"]["extra_owners"] == 1
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    for text in ("this engine", "BM25", "TRAK", "owner-00", "stuffer-00", "MRR"):
        assert text in r.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(facts.read_text() + '{"id": "x", "owner": "o"}\n')
    r = runner.invoke(app, ["attribution", "eval", str(bad), "--base", str(tiny)])
    assert r.exit_code == 1 and "error[bad_facts_file]" in r.stderr and "line 3: missing" in r.stderr


def test_spearman_and_lds_on_known_values() -> None:
    from ailedger.attribution.lds import lds, ranks, spearman

    assert ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, x ** 3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, np.ones(5)) == 0.0  # a constant side predicts nothing
    masks = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], bool)
    scores = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # target 0 learns from record 0, target 1 from record 2
    outcomes = np.array([[0.9, 0.8], [0.1, 0.7], [0.8, 0.2], [0.7, 0.1]])
    assert lds(scores, masks, outcomes) == pytest.approx(np.mean([spearman(masks[:, 0] * 1.0, outcomes[:, 0]),
                                                                  spearman(masks[:, 2] * 1.0, outcomes[:, 1])]))
    assert lds(scores, masks, outcomes) > 0.8 and lds(-scores, masks, outcomes) < -0.8


@pytest.mark.timeout(120)
def test_lds_runs_on_the_tiny_model(tmp_path: Path) -> None:
    from ailedger.attribution.lds import LdsConfig, run_lds

    cfg = LdsConfig(owners=2, facts_per_owner=1, paraphrases=2, stuffers=1, stuffer_records=1, subsets=6, epochs=6,
                    k=64)
    out = run_lds(tmp_path / "lds", cfg)
    assert set(out["lds"]) == {"engine", "influence", "trak"}
    assert all(-1 <= v <= 1 for v in out["lds"].values())
    assert out["setup"]["records"] == 5 and out["setup"]["kept_per_subset"] == 2 and out["setup"]["targets"] == 2
    saved = json.loads((tmp_path / "lds" / "lds.json").read_text())
    masks = np.array(saved["masks"])
    assert masks.shape == (6, 5) and (masks.sum(1) == 2).all()
    assert len({tuple(m) for m in masks.tolist()}) > 1  # the subsets are drawn, not one subset six times
    assert np.isfinite(np.array(saved["outcomes"])).all()


def test_a_foreign_work_dir_is_never_emptied(tmp_path: Path) -> None:
    from ailedger.core import errors
    from ailedger.core.errors import LedgerError

    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    bench = generate_facts(2, 1, 1, stuffers=0)
    with pytest.raises(LedgerError) as exc:
        run_eval(bench.facts, [], precious, default_runtime(), EvalConfig(base=str(tmp_path / "no-model")))
    assert exc.value.code is errors.BAD_ARGUMENT and (precious / "thesis.txt").read_text() == "do not delete"
