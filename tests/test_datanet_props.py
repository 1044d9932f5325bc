"""Random Datanet histories: nothing crashes, nothing goes negative, nothing is minted or burned.

Hypothesis drives create / add_gatekeeper / register / contribute / gate_verdict / vote / snapshot and
the accounts' stake / unstake across blocks, valid and invalid mixed (unknown Datanets, bad names,
repeated and unknown records, bad roots, non-validators, late votes, stake pulled out from under a
vote). After every block: supply (balances + stakes + unbonding + escrow of pending records + pools)
is what genesis made, the counters match the records, every reputation score is within 0..10,000;
at the end an independent replay with validate_block gives the same state bit for bit. A balance
or stake that went negative would fail to pack into its u64 and surface as an unhandled exception.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain.accounts import STAKE, UNSTAKE, Amount
from ailedger.chain.genesis import Allocation
from ailedger.chain.state import State
from ailedger.datanet import payloads as t
from ailedger.datanet import views
from ailedger.datanet.state import RECORD, STATUS_NAMES
from ailedger.reputation.beta import Beta, score_bps
from ailedger.reputation.module import PREFIX as REP_PREFIX
from tests.conftest import key
from tests.datanet_sim import PROPOSER, RUNTIME, Sim, contribute, create, reject, rh, supply, votes

KEYS = [key(100 + i) for i in range(8)]  # 0-1 owners, 2-3 contributors (3 is poor), 4-7 validators
ALLOC = [Allocation(KEYS[0].address, 10**9), Allocation(KEYS[1].address, 10**9),
         Allocation(KEYS[2].address, 10**9), Allocation(KEYS[3].address, 60_000)] + [
         Allocation(k.address, 10**7, 5 * 10**6 - 10**6 * i) for i, k in enumerate(KEYS[4:])]
PARAMS = {"unbonding_blocks": 2, "datanet_min_window_blocks": 1, "datanet_validator_min_stake": 1_500_000,
          "datanet_max_votes_per_record": 3, "datanet_max_records_per_tx": 4, "datanet_vote_slash_bps": 30_000,
          "reputation_half_life_blocks": 3}
anyone = st.integers(0, len(KEYS) - 1)
owner = st.sampled_from([0, 0, 1, 1, 2])
contributor = st.sampled_from([2, 2, 2, 3, 3, 0, 4])
validator = st.sampled_from([4, 5, 6] * 3 + [7, 2])
name = st.sampled_from(["a"] * 5 + ["b"] * 3 + ["c", "B!"])
fresh = st.one_of(*[st.lists(st.integers(0, 60), min_size=1, max_size=3)] * 4, st.lists(st.integers(0, 60), max_size=5))
# a reference below 10 names one of the Datanet's recent contributions (if any); 10 and 11 name raw hashes
ref = st.sampled_from([0, 0, 0, 1, 1, 2, 3, 5, 10, 11])
refs = st.one_of(*[st.lists(ref, min_size=1, max_size=2)] * 3, st.lists(st.integers(0, 11), max_size=5))
ballots = st.lists(st.tuples(ref, st.sampled_from([0, 1, 1, 1, 1, 1, 2])), min_size=1, max_size=2)
# a sweep: one validator votes on the Datanet's (up to) 4 latest contributions, accept = bit i of the mask
sweep = st.tuples(st.just("sweep"), st.sampled_from([4, 5, 6]), st.sampled_from(["a", "b"]), st.integers(0, 15))

ops = st.one_of(
    st.tuples(st.just("create"), owner, name, st.sampled_from([0, 1, 2, 3, 4]), st.sampled_from([0, 1, 2, 3]),
              st.sampled_from([0, 10_000, 33_333, 10**12])),
    st.tuples(st.just("gatekeeper"), owner, name, anyone),
    st.tuples(st.just("register"), validator, name),
    *[st.tuples(st.just("contribute"), contributor, name, fresh, st.sampled_from([True] * 9 + [False]))] * 2,
    st.tuples(st.just("gate"), owner, name, refs),
    *[st.tuples(st.just("vote"), validator, name, ballots)] * 5,
    st.tuples(st.just("snapshot"), owner, name),
    st.tuples(st.just("stake"), validator, st.sampled_from([1, 10**6, 10**8])),
    st.tuples(st.just("unstake"), validator, st.sampled_from([1, 10**6, 4 * 10**6])),
)
good_contribution = st.tuples(st.just("contribute"), st.just(2), st.sampled_from(["a", "b"]),
                              st.lists(st.integers(0, 60), min_size=1, max_size=3), st.just(True))
# each block: contributions that mostly succeed, sweeps of votes on the latest ones, then anything
blocks = st.builds(lambda first, sweeps, rest: first + sweeps + rest, st.lists(good_contribution, max_size=2),
                   st.lists(sweep, max_size=3), st.lists(ops, min_size=1, max_size=8))
plans = st.lists(blocks, min_size=2, max_size=8)


def to_tx(op: tuple[Any, ...], seen: dict[str, list[bytes]]) -> tuple[Any, int, Any]:
    kind, sender = op[0], KEYS[op[1]]

    def pick(i: int) -> bytes:
        recent = seen.get(op[2], [])
        return recent[-1 - i % len(recent)] if i < 10 and recent else rh(i)

    if kind == "create":
        return sender, t.CREATE, create(op[2], stake=op[5], quorum=op[3], window=op[4])
    if kind == "gatekeeper":
        return sender, t.ADD_GATEKEEPER, t.AddGatekeeper(op[2], KEYS[op[3]].address)
    if kind == "register":
        return sender, t.REGISTER_VALIDATOR, t.Named(op[2])
    if kind == "contribute":
        hashes = [rh(i) for i in op[3]]
        return sender, t.CONTRIBUTE, contribute(op[2], hashes, None if op[4] else bytes(32))
    if kind == "gate":
        return sender, t.GATE_VERDICT, reject(op[2], *[pick(i) for i in op[3]])
    if kind == "vote":
        return sender, t.VOTE, votes(op[2], *[(pick(i), a) for i, a in op[3]])
    if kind == "sweep":
        return sender, t.VOTE, votes(op[2], *[(h, op[3] >> i & 1) for i, h in enumerate(seen.get(op[2], [])[-4:])])
    if kind == "snapshot":
        return sender, t.SNAPSHOT, t.Named(op[2])
    return sender, STAKE if kind == "stake" else UNSTAKE, Amount(op[2])


def check_invariants(state: State, total: int) -> None:
    assert supply(state) == total
    by_dn: dict[str, Counter[str]] = {}
    for k, v in state.items():
        if k.startswith(b"dn/rec/"):
            dn = k[len(b"dn/rec/"):-33].decode()
            by_dn.setdefault(dn, Counter())[STATUS_NAMES[RECORD.decode(v).status]] += 1
        elif k.startswith(REP_PREFIX):
            b = Beta(*(int.from_bytes(v[i:i + 8], "big") for i in (0, 8, 16)))
            assert 0 <= score_bps(b.alpha, b.beta) <= 10_000
    for dn, counts in by_dn.items():
        view = views.get_datanet(state, dn)
        assert view is not None
        c = view.counters
        counts["accepted"] += counts.pop("retracted", 0)  # counters.accepted counts every record ever accepted
        named = ("pending", "accepted", "rejected", "gate_rejected", "expired")
        assert set(counts) <= set(named) and set(STATUS_NAMES.values()) == {*named, "retracted"}
        assert counts == Counter({n: getattr(c, n) for n in named if getattr(c, n)})
        assert len(views.accepted_hashes(state, dn)) == c.accepted


@settings(max_examples=300, deadline=None)
@given(plan=plans)
def test_random_datanet_histories_conserve_supply_and_replay(plan: list[list[tuple[Any, ...]]]) -> None:
    sim = Sim(ALLOC, PARAMS)
    total = supply(sim.state)
    setup = [("create", 0, "a", 1, 2, 10_000), ("create", 1, "b", 2, 3, 33_333), ("gatekeeper", 0, "a", 1),
             *[("register", v, n) for v in (4, 5, 6) for n in ("a", "b")]]
    seen: dict[str, list[bytes]] = {}
    for block_ops in [setup, *plan, [], [], []]:  # trailing empty blocks let every short window close
        pending: Counter[bytes] = Counter()
        txs = [sim.tx(*to_tx(op, seen), pending=pending) for op in block_ops]
        built = RUNTIME.build_block(sim.state, sim.parent, sim.parent.timestamp_ms + 1, PROPOSER, txs)
        assert built.block is not None
        assert all(exc.code.number // 100 == 2 for _, exc in built.rejected)  # only admission (nonce, balance)
        for tx, receipt in zip(built.included, built.receipts, strict=True):
            if receipt.ok and tx.type == t.CONTRIBUTE:
                batch = t.CONTRIBUTE_CODEC.decode(tx.payload)
                seen.setdefault(batch.name, []).extend(batch.records)
        sim.parent = built.block.header
        sim.blocks.append(built.block)
        check_invariants(sim.state, total)
    fresh = RUNTIME.genesis_block(sim.genesis)[1]
    parent = sim.genesis_header
    for block in sim.blocks:
        RUNTIME.validate_block(fresh, parent, block)
        parent = block.header
    assert sorted(fresh.rows()) == sorted(sim.state.rows())


def test_end_block_never_raises_on_a_busy_height() -> None:
    """Many records from several Datanets due at once, with votes that slash validators to zero."""
    sim = Sim(ALLOC, PARAMS)
    total = supply(sim.state)
    sim.ok((KEYS[0], t.CREATE, create("a", stake=10**6, quorum=1, window=2)),
           (KEYS[1], t.CREATE, create("b", stake=10**5, quorum=2, window=2)))
    sim.ok(*[(k, t.REGISTER_VALIDATOR, t.Named(n)) for k in KEYS[4:6] for n in ("a", "b")],
           (KEYS[2], t.CONTRIBUTE, contribute("a", [rh(i) for i in range(4)])),
           (KEYS[2], t.CONTRIBUTE, contribute("b", [rh(i) for i in range(4)])))
    sim.ok(*[(k, t.VOTE, votes(n, *[(rh(i), (i + j) % 2) for i in range(4)]))
             for j, k in enumerate(KEYS[4:6]) for n in ("a", "b")])
    sim.until(5)
    check_invariants(sim.state, total)
    for n in ("a", "b"):
        dn = views.get_datanet(sim.state, n)
        assert dn is not None and dn.counters.pending == 0
    sim.ok((KEYS[0], t.SNAPSHOT, t.Named("a")))
    (version,) = views.list_versions(sim.state, "a")
    assert version.count == views.get_datanet(sim.state, "a").counters.accepted > 0  # type: ignore[union-attr]
