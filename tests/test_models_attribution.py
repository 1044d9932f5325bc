"""publish_attribution through the state machine: the owner sets, and may replace, a version's bundle root."""

from __future__ import annotations

import pytest

from ailedger.models import payloads as m
from ailedger.models import service, views
from tests.datanet_sim import Sim
from tests.models_sim import assert_fails_cleanly, assert_replay_matches, h
from tests.test_models_module import BUILDER, OTHER, world

ROOT1, ROOT2 = h(700), h(701)


@pytest.fixture(scope="module")
def setup() -> Sim:
    return world()


def test_owner_publishes_then_replaces_the_root(setup: Sim) -> None:
    sim = setup.copy()
    before = views.get_adapter(sim.state, "legal", 1)
    assert before is not None and before.to_json()["attribution_root"] is None
    assert before.to_json()["attribution_height"] is None
    sim.ok((BUILDER, m.PUBLISH_ATTRIBUTION, m.PublishAttribution("legal", 1, ROOT1)))
    first = sim.height
    doc = service.model_json(sim.state, sim.height, "legal@1")
    assert (doc["attribution_root"], doc["attribution_height"]) == (ROOT1.hex(), first)
    other = views.get_adapter(sim.state, "legal", 2)
    assert other is not None and other.to_json()["attribution_root"] is None  # only that version
    sim.ok((BUILDER, m.PUBLISH_ATTRIBUTION, m.PublishAttribution("legal", 1, ROOT2)))
    after = views.get_adapter(sim.state, "legal", 1)
    assert after is not None and (after.attribution_root, after.attribution_height) == (ROOT2, sim.height)
    assert [x["attribution_root"] for x in views.list_models(sim.state)] == [ROOT2.hex(), None]
    assert_replay_matches(sim)


BAD = [
    ("not_model_owner", OTHER, m.PublishAttribution("legal", 1, ROOT1)),
    ("model_not_found", BUILDER, m.PublishAttribution("nope", 1, ROOT1)),
    ("model_version_not_found", BUILDER, m.PublishAttribution("legal", 3, ROOT1)),
    ("bad_model_param", BUILDER, m.PublishAttribution("legal", 1, bytes(32))),
]


@pytest.mark.parametrize(("code", "sender", "payload"), BAD, ids=[x[0] for x in BAD])
def test_refusals_leave_the_ledger_as_it_was(setup: Sim, code: str, sender: object,
                                             payload: m.PublishAttribution) -> None:
    assert_fails_cleanly(setup.copy(), sender, m.PUBLISH_ATTRIBUTION, payload, code)  # type: ignore[arg-type]


def test_a_retired_version_takes_no_new_root(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((BUILDER, m.RETIRE, m.Retire("legal", 2)))
    assert_fails_cleanly(sim, BUILDER, m.PUBLISH_ATTRIBUTION, m.PublishAttribution("legal", 2, ROOT1), "model_retired")
