"""PNG plots of a run, drawn with matplotlib's Agg backend (files only, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the backend is chosen above, before pyplot loads

from ailedger.sim.books import Books

UNIT = 1_000_000


def earnings(books: Books, sides: Mapping[str, str], path: Path) -> Path:
    """Net (units) of every actor class over the blocks: honest solid, dishonest dashed, the 60% operator
    dash-dotted; buyers (consumers) are left out, their spending would flatten every other line."""
    style = {"honest": "-", "dishonest": "--", "concentrated": "-."}
    cmap = plt.get_cmap("tab20")
    colours = [cmap(i) for i in range(cmap.N)]
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    shown = [(role, values) for role, values in books.series.items() if sides.get(role) in style]
    for (role, values), colour in zip(shown, colours, strict=False):  # buyers spend by design: not drawn
        ax.plot(books.heights, [v / UNIT for v in values], style[sides[role]], color=colour, label=role)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("block height")
    ax.set_ylabel("net (units)")
    ax.set_title("Earnings by actor class (net of stakes lost and fees)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def concentration(heights: list[int], top_bps: list[int], true_bps: list[int], hhi: list[int], cap_bps: int,
                  path: Path) -> Path:
    """The market's per-block record: top operator share and HHI, with the cap, and the dominant owner's
    true share (its identities summed whatever operators they declared)."""
    fig, (top, conc) = plt.subplots(2, 1, figsize=(10, 7), dpi=100, sharex=True)
    top.plot(heights, [v / 100 for v in top_bps], label="top operator share (as recorded)")
    top.plot(heights, [v / 100 for v in true_bps], "--", label="dominant owner, identities summed")
    top.axhline(cap_bps / 100, color="red", linewidth=1, label=f"cap {cap_bps / 100:g}%")
    top.set_ylabel("share of leased h100 (%)")
    top.legend(loc="upper right", fontsize=8)
    top.set_title("Compute concentration per block")
    conc.plot(heights, hhi, color="purple")
    conc.set_ylabel("HHI (0..10,000)")
    conc.set_xlabel("block height")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
