"""A serve order names the model it wants served, checked against the models registry when it is posted:
an exact adapter version (or a name, pinned to its newest live version), or a registered base. An unknown,
malformed or retired model, or a model on a training order, is a coded error that leaves state as it was."""

from __future__ import annotations

import pytest

from ailedger.market import payloads as p
from ailedger.market import views
from ailedger.market.state import Kind
from ailedger.models import payloads as m
from tests.datanet_sim import Sim
from tests.market_sim import fails_cleanly, order
from tests.models_sim import h
from tests.test_models_module import BUILDER, world


def serve(model: str, spec_hash: bytes = bytes(32), **kw: object) -> p.PostOrder:
    return order(unit=p.Unit.KTOKENS, spec_hash=spec_hash, model=model, **kw)


@pytest.fixture
def sim() -> Sim:
    return world()  # base smollm2 (weights h(1)); legal@1 (adapter h(10)) and legal@2 (h(11)) published


def test_a_serve_order_records_the_exact_version_and_its_hash(sim: Sim) -> None:
    sim.ok((BUILDER, p.POST_ORDER, serve("legal@1")), (BUILDER, p.POST_ORDER, serve("legal")),
           (BUILDER, p.POST_ORDER, serve("smollm2")), (BUILDER, p.POST_ORDER, serve("legal@1", h(10))),
           (BUILDER, p.POST_ORDER, serve("", h(3))))
    got = [(o.model, o.spec_hash) for o in views.orders(sim.state)]
    assert got == [("legal@1", h(10)), ("legal@2", h(11)), ("smollm2", h(1)), ("legal@1", h(10)), ("", h(3))]
    assert views.orders(sim.state)[0].to_json()["model"] == "legal@1"
    assert views.orders(sim.state)[4].to_json()["model"] is None  # the provider's base, as before


@pytest.mark.parametrize("payload,code", [
    (serve("nope@1"), "model_not_found"),
    (serve("legal@9"), "model_version_not_found"),
    (serve("Bad!"), "bad_model_ref"),
    (serve("legal@"), "bad_model_ref"),
    (serve("legal@1", h(11)), "market_bad_order"),  # a spec hash that is not legal@1's adapter
    (order(spec_hash=h(10), model="legal@1", kind=Kind.TRAIN), "market_bad_order"),  # only serve orders
])
def test_unknown_or_malformed_models_are_refused(sim: Sim, payload: p.PostOrder, code: str) -> None:
    fails_cleanly(sim, BUILDER, p.POST_ORDER, payload, code)


def test_a_retired_version_is_refused_and_a_name_pins_its_newest_live_version(sim: Sim) -> None:
    sim.ok((BUILDER, m.RETIRE, m.Retire("legal", 2)))
    fails_cleanly(sim, BUILDER, p.POST_ORDER, serve("legal@2"), "model_retired")
    sim.ok((BUILDER, p.POST_ORDER, serve("legal")))
    assert views.orders(sim.state)[-1].model == "legal@1"
    sim.ok((BUILDER, m.RETIRE, m.Retire("legal", 1)))
    fails_cleanly(sim, BUILDER, p.POST_ORDER, serve("legal"), "model_retired")
