"""bench/market.py on a few hundred orders: it runs through the real state machine, every order clears to a
lease, the cap holds at every block (the drain after the last window included), value is conserved, and it
reports the figures the issue asks for."""

from __future__ import annotations

from bench import market


def test_market_bench_small_run() -> None:
    r = market.run(True, orders=400)
    assert {"name", "orders_cleared_per_s", "max_operator_share", "cap", "market_tx_vs_transfer"} <= set(r)
    assert r["name"] == "market" and r["conserved"] and r["orders_leased"] == 400 == r["leases"]
    assert r["max_operator_share"] <= r["cap"] == 0.25 and r["share_within_cap_every_block"]
    assert r["max_operator_share_drain"] <= r["max_operator_share"]
    assert r["max_operator_share"] > 0.2  # the big operator bids lowest every time: the cap, not demand, stops it
    assert r["orders_cleared_per_s"] > 0 and r["market_tx_vs_transfer"] > 0
