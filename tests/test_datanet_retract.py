"""Retraction (datanet tx 0x0208): who may take an accepted record out of paid use, what it changes, what it refuses.

The settlement side (a retracted record stops earning from the block of its retraction) is in
tests/test_settlement_rules.py and the random histories of tests/test_settlement_props.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from ailedger.chain.genesis import Allocation
from ailedger.core import errors
from ailedger.datanet import payloads as t
from ailedger.datanet import service, views
from ailedger.datanet.state import Status, get_retraction
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from tests.conftest import key
from tests.datanet_sim import FEE, PROPOSER, Sim, contribute, create, rh, supply, votes

OWNER, CONTRIB, OTHER, V1 = key(31), key(32), key(33), key(34)
UNIT = 1_000_000
ALLOC = [Allocation(k.address, 10 * UNIT) for k in (OWNER, CONTRIB, OTHER)] + [Allocation(V1.address, UNIT, 3 * UNIT)]


def world() -> Sim:
    """Datanet d (quorum 1, window 1): rh(1), rh(2) accepted from CONTRIB, rh(3) accepted from OTHER,
    rh(4) rejected; Datanet slow (window 50): rh(5) pending."""
    sim = Sim(ALLOC, {"datanet_min_window_blocks": 1})
    sim.ok((OWNER, t.CREATE, create("d", quorum=1, window=1)), (OWNER, t.CREATE, create("slow", quorum=1, window=50)),
           (V1, t.REGISTER_VALIDATOR, t.Named("d")))
    sim.ok((CONTRIB, t.CONTRIBUTE, contribute("d", [rh(1), rh(2), rh(4)])),
           (OTHER, t.CONTRIBUTE, contribute("d", [rh(3)])))
    sim.ok((V1, t.VOTE, votes("d", (rh(1), 1), (rh(2), 1), (rh(3), 1), (rh(4), 0))))
    sim.until(sim.height + 2)
    sim.ok((CONTRIB, t.CONTRIBUTE, contribute("slow", [rh(5)])))
    return sim


@pytest.fixture(scope="module")
def setup() -> Sim:
    return world()


def retract(*records: bytes, reason: int = t.RetractReason.CONSENT_WITHDRAWN, name: str = "d") -> t.Retract:
    return t.Retract(name, list(records), reason)


def _status(sim: Sim, h: bytes) -> int:
    found = views.get_record(sim.state, "d", h)
    assert found is not None
    return found.state.status


def test_the_contributor_withdraws_its_own_records(setup: Sim) -> None:
    sim = setup.copy()
    rep = reputation.score_bps(sim.state, CONTRIB.address, Role.CONTRIBUTOR, sim.height)
    balance, total = sim.balance(CONTRIB), supply(sim.state)
    sim.ok((CONTRIB, t.RETRACT, retract(rh(1), rh(2))))
    assert _status(sim, rh(1)) == _status(sim, rh(2)) == Status.RETRACTED and _status(sim, rh(3)) == Status.ACCEPTED
    r = get_retraction(sim.state, "d", rh(1))
    assert r is not None and (r.height, r.by, r.reason) == (sim.height, CONTRIB.address, 1)
    assert sim.balance(CONTRIB) == balance - FEE and supply(sim.state) == total  # nothing but the fee moves
    assert reputation.score_bps(sim.state, CONTRIB.address, Role.CONTRIBUTOR, sim.height) == rep  # no penalty
    doc = service.record_json(sim.state, sim.height, "d", rh(1).hex())
    assert doc["status"] == "retracted" and doc["retracted"]["reason"] == "consent_withdrawn"
    # the accepted list and the roots it makes do not change: versions stay checkable
    assert views.accepted_hashes(sim.state, "d", 0, 3) == views.accepted_hashes(setup.state, "d", 0, 3)


def test_the_owner_takes_a_record_down_and_the_contributor_pays_in_reputation(setup: Sim) -> None:
    sim = setup.copy()
    rep = reputation.score_bps(sim.state, OTHER.address, Role.CONTRIBUTOR, sim.height)
    sim.ok((OWNER, t.RETRACT, retract(rh(3), reason=t.RetractReason.PERSONAL_DATA)))
    assert _status(sim, rh(3)) == Status.RETRACTED
    assert reputation.score_bps(sim.state, OTHER.address, Role.CONTRIBUTOR, sim.height) < rep
    doc = service.record_json(sim.state, sim.height, "d", rh(3).hex())
    assert doc["retracted"] == {"height": sim.height, "by": OWNER.address_text, "reason": "personal_data"}


BAD: list[tuple[str, Any, Any]] = [
    ("not_record_contributor", OTHER, retract(rh(1))),  # consent is the contributor's to withdraw
    ("not_record_contributor", CONTRIB, retract(rh(1), rh(3))),  # one foreign record fails the whole batch
    ("not_datanet_owner", CONTRIB, retract(rh(1), reason=t.RetractReason.LICENCE)),  # takedowns are the owner's
    ("record_not_accepted", CONTRIB, retract(rh(4))),  # rejected
    ("record_not_accepted", CONTRIB, retract(rh(5), name="slow")),  # pending
    ("record_not_found", CONTRIB, retract(rh(77))),
    ("duplicate_record", CONTRIB, retract(rh(1), rh(1))),
    ("empty_batch", CONTRIB, retract()),
    ("bad_datanet_param", OWNER, retract(rh(1), reason=9)),
    ("datanet_not_found", CONTRIB, retract(rh(1), name="nope")),
]


@pytest.mark.parametrize(("code", "sender", "payload"), BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
def test_refusals_leave_state_as_it_was_but_the_fee(setup: Sim, code: str, sender: Any, payload: Any) -> None:
    sim = setup.copy()
    before = dict(sim.state.items())
    (receipt,) = sim.block((sender, t.RETRACT, payload))
    assert receipt.code == errors.by_name(code).number and receipt.fee == FEE
    after = dict(sim.state.items())
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {b"acct/" + sender.address, b"acct/" + PROPOSER.address}


def test_a_retracted_record_cannot_be_retracted_again(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((CONTRIB, t.RETRACT, retract(rh(2))))
    (receipt,) = sim.block((OWNER, t.RETRACT, retract(rh(2), reason=t.RetractReason.HARMFUL)))
    assert receipt.code == errors.RECORD_NOT_ACCEPTED.number
