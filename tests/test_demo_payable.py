"""`ailedger demo`: the payable-inference loop, its cast of records and its validators' rule.

The end-to-end test runs the real command in a child process (node process, HTTP, gates, votes, a
LoRA training job, the attribution bundle, the OpenAI-compatible server with billing, settlement,
`chain verify`) on the tiny model with a short training, then continues the same run; what it
checks is what the ledger says, not what the demo printed. The cast tests run the real gates on the
demo's records: each kind of bad record must be caught by the gate the demo says catches it, and
the false facts, which no gate can catch, by the validators' rule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.cli import demo_world as w
from ailedger.cli.demo_loop import prepare
from ailedger.core.errors import LedgerError
from ailedger.datanet.gates.neardup import NearDupIndex
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.gates.runner import GateConfig, GateRunner
from tests.test_serving_lora import tiny_dir

__all__ = ["tiny_dir"]

EXE = Path(sys.executable).parent / "ailedger"
QUICK = ["--epochs", "2", "--k", "64", "--max-tokens", "8", "--facts-per-owner", "2", "--questions-per-owner", "1"]


def _gated(cast: w.Cast) -> dict[str, list[list[str]]]:
    """Kind -> each record's failing gates, after the honest records joined the near-duplicate index."""
    index = NearDupIndex(0.8)
    runner = GateRunner(GateConfig(), frozenset(), index)
    honest = [r for c in cast.honest for r in c.records]
    results = runner.check_chunk(honest)
    index.add_many([r.record_hash for r in results], index.signatures([record_text(r.record) for r in results]))
    out = {"honest": [[f"{v.gate_name}/{v.reason_name}" for v in r.failures] for r in results]}
    for c in cast.bad:
        out[c.kind] = [[f"{v.gate_name}/{v.reason_name}" for v in r.failures] for r in runner.check_chunk(c.records)]
    return out


def test_each_bad_kind_is_caught_by_its_gate_or_by_the_validators() -> None:
    cast = w.cast()
    gated = _gated(cast)
    assert all(not f for f in gated["honest"])
    assert all(f == ["near_duplicate/in_datanet"] for f in gated["near-copy"])
    assert all(f == ["quality/repetitive"] for f in gated["stuffing"])
    assert [f[0].split("/")[0] for f in gated["pii"]] == ["pii"] * len(gated["pii"])
    assert all(f and f[0].startswith("quality/") for f in gated["junk"])
    assert all(not f for f in gated["false fact"])  # well-formed: no gate can tell them from the truth
    judge = w.Validator([r for c in cast.honest for r in c.records])
    false = next(c for c in cast.bad if c.kind == "false fact")
    assert all(not judge.judge(r)[0] and "contradicts" in judge.judge(r)[1] for r in false.records)
    assert all(judge.judge(r)[0] for c in cast.honest for r in c.records)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), facts=st.integers(1, 8), paraphrases=st.integers(1, 4))
def test_validator_rule_accepts_the_truth_and_rejects_contradictions(seed: int, facts: int, paraphrases: int) -> None:
    cast = w.cast(facts, paraphrases, seed=seed)
    honest = [r for c in cast.honest for r in c.records]
    judge = w.Validator(honest)
    assert all(judge.judge(r)[0] for r in honest)
    for c in cast.bad:
        for r in c.records:
            accepted, why = judge.judge(r)
            if c.kind in ("stuffing", "junk"):
                assert not accepted and why == "not a one-turn question and answer"
            if c.kind == "false fact":
                assert not accepted
    assert w.cast(facts, paraphrases, seed=seed) == cast  # the same seed makes the same Datanet


def test_validator_rule_on_odd_records() -> None:
    judge = w.Validator()
    assert judge.judge(w.chat("Who keeps the ledger of X?", "Ann keeps it."))[0]  # nothing known yet: consistent
    assert not judge.judge({"text": "hello"})[0]
    assert not judge.judge(w.chat("Who keeps the ledger?", "Do you know?"))[0]  # a question is not an answer
    assert not judge.judge({"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y?"}]})[0]
    judge.learn(w.chat("Who keeps the ledger of X?", "Ann keeps the ledger of X."))
    assert judge.judge(w.chat("who keeps the LEDGER of x?", "It is Ann."))[0]
    assert not judge.judge(w.chat("Who keeps the ledger of X?", "Bob keeps the ledger of X."))[0]


def test_prepare_wipes_continues_or_refuses(tmp_path: Path) -> None:
    from rich.console import Console

    c = Console(file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the test's process
    d = tmp_path / "demo"
    root, resumed = prepare(d, fresh=False, resume=True, interactive=False, c=c)
    assert not resumed and root.is_dir()  # nothing to continue: a fresh start
    (root / "state.json").write_text("{}")
    assert prepare(d, fresh=False, resume=True, interactive=False, c=c) == (root, True)
    (root / "keep").write_text("x")
    assert prepare(d, fresh=False, resume=False, interactive=False, c=c) == (root, False)  # no TTY: fresh
    assert not (root / "keep").exists()
    with pytest.raises(LedgerError, match="exclude"):
        prepare(d, fresh=True, resume=True, interactive=False, c=c)
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious").write_text("x")
    with pytest.raises(LedgerError, match="not made by"):
        prepare(other, fresh=True, resume=False, interactive=False, c=c)
    assert (other / "precious").exists()


def _demo(args: list[str], timeout: float = 170) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AILEDGER_KDF_COST": "test", "CI": "true"}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.mark.timeout(300)
def test_payable_demo_end_to_end_then_continue(tmp_path: Path, tiny_dir: Path) -> None:
    d = tmp_path / "demo"
    p = _demo(["--json", "demo", "--dir", str(d), "--base", str(tiny_dir), *QUICK])
    assert p.returncode == 0, p.stderr[-4000:]
    s: dict[str, Any] = json.loads(p.stdout)
    assert s["verified"] and s["settlement"]["conserved"] and not s["resumed"]
    people = {row["person"]: row for row in s["people"]}
    assert s["datanet"]["records"] == 3 * 2 * 3  # 3 honest owners x 2 facts x 3 paraphrases; nothing else
    for name in w.HONEST:
        assert people[name]["records"] == {"accepted": 6}
    for name in (w.SPAMMER, w.JUNK):  # every record rejected (by a gate or the vote), the stake lost, nothing earned
        assert "accepted" not in people[name]["records"] and sum(people[name]["records"].values()) > 0
        assert people[name]["earned"] == 0 and people[name]["change"] < 0
    assert people[w.SPAMMER]["records"]["rejected"] == 2  # the false facts, voted down
    assert any(k.startswith("gate: ") for k in people[w.JUNK]["records"])
    assert len(s["answers"]) == 3
    paid = {sh["person"] for a in s["answers"] for sh in a["shares"]}
    assert paid and paid <= set(w.HONEST)  # only accepted records' contributors are ever paid
    assert all(sum(sh["bp"] for sh in a["shares"]) == 10_000 for a in s["answers"] if a["shares"])
    fees = sum(a["fee"] for a in s["answers"])
    assert s["settlement"]["settled"] == fees == sum(people[n]["earned"] for n in people)
    assert sum(people[n]["earned"] for n in w.HONEST) > 0 and people[w.CONSUMER]["spent"] == fees
    assert people[w.BUILDER]["earned"] > 0 and people[w.PROVIDER]["earned"] > 0

    again = _demo(["--json", "demo", "--dir", str(d), "--continue", "--base", str(tiny_dir), *QUICK])
    assert again.returncode == 0, again.stderr[-4000:]
    s2 = json.loads(again.stdout)
    assert s2["resumed"] and s2["height"] == s["height"] and s2["state_root"] == s["state_root"]  # nothing redone
    assert s2["answers"] == s["answers"]

    changed = _demo(["demo", "--dir", str(d), "--continue", "--base", str(tiny_dir), *QUICK[:-2]])
    assert changed.returncode == 2 and "error[bad_argument]" in changed.stderr and "--fresh" in changed.stderr


def test_demo_says_what_is_missing(tmp_path: Path) -> None:
    p = _demo(["demo", "--dir", str(tmp_path / "d"), "--base", str(tmp_path / "nowhere")], timeout=60)
    assert p.returncode == 1 and p.stderr.startswith("error[base_model_unavailable]") and "Traceback" not in p.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was made
