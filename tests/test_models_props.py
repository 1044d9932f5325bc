"""Random histories of models and jobs: nothing crashes, nothing goes negative, nothing is minted or burned.

Hypothesis drives register_base / publish_adapter / set_price / retire and post_job / claim_job /
submit_result / accept_result, with stake and unstake of the workers, valid and invalid mixed
(unknown names, reused hashes, wrong owners, out-of-range prices and deadlines, jobs in the wrong
state or past their deadline). After every block: supply (balances, stakes, unbonding, Datanet
escrow and pools, job escrow) is what genesis made, and the model indexes agree with the records;
at the end an independent replay with validate_block gives the same state bit for bit. A balance
that went negative would fail to pack into its u64 and surface as an unhandled exception.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain.accounts import STAKE, UNSTAKE, Amount
from ailedger.chain.genesis import Allocation
from ailedger.chain.state import State
from ailedger.core.errors import LedgerError
from ailedger.market import payloads as j
from ailedger.market import views as jobs
from ailedger.models import payloads as m
from ailedger.models import state as ms
from ailedger.models import views as models
from tests.conftest import key
from tests.datanet_sim import PROPOSER, RUNTIME, Sim
from tests.models_sim import adapter, assert_replay_matches, base, datanet_with_versions, h, total_supply

KEYS = [key(200 + i) for i in range(6)]  # 0-1 posters/builders, 2-3 workers, 4 low stake, 5 poor
ALLOC = [Allocation(KEYS[0].address, 10**9), Allocation(KEYS[1].address, 10**9),
         Allocation(KEYS[2].address, 10**7, 2 * 10**6), Allocation(KEYS[3].address, 10**7, 10**6),
         Allocation(KEYS[4].address, 10**7, 10**6 - 1), Allocation(KEYS[5].address, 20_000)]
PARAMS = {"unbonding_blocks": 2, "datanet_min_window_blocks": 1, "market_worker_min_stake": 10**6,
          "market_review_blocks": 2, "market_max_deadline_blocks": 6, "market_min_budget": 1_000,
          "models_max_rank": 64, "models_max_price_per_1k_tokens": 10**6, "reputation_half_life_blocks": 5}

anyone = st.integers(0, len(KEYS) - 1)
builder = st.sampled_from([0, 0, 1, 1, 5])
worker = st.sampled_from([2, 2, 3, 3, 4, 0])
model = st.sampled_from(["m1", "m1", "m2", "x.y", "Bad"])
base_name = st.sampled_from(["b1", "b1", "b2", "nope", "B!"])
version = st.sampled_from([1, 1, 2, 3, 0])
price = st.sampled_from([0, 2_000, 2_000, 10**6, 10**6 + 1])
# a reference below 8 names one of the recent jobs (if any); 8 and 9 name unknown ids
ref = st.sampled_from([0, 0, 1, 1, 2, 3, 8, 9])

ops = st.one_of(
    st.tuples(st.just("base"), builder, st.sampled_from(["b3", "b1", "B!"]), st.integers(0, 4)),
    st.tuples(st.just("publish"), builder, model, base_name, st.integers(0, 6), st.sampled_from(["news", "nope"]),
                version, st.sampled_from([8, 8, 0, 65]), price),
    st.tuples(st.just("price"), builder, model, version, price),
    st.tuples(st.just("retire"), builder, model, version),
    st.tuples(st.just("post"), builder, st.sampled_from([1, 2, 3, 0, 4]),
              st.sampled_from([1_000, 5_000, 333_333, 999, 10**12]), st.sampled_from([1, 2, 3, 0, 7])),
    st.tuples(st.just("claim"), worker, ref),
    st.tuples(st.just("submit"), worker, ref, st.sampled_from([True] * 5 + [False])),
    st.tuples(st.just("accept"), anyone, ref),
    st.tuples(st.just("stake"), worker, st.sampled_from([1, 10**6])),
    st.tuples(st.just("unstake"), worker, st.sampled_from([1, 10**6])),
)
good = st.one_of(
    st.tuples(st.just("post"), st.sampled_from([0, 1]), st.sampled_from([1, 2, 3]), st.sampled_from([1_000, 5_001]),
              st.sampled_from([1, 2, 4])),
    st.tuples(st.just("publish"), st.sampled_from([0, 1]), st.sampled_from(["m1", "m2"]), st.sampled_from(["b1", "b2"]),
              st.integers(1, 9), st.just("news"), st.sampled_from([1, 2]), st.just(8), st.just(2_000)),
    st.tuples(st.just("claim"), st.sampled_from([2, 3]), st.sampled_from([0, 1, 2])),
    st.tuples(st.just("submit"), st.sampled_from([2, 3]), st.sampled_from([0, 1, 2]), st.just(True)),
    st.tuples(st.just("accept"), st.sampled_from([0, 1]), st.sampled_from([0, 1, 2])),
    st.tuples(st.just("price"), st.sampled_from([0, 1]), st.sampled_from(["m1", "m2"]), st.just(1), price),
    st.tuples(st.just("retire"), st.sampled_from([0, 1]), st.sampled_from(["m1", "m2"]), st.sampled_from([1, 2])),
)
# a job's whole life in one block: claim, deliver, and (mostly) the poster's acceptance
life = st.builds(lambda w, r, acc: [("claim", w, r), ("submit", w, r, True)] + ([("accept", -1, r)] if acc else []),
                 st.sampled_from([2, 3]), st.sampled_from([0, 1]), st.sampled_from([True, True, False]))
# each block: operations that often succeed, job lives, then anything
blocks = st.builds(lambda first, lives, rest: first + [op for life_ops in lives for op in life_ops] + rest,
                   st.lists(good, max_size=8), st.lists(life, max_size=2), st.lists(ops, max_size=5))
plans = st.lists(blocks, min_size=2, max_size=8)


def to_tx(op: tuple[Any, ...], seen: list[tuple[bytes, int]]) -> tuple[Any, int, Any]:
    """`seen` holds (job id, poster index) of the jobs posted so far; sender -1 is the picked job's poster."""

    def pick(i: int) -> bytes:
        return seen[-1 - i % len(seen)][0] if i < 8 and seen else h(900 + i)

    kind = op[0]
    sender = KEYS[op[1]] if op[1] >= 0 else KEYS[seen[-1 - op[2] % len(seen)][1] if seen else 0]

    if kind == "base":
        return sender, m.REGISTER_BASE, base(op[2], weights_hash=bytes(32) if op[3] == 0 else h(op[3]))
    if kind == "publish":
        ah = bytes(32) if op[4] == 0 else h(100 + op[4])
        return sender, m.PUBLISH_ADAPTER, adapter(op[2], ah, datanet=op[5], version=op[6], base_name=op[3],
                                                  rank=op[7], price=op[8])
    if kind == "price":
        return sender, m.SET_PRICE, m.SetPrice(op[2], op[3], op[4])
    if kind == "retire":
        return sender, m.RETIRE, m.Retire(op[2], op[3])
    if kind == "post":
        return sender, j.POST_JOB, j.PostJob(op[2], h(7), op[3], op[4])
    if kind == "claim":
        return sender, j.CLAIM_JOB, j.JobRef(pick(op[2]))
    if kind == "submit":
        return sender, j.SUBMIT_RESULT, j.SubmitResult(pick(op[2]), h(8) if op[3] else bytes(32))
    if kind == "accept":
        return sender, j.ACCEPT_RESULT, j.JobRef(pick(op[2]))
    return sender, STAKE if kind == "stake" else UNSTAKE, Amount(op[2])


def check_invariants(state: State, total: int) -> None:
    assert total_supply(state) == total
    hashes = set()
    for name in models.model_names(state):
        head = ms.get_head(state, name)
        assert head is not None
        vs = models.versions(state, name)
        assert [a.version for a in vs] == list(range(1, head.versions + 1))
        for a in vs:
            assert a.owner == head.owner and ms.find_adapter_hash(state, a.adapter_hash) == (name, a.version)
            assert ms.get_base(state, a.base) is not None
            hashes.add(a.adapter_hash)
        try:
            assert not models.resolve(state, name).retired
        except LedgerError as exc:
            assert exc.code.name == "model_retired"
    assert len(hashes) == sum(ms.get_head(state, n).versions for n in models.model_names(state))  # type: ignore[union-attr]
    for job in jobs.list_jobs(state):
        assert 0 <= job.status <= 4 and job.budget > 0


@settings(max_examples=150, deadline=None)
@given(plan=plans)
def test_random_model_and_job_histories_conserve_supply_and_replay(plan: list[list[tuple[Any, ...]]]) -> None:
    sim = Sim(ALLOC, PARAMS)
    total = total_supply(sim.state)
    datanet_with_versions(sim, KEYS[0], KEYS[2], KEYS[1], batches=((1, 2), (3,)))
    sim.ok((KEYS[0], m.REGISTER_BASE, base("b1", weights=1)), (KEYS[1], m.REGISTER_BASE, base("b2", weights=2)))
    seen: list[tuple[bytes, int]] = []
    for block_ops in [*plan, [], [], [], [], [], [], [], [], []]:  # trailing blocks let every deadline pass
        pending: Counter[bytes] = Counter()
        txs = [sim.tx(*to_tx(op, seen), pending=pending) for op in block_ops]
        built = RUNTIME.build_block(sim.state, sim.parent, sim.parent.timestamp_ms + 1, PROPOSER, txs)
        assert built.block is not None
        assert all(exc.code.number // 100 == 2 for _, exc in built.rejected)  # only admission (nonce, balance)
        for tx, receipt in zip(built.included, built.receipts, strict=True):
            if receipt.ok and tx.type == j.POST_JOB:
                poster = next(i for i, k in enumerate(KEYS) if k.address == tx.sender_address)
                seen.append((jobs.job_id(tx.sender_address, tx.nonce), poster))
        sim.parent = built.block.header
        sim.blocks.append(built.block)
        check_invariants(sim.state, total)
    assert jobs.escrowed(sim.state) == 0  # every deadline and review window has passed
    assert_replay_matches(sim)
