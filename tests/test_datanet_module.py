"""The Datanet module through the state machine: each transaction, each error, finalisation, payouts, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ailedger.chain.accounts import UNSTAKE, Amount
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.node import Node
from ailedger.chain.replay import verify_chain
from ailedger.chain.store import Store
from ailedger.chain.tx import sign_tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.datanet import frontier, views
from ailedger.datanet import payloads as t
from ailedger.datanet.rules import split_pro_rata
from ailedger.datanet.state import Status
from ailedger.modules import default_runtime
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from tests.conftest import key
from tests.datanet_sim import FEE, PROPOSER, Sim, contribute, create, reject, rh, supply, votes

OWNER, CONTRIB, POOR, GK, STRANGER, LOW = key(1), key(2), key(3), key(4), key(5), key(6)
V1, V2, V3, V4, V5 = (key(10 + i) for i in range(5))
GK2 = key(7)
UNIT = 1_000_000
PARAMS = {"unbonding_blocks": 3, "datanet_min_window_blocks": 1, "datanet_max_votes_per_record": 3,
          "datanet_max_validators": 4, "datanet_max_gatekeepers": 2, "datanet_max_records_per_tx": 4}
ALLOC = [Allocation(OWNER.address, 10 * UNIT), Allocation(CONTRIB.address, 10 * UNIT),
         Allocation(POOR.address, 150_000), Allocation(GK.address, UNIT), Allocation(STRANGER.address, UNIT),
         Allocation(LOW.address, UNIT, UNIT - 1), Allocation(V1.address, UNIT, 6 * UNIT),
         Allocation(V2.address, UNIT, 3 * UNIT), Allocation(V3.address, UNIT, 2 * UNIT),
         Allocation(V4.address, UNIT, 2 * UNIT), Allocation(V5.address, UNIT, 2 * UNIT)]


def base() -> Sim:
    """news: quorum 2, window 5; fast: quorum 1, window 1. R1 has 3 accept votes, R3 is gate-rejected."""
    sim = Sim(ALLOC, PARAMS)
    sim.ok((OWNER, t.CREATE, create("news")), (OWNER, t.CREATE, create("fast", quorum=1, window=1)))
    sim.ok((OWNER, t.ADD_GATEKEEPER, t.AddGatekeeper("news", GK.address)),
           *[(v, t.REGISTER_VALIDATOR, t.Named("news")) for v in (V1, V2, V3, V4)],
           (V1, t.REGISTER_VALIDATOR, t.Named("fast")),
           (CONTRIB, t.CONTRIBUTE, contribute("news", [rh(1), rh(2), rh(3)])),
           (CONTRIB, t.CONTRIBUTE, contribute("fast", [rh(9)])))
    sim.ok(*[(v, t.VOTE, votes("news", (rh(1), 1))) for v in (V1, V2, V3)],
           (V3, UNSTAKE, Amount(2 * UNIT - 500_000)), (GK, t.GATE_VERDICT, reject("news", rh(3))))
    return sim


@pytest.fixture(scope="module")
def setup() -> Sim:
    return base()


BAD: list[tuple[str, Any, int, Any]] = [
    ("datanet_exists", OWNER, t.CREATE, create("news")),
    ("bad_datanet_name", OWNER, t.CREATE, create("News!")),
    ("bad_datanet_name", OWNER, t.CREATE, create("")),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", split=(7_000, 1_000, 1_000, 999))),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", quorum=0)),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", quorum=4)),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", window=0)),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", window=100_001)),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", stake=9_999)),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", pii_policy=2)),
    ("bad_datanet_param", OWNER, t.CREATE, create("x", neardup_threshold_bps=10_001)),
    ("datanet_not_found", OWNER, t.ADD_GATEKEEPER, t.AddGatekeeper("nope", GK2.address)),
    ("not_datanet_owner", STRANGER, t.ADD_GATEKEEPER, t.AddGatekeeper("news", GK2.address)),
    ("already_registered", OWNER, t.ADD_GATEKEEPER, t.AddGatekeeper("news", GK.address)),
    ("datanet_role_full", OWNER, t.ADD_GATEKEEPER, t.AddGatekeeper("news", GK2.address)),
    ("datanet_not_found", V5, t.REGISTER_VALIDATOR, t.Named("nope")),
    ("datanet_role_full", V5, t.REGISTER_VALIDATOR, t.Named("news")),
    ("already_registered", V1, t.REGISTER_VALIDATOR, t.Named("news")),
    ("validator_stake_too_low", LOW, t.REGISTER_VALIDATOR, t.Named("news")),
    ("datanet_not_found", CONTRIB, t.CONTRIBUTE, contribute("nope", [rh(5)])),
    ("duplicate_record", CONTRIB, t.CONTRIBUTE, contribute("news", [rh(5), rh(1)])),
    ("duplicate_record", CONTRIB, t.CONTRIBUTE, contribute("news", [rh(5), rh(5)])),
    ("bad_batch_root", CONTRIB, t.CONTRIBUTE, contribute("news", [rh(5)], root=bytes(32))),
    ("too_many_records", CONTRIB, t.CONTRIBUTE, contribute("news", [rh(i) for i in range(20, 25)])),
    ("empty_batch", CONTRIB, t.CONTRIBUTE, contribute("news", [])),
    ("insufficient_balance", POOR, t.CONTRIBUTE, contribute("news", [rh(5), rh(6)])),
    ("not_gatekeeper", STRANGER, t.GATE_VERDICT, reject("news", rh(2))),
    ("record_not_found", GK, t.GATE_VERDICT, reject("news", rh(2), rh(77))),
    ("record_not_pending", GK, t.GATE_VERDICT, reject("news", rh(3))),
    ("duplicate_record", GK, t.GATE_VERDICT, reject("news", rh(2), rh(2))),
    ("empty_batch", GK, t.GATE_VERDICT, reject("news")),
    ("not_validator", STRANGER, t.VOTE, votes("news", (rh(2), 1))),
    ("not_validator", V2, t.VOTE, votes("fast", (rh(9), 1))),
    ("validator_stake_too_low", V3, t.VOTE, votes("news", (rh(2), 1))),
    ("already_voted", V1, t.VOTE, votes("news", (rh(2), 1), (rh(1), 0))),
    ("already_voted", V1, t.VOTE, votes("news", (rh(2), 1), (rh(2), 0))),
    ("too_many_votes", V4, t.VOTE, votes("news", (rh(1), 1))),
    ("record_not_found", V1, t.VOTE, votes("news", (rh(77), 1))),
    ("record_not_pending", V1, t.VOTE, votes("news", (rh(3), 1))),
    ("vote_window_closed", V1, t.VOTE, votes("fast", (rh(9), 1))),
    ("bad_datanet_param", V1, t.VOTE, votes("news", (rh(2), 2))),
    ("too_many_records", V1, t.VOTE, votes("news", *[(rh(i), 1) for i in range(20, 25)])),
    ("not_datanet_owner", STRANGER, t.SNAPSHOT, t.Named("news")),
    ("datanet_not_found", OWNER, t.SNAPSHOT, t.Named("nope")),
]


@pytest.mark.parametrize(("code", "sender", "tx_type", "payload"), BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
def test_each_error_leaves_state_as_it_was_but_the_fee(setup: Sim, code: str, sender: Any, tx_type: int,
                                                        payload: Any) -> None:
    sim = setup.copy()
    before = dict(sim.state.items())
    (receipt,) = sim.block((sender, tx_type, payload))
    assert receipt.code == errors.by_name(code).number and receipt.fee == FEE
    after = dict(sim.state.items())
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {b"acct/" + sender.address, b"acct/" + PROPOSER.address}
    assert sim.balance(sender) == int.from_bytes(before[b"acct/" + sender.address][:8], "big") - FEE


def test_setup_state_reads_back(setup: Sim) -> None:
    s = setup.state
    dn = views.get_datanet(s, "news")
    assert dn is not None
    assert dn.gatekeepers == [OWNER.address, GK.address]
    assert dn.validators == [v.address for v in (V1, V2, V3, V4)]
    assert (dn.counters.pending, dn.counters.gate_rejected, dn.counters.contributors) == (2, 1, 1)
    assert dn.pool == 100_000  # the gate-rejected record's stake
    assert views.list_datanets(s) == ["news", "fast"]
    assert views.get_datanet(s, "fast").counters.expired == 1  # type: ignore[union-attr]  # no vote, quorum 1
    r1 = views.get_record(s, "news", rh(1))
    assert r1 is not None and [v.weight for v in r1.state.votes] == [3 * UNIT, 3 * UNIT // 2, UNIT]
    r3 = views.get_record(s, "news", rh(3))
    assert r3 is not None and r3.to_json()["gate"] == {"gate": 3, "reason": 7}
    assert r3.to_json()["status"] == "gate_rejected"
    assert [r.hash for r in views.pending_records(s, "news", setup.height)] == [rh(1), rh(2)]
    assert reputation.score_bps(s, CONTRIB.address, Role.CONTRIBUTOR, setup.height) < 5_000
    json = dn.to_json()
    assert json["counts"]["pending"] == 2 and json["fee_split_bps"]["data"] == 7_000 and json["pii_policy"] == "reject"
    assert views.contributors(s, "news")[0][1].submitted == 3
    assert views.contributor_json(s, "news", CONTRIB.address, setup.height)["gate_rejected"] == 1


def _decide(accepts: dict[Any, int], stake: int = 100_000, unstake: dict[Any, int] | None = None) -> Sim:
    """One record in a fresh Datanet 'd' (quorum 2, window 3), voted as given, run to the end of its window."""
    sim = Sim(ALLOC, PARAMS)
    sim.ok((OWNER, t.CREATE, create("d", stake=stake, quorum=2, window=3)))
    sim.ok(*[(v, t.REGISTER_VALIDATOR, t.Named("d")) for v in (V1, V2, V3)],
           (CONTRIB, t.CONTRIBUTE, contribute("d", [rh(1)])))
    sim.ok(*[(v, t.VOTE, votes("d", (rh(1), a))) for v, a in accepts.items()],
           *[(v, UNSTAKE, Amount(n)) for v, n in (unstake or {}).items()])
    sim.until(5)
    return sim


def test_accepted_pays_the_slash_of_the_dissenter_to_the_majority() -> None:
    before = Sim(ALLOC, PARAMS)
    sim = _decide({V1: 1, V2: 0, V3: 1})  # weights 3e6, 1.5e6, 1e6: accept 4e6 > reject 1.5e6
    rec = views.get_record(sim.state, "d", rh(1))
    assert rec is not None and rec.state.status == Status.ACCEPTED and rec.state.finalised == 5
    assert sim.balance(CONTRIB) == before.balance(CONTRIB) - FEE  # stake back, only fees spent
    assert sim.stake(V2) == 3 * UNIT - 10_000  # 10% of stake_per_record
    assert sim.balance(V1) == UNIT - 2 * FEE + 7_500 and sim.balance(V3) == UNIT - 2 * FEE + 2_500
    h = sim.height
    assert reputation.score_bps(sim.state, CONTRIB.address, Role.CONTRIBUTOR, h) > 5_000
    assert reputation.score_bps(sim.state, V1.address, Role.VALIDATOR, h) > 5_000
    assert reputation.score_bps(sim.state, V2.address, Role.VALIDATOR, h) < 5_000
    assert supply(sim.state) == supply(before.state)
    sim.ok((OWNER, t.SNAPSHOT, t.Named("d")))
    (v,) = views.list_versions(sim.state, "d")
    assert (v.number, v.root, v.count) == (1, merkle_root([rh(1)]), 1)


def test_rejected_splits_stake_and_slash_among_rejecters_with_remainder_rule() -> None:
    before = Sim(ALLOC, PARAMS)
    sim = _decide({V1: 0, V2: 1, V3: 0}, stake=100_001)  # reject 4e6 vs accept 1.5e6
    rec = views.get_record(sim.state, "d", rh(1))
    assert rec is not None and rec.state.status == Status.REJECTED
    assert sim.balance(CONTRIB) == before.balance(CONTRIB) - FEE - 100_001
    assert sim.stake(V2) == 3 * UNIT - 10_000
    # pot 110,001 over weights 3:1 -> floors 82,500 and 27,500, the 1 left goes to the heavier V1
    assert sim.balance(V1) == UNIT - 2 * FEE + 82_501 and sim.balance(V3) == UNIT - 2 * FEE + 27_500
    scores = [reputation.score_bps(sim.state, k.address, role, sim.height)
              for k, role in ((CONTRIB, Role.CONTRIBUTOR), (V1, Role.VALIDATOR), (V2, Role.VALIDATOR))]
    assert scores == [3_333, 6_666, 3_333]  # the worked example of docs/datanets.md
    assert supply(sim.state) == supply(before.state)


def test_tie_rejects_and_slash_is_capped_at_remaining_stake() -> None:
    # V3 and V4 both weigh 1e6: a tie rejects. V3 accepted, then unstaked all but 3,000 before the end.
    sim = Sim(ALLOC, PARAMS)
    sim.ok((OWNER, t.CREATE, create("d", quorum=2, window=3)))
    sim.ok(*[(v, t.REGISTER_VALIDATOR, t.Named("d")) for v in (V3, V4)],
           (CONTRIB, t.CONTRIBUTE, contribute("d", [rh(1)])))
    sim.ok((V3, t.VOTE, votes("d", (rh(1), 1))), (V4, t.VOTE, votes("d", (rh(1), 0))),
           (V3, UNSTAKE, Amount(2 * UNIT - 3_000)))
    sim.until(5)
    assert views.get_record(sim.state, "d", rh(1)).state.status == Status.REJECTED  # type: ignore[union-attr]
    assert sim.stake(V3) == 0  # slash of 10,000 capped at the 3,000 still bonded
    assert sim.balance(V4) == UNIT - 2 * FEE + 100_000 + 3_000


def test_expired_returns_the_stake_and_moves_no_reputation() -> None:
    before = Sim(ALLOC, PARAMS)
    sim = _decide({V1: 1})  # one vote, quorum 2
    rec = views.get_record(sim.state, "d", rh(1))
    assert rec is not None and rec.state.status == Status.EXPIRED
    assert sim.balance(CONTRIB) == before.balance(CONTRIB) - FEE and sim.balance(V1) == UNIT - 2 * FEE
    assert reputation.score_bps(sim.state, CONTRIB.address, Role.CONTRIBUTOR, sim.height) == 5_000
    assert reputation.score_bps(sim.state, V1.address, Role.VALIDATOR, sim.height) == 5_000
    dn = views.get_datanet(sim.state, "d")
    assert dn is not None and (dn.counters.pending, dn.counters.expired, dn.counters.accepted) == (0, 1, 0)


def test_all_zero_weight_winners_send_the_pot_to_the_pool() -> None:
    assert split_pro_rata(10, [(b"a", 0), (b"b", 0)]) == []
    assert split_pro_rata(0, [(b"a", 1)]) == []
    assert split_pro_rata(7, [(b"b", 5), (b"a", 5), (b"c", 1)]) == [(b"a", 4), (b"b", 3), (b"c", 0)]


def test_vote_after_window_and_non_validator_are_refused(setup: Sim) -> None:
    sim = setup.copy()
    sim.until(7)  # news records end their window at 7: R1 (3 accepts) accepted, R2 expired
    assert views.get_record(sim.state, "news", rh(1)).state.status == Status.ACCEPTED  # type: ignore[union-attr]
    assert views.get_record(sim.state, "news", rh(2)).state.status == Status.EXPIRED  # type: ignore[union-attr]
    (r,) = sim.block((V1, t.VOTE, votes("news", (rh(2), 1))))
    assert r.code == errors.VOTE_WINDOW_CLOSED.number
    (r,) = sim.block((STRANGER, t.VOTE, votes("news", (rh(2), 1))))
    assert r.code == errors.NOT_VALIDATOR.number


def test_snapshot_roots_follow_acceptance_order() -> None:
    sim = Sim(ALLOC, PARAMS)
    sim.ok((OWNER, t.CREATE, create("d", quorum=1, window=1)))
    sim.ok((V1, t.REGISTER_VALIDATOR, t.Named("d")))
    accepted: list[bytes] = []
    for batch in ([rh(5), rh(3)], [rh(8)], [rh(1), rh(2), rh(4)]):
        sim.ok((CONTRIB, t.CONTRIBUTE, contribute("d", batch)))
        sim.ok((V1, t.VOTE, votes("d", *[(h, int(h != rh(2))) for h in batch])))
        accepted += [h for h in batch if h != rh(2)]
        sim.ok((OWNER, t.SNAPSHOT, t.Named("d")))
    versions = views.list_versions(sim.state, "d")
    assert [v.count for v in versions] == [2, 3, 5]
    assert versions[-1].root == merkle_root(accepted) == merkle_root(views.accepted_hashes(sim.state, "d"))
    assert versions[0].root == merkle_root(accepted[:2])
    assert versions[-1].to_json()["version"] == 3


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 100])
def test_frontier_root_equals_merkle_root(n: int) -> None:
    raw, leaves = b"", [rh(i) for i in range(n)]
    for i, leaf in enumerate(leaves):
        raw = frontier.append(raw, i, leaf)
    assert frontier.root(raw, n) == merkle_root(leaves)


def test_gate_rejection_through_a_node_and_replay_reproduces_every_root(tmp_path: Path, store_url: str | None) -> None:
    runtime = default_runtime()
    genesis = Genesis("dn-node", 1_700_000_000_000, PROPOSER.public_key, ALLOC, PARAMS)
    Store.create(tmp_path / "chain", genesis, runtime, store_url).close()
    node = Node(tmp_path / "chain", runtime, PROPOSER)
    nonces: dict[bytes, int] = {}

    def send(k: Any, tx_type: int, payload: Any) -> None:
        from tests.datanet_sim import CODECS

        n = nonces.get(k.address, 0)
        node.submit(sign_tx(k, "dn-node", n, FEE, tx_type, CODECS[tx_type].encode(payload)))
        nonces[k.address] = n + 1

    try:
        send(OWNER, t.CREATE, create("news", quorum=1, window=1))
        node.produce_block()
        send(V1, t.REGISTER_VALIDATOR, t.Named("news"))
        send(CONTRIB, t.CONTRIBUTE, contribute("news", [rh(1), rh(2)]))
        node.produce_block()
        with pytest.raises(LedgerError) as info:  # the mempool refuses what would fail, for free
            send(STRANGER, t.GATE_VERDICT, reject("news", rh(2)))
        assert info.value.code is errors.NOT_GATEKEEPER
        send(OWNER, t.GATE_VERDICT, reject("news", rh(2)))
        send(V1, t.VOTE, votes("news", (rh(1), 1)))
        node.produce_block()
        send(OWNER, t.SNAPSHOT, t.Named("news"))
        node.produce_block()
        dn = views.get_datanet(node.state, "news")
        assert dn is not None and (dn.counters.accepted, dn.counters.gate_rejected, dn.pool) == (1, 1, 100_000)
        assert views.list_versions(node.state, "news")[0].root == merkle_root([rh(1)])
        report = verify_chain(node.store, node.runtime)
        assert report.ok and report.head_height == 4 and report.state_root == node.state.root().hex()
    finally:
        node.close()
