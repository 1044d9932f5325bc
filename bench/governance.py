"""The governance benchmark: proposals and stake-weighted votes through the real state machine, against transfers.

A chain with every default module is built in memory with `Runtime.build_block` (the proposer's path: the
signature check, the fee and nonce, the handler, every module's end_block, the Merkle state commit).
VOTERS accounts bond stake, a funder fills the treasury, then 1,000 proposals (a third parameter changes, a
third texts, a third treasury spends, each with its full deposit, so voting opens at once) are made in one
block and every voter votes on every proposal (100,000 votes) in blocks of BLOCK_TXS; about one vote in ten
changes an earlier vote. The chain then runs to the end of the voting period (every tally) and past the
timelock (every execution). The same number of plain transfers, signed the same way and applied in blocks of
the same size, gives the yardstick: `gov_tx_vs_transfer` is governance transactions applied per second over
transfers applied per second, both timed around `build_block` only (signing is done beforehand for both).
`tally_ms_p95` times each proposal's tally (lifecycle.tally: the outcome, then refunds or the treasury).

Run it as `ailedger bench governance [--quick]` (a tenth of the proposals and votes) or
`python -m bench.governance [--quick]`; the last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

from rich.console import Console

import bench
from ailedger.chain.accounts import AMOUNT_CODEC, STAKE, TRANSFER, TRANSFER_CODEC, Amount, Transfer, decode_account
from ailedger.chain.accounts import PREFIX as ACCT_PREFIX
from ailedger.chain.block import BlockHeader
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import Journal, State
from ailedger.chain.tx import Tx, decode_tx, sign_tx
from ailedger.core.keys import KeyPair
from ailedger.governance import lifecycle, views
from ailedger.governance import payloads as g
from ailedger.governance import txs as gtx
from ailedger.governance.state import Header, Status, find_header, proposal_count
from ailedger.modules import default_runtime

CHAIN_ID = "governance-bench"
FEE = 1_000
GENESIS_MS = 1_700_000_000_000
VOTERS = 100
PROPOSERS = 10
BLOCK_TXS = 5_000
UNIT = 1_000_000
MIN_DEPOSIT = UNIT
TARGET = 0.5

_err = Console(stderr=True)


def kp(i: int) -> KeyPair:
    return KeyPair.from_seed(i.to_bytes(32, "big"))


class Chain:
    """An in-memory state built block by block with the proposer's key; times each block it builds."""

    def __init__(self, runtime: Runtime, genesis: Genesis, proposer: KeyPair) -> None:
        self.runtime, self.proposer = runtime, proposer
        block0, self.state = runtime.genesis_block(genesis)
        self.parent: BlockHeader = block0.header
        self.nonces: dict[bytes, int] = {}

    def tx(self, key: KeyPair, tx_type: int, payload: bytes) -> Tx:
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return decode_tx(sign_tx(key, CHAIN_ID, n, FEE, tx_type, payload))

    def block(self, txs: list[Tx]) -> float:
        """Build one block of `txs` (every one must succeed); returns the seconds build_block took."""
        t0 = time.perf_counter()
        built = self.runtime.build_block(self.state, self.parent, self.parent.timestamp_ms + 1_000, self.proposer,
                                         txs)
        took = time.perf_counter() - t0
        assert built.block is not None and not built.rejected, built.rejected[:1]
        failed = [r.code for r in built.receipts if r.code]
        assert not failed, failed[:5]
        self.parent = built.block.header
        return took

    def blocks(self, txs: list[Tx]) -> float:
        return sum(self.block(txs[i:i + BLOCK_TXS]) for i in range(0, len(txs), BLOCK_TXS))


def supply(state: State) -> int:
    """Balances, stakes and unbonding of every account plus what governance holds (no other module is used)."""
    total = views.holdings(state)
    for k, v in state.items():
        if k.startswith(ACCT_PREFIX):
            a = decode_account(v)
            total += a.balance + a.stake + a.unbonding
    return total


def proposal(i: int, treasury_each: int) -> g.Propose:
    kind = i % 3
    if kind == 0:
        return g.Propose(g.Kind.PARAM_CHANGE, f"review window {i}", "tune", MIN_DEPOSIT,
                         [g.ParamChange("market_review_blocks", 50 + i % 100)])
    if kind == 1:
        return g.Propose(g.Kind.TEXT, f"statement {i}", "the stakers agree", MIN_DEPOSIT)
    return g.Propose(g.Kind.TREASURY_SPEND, f"grant {i}", "audits", MIN_DEPOSIT, [], kp(90_000 + i).address,
                     treasury_each)


def vote_option(voter: int, pid: int) -> int:
    """Mostly yes, with some no, abstain and veto; one proposal in ten draws mostly no (rejected) and one in ten
    mostly veto (vetoed), so every tally path and both deposit fates are timed."""
    r = (voter * 7 + pid * 13) % 20
    if pid % 10 == 3:
        return g.Option.NO if r < 14 else g.Option.YES
    if pid % 10 == 7:
        return g.Option.VETO if r < 10 else g.Option.YES
    return g.Option.YES if r < 13 else g.Option.NO if r < 17 else g.Option.ABSTAIN if r < 19 else g.Option.VETO


def run(quick: bool, proposals: int | None = None) -> dict[str, Any]:
    """The benchmark; `proposals` overrides the count (the tests run a handful)."""
    n_proposals = proposals or (100 if quick else 1_000)
    n_votes = n_proposals * VOTERS
    runtime = default_runtime()
    tally_s: list[float] = []
    real_tally = lifecycle.tally

    def timed_tally(state: Journal, height: int, pid: int, h: Header) -> None:
        t0 = time.perf_counter()
        real_tally(state, height, pid, h)
        tally_s.append(time.perf_counter() - t0)

    lifecycle.tally = timed_tally
    try:
        return _run(runtime, n_proposals, n_votes, tally_s)
    finally:
        lifecycle.tally = real_tally


def _run(runtime: Runtime, n_proposals: int, n_votes: int, tally_s: list[float]) -> dict[str, Any]:
    proposer, funder = kp(1), kp(2)
    voters = [kp(100 + i) for i in range(VOTERS)]
    proposers = [kp(1_000 + i) for i in range(PROPOSERS)]
    alloc = [Allocation(k.address, 10**15) for k in (funder, *voters, *proposers)]
    vote_blocks = -(-(n_votes + n_votes // 10) // BLOCK_TXS)
    genesis = Genesis(CHAIN_ID, GENESIS_MS, proposer.public_key, alloc,
                      {"max_block_txs": BLOCK_TXS, "gov_min_deposit": MIN_DEPOSIT,
                       "gov_voting_period_blocks": vote_blocks + 2, "gov_timelock_blocks": 2})
    chain = Chain(runtime, genesis, proposer)
    treasury_each = UNIT
    chain.block([chain.tx(v, STAKE, AMOUNT_CODEC.encode(Amount((i + 1) * 1_000 * UNIT))) for i, v in enumerate(voters)]
                + [chain.tx(funder, gtx.FUND, g.FUND_CODEC.encode(g.Fund(n_proposals * treasury_each)))])
    supply0 = supply(chain.state)

    _err.print(f"[dim]signing {n_proposals:,} proposals and {n_votes + n_votes // 10:,} votes…[/]")
    first = proposal_count(chain.state) + 1
    proposals = [chain.tx(proposers[i % PROPOSERS], gtx.PROPOSE, g.PROPOSE_CODEC.encode(proposal(i, treasury_each)))
                 for i in range(n_proposals)]
    ids = range(first, first + n_proposals)
    votes = [chain.tx(v, gtx.VOTE, g.VOTE_CODEC.encode(g.Vote(pid, vote_option(j, pid))))
             for j, v in enumerate(voters) for pid in ids]
    revotes = [chain.tx(v, gtx.VOTE, g.VOTE_CODEC.encode(g.Vote(pid, vote_option(j + 1, pid))))
               for j, v in enumerate(voters) for pid in ids if (j + pid) % 10 == 0]
    _err.print("[dim]applying them…[/]")
    propose_s = chain.blocks(proposals)
    vote_s = chain.blocks(votes + revotes)
    n_vote_txs = len(votes) + len(revotes)
    tally_s.clear()
    headers = [find_header(chain.state, pid) for pid in ids]
    assert all(hd is not None and hd.status == Status.VOTING for hd in headers)
    voting_end = max(hd.voting_end for hd in headers if hd is not None)
    while chain.parent.height < voting_end + 3:  # every tally, then every execution after the 2-block timelock
        chain.block([])
    outcomes: dict[str, int] = {}
    for pid in ids:
        hd = find_header(chain.state, pid)
        assert hd is not None
        name = {Status.EXECUTED: "executed", Status.FAILED_EXECUTION: "failed_execution", Status.REJECTED: "rejected",
                Status.VETOED: "vetoed", Status.NO_QUORUM: "no_quorum"}.get(hd.status, str(hd.status))
        outcomes[name] = outcomes.get(name, 0) + 1
    conserved = supply(chain.state) == supply0

    _err.print(f"[dim]the yardstick: {len(proposals) + n_vote_txs:,} transfers…[/]")
    transfers = [chain.tx(voters[i % VOTERS], TRANSFER, TRANSFER_CODEC.encode(Transfer(kp(50_000 + i % 5_000).address,
                                                                                          1)))
                 for i in range(len(proposals) + n_vote_txs)]
    transfer_s = chain.blocks(transfers)

    gov_per_s = (len(proposals) + n_vote_txs) / (propose_s + vote_s)
    transfer_per_s = len(transfers) / transfer_s
    tally_ms = sorted(t * 1_000 for t in tally_s)
    result: dict[str, Any] = {
        "name": "governance",
        "proposals": n_proposals,
        "votes": n_vote_txs,
        "voters": VOTERS,
        "block_txs": BLOCK_TXS,
        "proposals_per_s": round(len(proposals) / propose_s, 1),
        "votes_per_s": round(n_vote_txs / vote_s, 1),
        "gov_tx_per_s": round(gov_per_s, 1),
        "transfers_per_s": round(transfer_per_s, 1),
        "gov_tx_vs_transfer": round(gov_per_s / transfer_per_s, 3),
        "tally_ms_p50": round(tally_ms[len(tally_ms) // 2], 4),
        "tally_ms_p95": round(tally_ms[min(len(tally_ms) - 1, len(tally_ms) * 95 // 100)], 4),
        "tallies": len(tally_ms),
        "outcomes": outcomes,
        "treasury_left": views.treasury_doc(chain.state)["treasury"],
        "conserved": conserved,
        "height": chain.parent.height,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target_gov_tx_vs_transfer": TARGET,
    }
    print_table(result)
    return result


def print_table(r: dict[str, Any]) -> None:
    title = (f"governance benchmark: {r['proposals']:,} proposals, {r['votes']:,} votes by "
             f"{r['voters']} stakers, blocks of {r['block_txs']:,}")
    met = r["gov_tx_vs_transfer"] >= r["target_gov_tx_vs_transfer"]
    rows = [
        ("votes", f"{r['votes_per_s']:,.0f} /s", "vote transactions through build_block (signature, fee, handler, "
                                                 "end_block, state commit)"),
        ("proposals", f"{r['proposals_per_s']:,.0f} /s", "proposals with their full deposit (voting opens at once)"),
        ("transfers", f"{r['transfers_per_s']:,.0f} /s", "plain transfers, same block size, same path"),
        ("gov tx vs transfer", f"[{'green' if met else 'red'}]{r['gov_tx_vs_transfer']:.2f}[/]",
         f"governance transactions per second / transfers per second; target ≥ {TARGET}"),
        ("tally p50 / p95", f"{r['tally_ms_p50']:.3f} / {r['tally_ms_p95']:.3f} ms",
         f"one proposal's tally and deposit refund or forfeit, {r['tallies']:,} tallies"),
        ("outcomes", ", ".join(f"{v} {k}" for k, v in sorted(r["outcomes"].items())), "after tally and timelock"),
        ("conserved", "yes" if r["conserved"] else "[red]NO[/]",
         "balances + stakes + treasury + held deposits, before = after"),
        ("peak RSS", f"{r['peak_rss_mb']:,.0f} MB", "the whole process"),
    ]
    bench.print_measures(title, rows)


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
