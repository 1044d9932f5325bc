"""bench/governance.py on a handful of proposals: it runs through the real state machine, every outcome it
drives happens, value is conserved, and it reports the figures the issue asks for."""

from __future__ import annotations

from bench import governance


def test_governance_bench_small_run() -> None:
    r = governance.run(True, proposals=20)
    assert {"name", "votes_per_s", "gov_tx_vs_transfer", "tally_ms_p95"} <= set(r)
    assert r["name"] == "governance" and r["conserved"] and r["tallies"] == 20
    assert r["votes"] == 20 * governance.VOTERS + 20 * governance.VOTERS // 10
    assert r["outcomes"] == {"executed": 16, "rejected": 2, "vetoed": 2}
    assert r["gov_tx_vs_transfer"] > 0 and r["tally_ms_p95"] >= r["tally_ms_p50"] > 0
