"""The adversarial economy (`ailedger sim economy`): who wins on a short run, books that close, determinism,
the JSON line, Ctrl-C, the attribution stand-in, and what colluders do with the stake majority."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ailedger.cli.main import app
from ailedger.datanet.state import Status
from ailedger.modules import default_runtime
from ailedger.sim.attributor import StandInAttributor
from ailedger.sim.compute import ComputeProvider, DominantIdentity
from ailedger.sim.economy import Run, run, summary
from ailedger.sim.world import EconomyConfig, World
from tests.models_sim import total_supply

BLOCKS = 60


@pytest.fixture(scope="module")
def short() -> Run:
    return run(EconomyConfig(seed=3), BLOCKS)


def test_every_dishonest_class_loses_and_every_honest_class_gains(short: Run) -> None:
    rows = {r.role: r for r in short.rows()}
    honest = [r for r in rows.values() if r.side == "honest"]
    dishonest = [r for r in rows.values() if r.side == "dishonest"]
    assert {r.role for r in dishonest} == {"colluding validator", "data spammer", "near-duplicate farmer",
                                           "PII leaker", "keyword stuffer", "lease skipper", "faking agent"}
    assert all(r.net > 0 for r in honest), [(r.role, r.net) for r in honest]
    assert all(r.net <= 0 and r.slashed > 0 for r in dishonest), [(r.role, r.net, r.slashed) for r in dishonest]
    figures = summary(short)
    assert figures["honest_net_min"] == min(r.net for r in honest)
    assert figures["dishonest_net_max"] == max(r.net for r in dishonest)
    assert figures["max_operator_share"] <= figures["cap"] == 0.25
    assert figures["faker_suspended_block"] is not None and figures["faker_suspended_block"] <= BLOCKS
    assert figures["targets_met"] and short.done == BLOCKS and not short.interrupted


def test_the_defences_catch_each_kind_of_record(short: Run) -> None:
    decided = {}
    for e in short.world.book.entries.values():
        if e.status != Status.PENDING:
            decided.setdefault(e.label, set()).add(e.status)
    assert decided["honest"] == {Status.ACCEPTED}
    assert decided["junk"] == decided["pii"] == decided["near_dup"] == {Status.GATE_REJECTED}
    assert decided["stuffing"] == {Status.REJECTED}  # passes every gate; the honest majority votes it down


def test_supply_is_conserved_and_the_books_close(short: Run) -> None:
    w = short.world
    genesis = w.ledger.runtime.genesis_block(w.ledger.genesis)[1]
    assert total_supply(w.ledger.state) == total_supply(genesis)
    figures = summary(short)
    assert figures["unaccounted"] == 0 and figures["supply_conserved"]
    nets = sum(c["net"] for c in figures["classes"].values())
    assert nets < 0  # the proposer's fees, the Datanet's pool and the escrow in flight hold the difference
    assert figures["refused_txs"] == 0


def test_the_blocks_replay_from_genesis_to_the_same_roots(short: Run) -> None:
    ledger = short.world.ledger
    runtime = default_runtime()  # a verifier's own runtime
    block0, state = runtime.genesis_block(ledger.genesis)
    parent = block0.header
    for block in ledger.blocks:
        runtime.validate_block(state, parent, block)
        parent = block.header
    assert parent.state_root == ledger.state_root and len(ledger.blocks) == BLOCKS + 1
    assert sorted(state.rows()) == sorted(ledger.state.rows())


def test_a_seed_gives_the_same_final_state_root() -> None:
    a, b, c = (run(EconomyConfig(seed=s), 12) for s in (5, 5, 6))
    assert a.world.ledger.state_root == b.world.ledger.state_root
    assert a.world.ledger.state_root != c.world.ledger.state_root


def test_cli_prints_the_table_writes_plots_and_ends_with_the_json_line(tmp_path: Path) -> None:
    out = tmp_path / "plots"
    r = CliRunner().invoke(app, ["sim", "economy", "--seed", "2", "--blocks", "15", "--out", str(out)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert "honest contributor" in r.stdout and "lease skipper" in r.stdout
    figures = json.loads(lines[-1])
    for field in ("name", "honest_net_min", "dishonest_net_max", "max_operator_share", "cap",
                  "faker_suspended_block", "seconds", "classes", "state_root"):
        assert field in figures
    assert figures["name"] == "economy" and figures["blocks"] == 15
    assert all(set(c) == {"side", "actors", "earned", "slashed", "fees", "net"} for c in figures["classes"].values())
    for name in ("earnings.png", "concentration.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unwritable_out_is_refused_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = CliRunner().invoke(app, ["sim", "economy", "--blocks", "1000", "--out", str(blocker / "plots")])
    assert r.exit_code == 1 and "sim_out_unwritable" in r.output and "blocks" not in r.stdout


def test_ctrl_c_stops_between_blocks_with_the_partial_figures() -> None:
    def tick(stage: str, done: int, total: int | None) -> None:
        if done == 4:
            os.kill(os.getpid(), signal.SIGINT)

    r = run(EconomyConfig(seed=1), 50, tick)
    assert r.interrupted and r.done == 4 and r.world.height == r.world.setup_height + 4
    figures = summary(r)
    assert figures["interrupted"] and figures["blocks"] == 4 and figures["supply_conserved"]


def test_the_attribution_stand_in_pays_only_snapshot_records_with_cooking_words() -> None:
    good = {bytes([i]) * 32: f"Roast the {veg} with garlic until golden." for i, veg in
            enumerate(["carrot", "potato", "fennel"], start=1)}
    junk = {b"\x09" * 32: "great tip great tip great tip"}
    owners = {h: bytes([7]) * 20 for h in [*good, *junk]}
    engine = StandInAttributor({**good, **junk}, owners)
    shares = engine.shares(b"\x01" * 32, ("carrot", "garlic"))
    assert sum(s.bp for s in shares) == 10_000
    assert [s.record for s in shares] == sorted(s.record for s in shares)
    assert b"\x09" * 32 not in {s.record for s in shares} and engine.usefulness[b"\x09" * 32] == 0
    assert max(shares, key=lambda s: s.bp).record == b"\x01" * 32  # two words beat one
    assert engine.shares(b"\x02" * 32, ("zzz",)) == []  # nothing relevant: no shares, the data part is refunded


def test_colluders_with_the_stake_majority_decide_every_record() -> None:
    r = run(dataclasses.replace(EconomyConfig(seed=4), colluders_majority=True), 30)
    rows = {x.role: x for x in r.rows()}
    labels = {}
    for e in r.world.book.entries.values():
        if e.status in (Status.ACCEPTED, Status.REJECTED):
            labels.setdefault(e.label, set()).add(e.status)
    assert labels["honest"] == {Status.REJECTED} and labels["stuffing"] == {Status.ACCEPTED}
    assert rows["honest validator"].slashed > 0 and rows["curator"].slashed > 0
    assert rows["colluding validator"].net > 0 and rows["keyword stuffer"].net > rows["honest contributor"].net


def test_world_casts_every_class_of_the_issue() -> None:
    w = World(EconomyConfig(seed=1))
    assert {"dominant operator (60%)", "lease skipper", "faking agent", "colluding validator",
            "keyword stuffer", "PII leaker", "near-duplicate farmer", "data spammer"} <= {a.role for a in w.cast}
    offered = {a.role: 0 for a in w.cast}
    for a in w.cast:
        if isinstance(a, ComputeProvider):
            offered[a.role] += a.accelerators
    assert offered["dominant operator (60%)"] * 10 == sum(offered.values()) * 6
    assert len({a.operator for a in w.cast if isinstance(a, DominantIdentity)}) == 1  # declared: one operator
