"""The models module through the state machine: each transaction, each error, provenance, resolve syntax."""

from __future__ import annotations

from typing import Any

import pytest

from ailedger.chain.genesis import Allocation
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.datanet import views as datanets
from ailedger.models import payloads as m
from ailedger.models import views
from ailedger.models.state import Adapter
from tests.conftest import key
from tests.datanet_sim import Sim, rh
from tests.models_sim import adapter, assert_fails_cleanly, base, datanet_with_versions, h

OWNER, VAL, CONTRIB, BUILDER, OTHER = key(1), key(2), key(3), key(4), key(5)
UNIT = 1_000_000
ALLOC_ARGS = [(k.address, 100 * UNIT) for k in (OWNER, CONTRIB, BUILDER, OTHER)]
PARAMS = {"datanet_min_window_blocks": 1, "models_max_rank": 64, "models_min_price_per_1k_tokens": 10,
          "models_max_price_per_1k_tokens": 1_000_000}


def _sim() -> Sim:
    return Sim([Allocation(a, b) for a, b in ALLOC_ARGS] + [Allocation(VAL.address, UNIT, 5 * UNIT)], PARAMS)


def world() -> Sim:
    """Datanet news v1 = {rh1, rh2}, v2 = {rh1, rh2, rh3}; base smollm2; BUILDER publishes legal@1, legal@2."""
    sim = _sim()
    datanet_with_versions(sim, OWNER, VAL, CONTRIB)
    sim.ok((OTHER, m.REGISTER_BASE, base()))
    sim.ok((BUILDER, m.PUBLISH_ADAPTER, adapter("legal", h(10), version=1)),
           (BUILDER, m.PUBLISH_ADAPTER, adapter("legal", h(11), version=2, price=3_000)))
    return sim


@pytest.fixture(scope="module")
def setup() -> Sim:
    return world()


def test_publish_copies_provenance_from_the_datanet_version(setup: Sim) -> None:
    s = setup.state
    v1 = datanets.get_version(s, "news", 1)
    assert v1 is not None and v1.root == merkle_root([rh(1), rh(2)])
    a1, a2 = views.versions(s, "legal")
    assert (a1.version, a1.snapshot_root, a1.snapshot_count) == (1, v1.root, 2)
    assert (a2.version, a2.snapshot_root, a2.snapshot_count) == (2, merkle_root([rh(1), rh(2), rh(3)]), 3)
    assert a1.owner == BUILDER.address and a1.base_hash == h(1) and a1.adapter_hash == h(10)
    j = a2.to_json()
    assert j["id"] == "legal@2" and j["base"] == {"name": "smollm2", "weights_hash": h(1).hex()}
    assert j["datanet"] == {"name": "news", "version": 2, "snapshot_root": a2.snapshot_root.hex(), "records": 3}
    assert j["price_per_1k_tokens"] == 3_000 and j["job_id"] is None and j["retired"] is False
    assert j["hyperparams_hash"] == h(500).hex() and j["rank"] == 8
    b = views.get_base(s, "smollm2")
    assert b is not None and b.registrar == OTHER.address and b.to_json()["params_count"] == 134_515_008
    assert [x.name for x in views.list_bases(s)] == ["smollm2"]
    assert [x["id"] for x in views.list_models(s)] == ["legal@1", "legal@2"]


def test_a_later_snapshot_does_not_change_published_provenance(setup: Sim) -> None:
    sim = setup.copy()
    datanet_with_versions(sim, OWNER, VAL, CONTRIB, name="other", batches=((7,),))
    a1 = views.get_adapter(sim.state, "legal", 1)
    assert a1 is not None and a1.snapshot_count == 2


REFS: list[tuple[str, Any]] = [
    ("legal", 2), ("legal@1", 1), ("legal@2", 2), (f"legal@sha256:{h(10).hex()}", 1),
    (f"legal@sha256:{h(11).hex().upper()}", 2),
    ("nope", "model_not_found"), ("legal@3", "model_version_not_found"), ("legal@0", "bad_model_ref"),
    ("legal@01", "bad_model_ref"), ("legal@-1", "bad_model_ref"), ("legal@", "bad_model_ref"),
    ("@1", "bad_model_ref"), ("Legal", "bad_model_ref"), ("legal@sha256:abc", "bad_model_ref"),
    ("legal@1@2", "bad_model_ref"), (f"legal@sha256:{h(99).hex()}", "model_version_not_found"),
    ("legal@99999999999", "bad_model_ref"),
]


@pytest.mark.parametrize(("ref", "want"), REFS)
def test_resolve_syntax(setup: Sim, ref: str, want: Any) -> None:
    if isinstance(want, int):
        assert views.resolve(setup.state, ref).version == want
    else:
        with pytest.raises(LedgerError) as exc:
            views.resolve(setup.state, ref)
        assert exc.value.code.name == want


def test_resolve_by_hash_of_another_name_is_not_found(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((OTHER, m.PUBLISH_ADAPTER, adapter("chat", h(20))))
    with pytest.raises(LedgerError) as exc:
        views.resolve(sim.state, f"legal@sha256:{h(20).hex()}")
    assert exc.value.code == errors.MODEL_VERSION_NOT_FOUND
    assert views.resolve(sim.state, f"chat@sha256:{h(20).hex()}").owner == OTHER.address


def test_set_price_and_retire(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((BUILDER, m.SET_PRICE, m.SetPrice("legal", 1, 10)))
    assert views.resolve(sim.state, "legal@1").price_per_1k_tokens == 10
    sim.ok((BUILDER, m.RETIRE, m.Retire("legal", 2)))
    retired = views.get_adapter(sim.state, "legal", 2)
    assert retired is not None and retired.retired and retired.retired_height == sim.height
    assert views.resolve(sim.state, "legal").version == 1  # latest live version
    for ref in ("legal@2", f"legal@sha256:{h(11).hex()}"):
        with pytest.raises(LedgerError) as exc:
            views.resolve(sim.state, ref)
        assert exc.value.code == errors.MODEL_RETIRED
    assert views.resolve(sim.state, "legal@2", allow_retired=True).retired == 1
    assert [x["id"] for x in views.list_models(sim.state)] == ["legal@1"]
    assert len(views.list_models(sim.state, include_retired=True)) == 2
    sim.ok((BUILDER, m.RETIRE, m.Retire("legal", 1)))
    with pytest.raises(LedgerError) as exc:
        views.resolve(sim.state, "legal")
    assert exc.value.code == errors.MODEL_RETIRED
    assert views.get_adapter(sim.state, "legal") is None
    sim.ok((BUILDER, m.PUBLISH_ADAPTER, adapter("legal", h(12))))  # a retired name can publish again
    assert views.resolve(sim.state, "legal").version == 3


def test_publish_with_a_job_id_records_it(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((BUILDER, m.PUBLISH_ADAPTER, adapter("legal", h(13), job_id=h(77))))
    a: Adapter = views.resolve(sim.state, "legal")
    assert a.version == 3 and a.to_json()["job_id"] == h(77).hex()


BAD: list[tuple[str, Any, int, Any]] = [
    ("bad_model_name", OTHER, m.REGISTER_BASE, base("Smol", weights=2)),
    ("bad_model_name", OTHER, m.REGISTER_BASE, base("", weights=2)),
    ("bad_model_name", OTHER, m.REGISTER_BASE, base(".hidden", weights=2)),
    ("bad_model_name", OTHER, m.REGISTER_BASE, base("a/b", weights=2)),
    ("bad_model_name", OTHER, m.REGISTER_BASE, base("a_b", weights=2)),
    ("base_model_exists", OTHER, m.REGISTER_BASE, base("smollm2", weights=2)),
    ("base_model_exists", BUILDER, m.REGISTER_BASE, base("copy", weights=1)),
    ("bad_model_param", OTHER, m.REGISTER_BASE, base("z", weights_hash=bytes(32))),
    ("bad_model_param", OTHER, m.REGISTER_BASE, base("z", weights=3, params_count=0)),
    ("bad_model_param", OTHER, m.REGISTER_BASE, base("z", weights=3, context_length=0)),
    ("bad_model_name", BUILDER, m.PUBLISH_ADAPTER, adapter("Legal", h(30))),
    ("not_model_owner", OTHER, m.PUBLISH_ADAPTER, adapter("legal", h(30))),
    ("base_model_not_found", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), base_name="nope")),
    ("datanet_not_found", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), datanet="nope")),
    ("version_not_found", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), version=3)),
    ("version_not_found", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), version=0)),
    ("bad_model_param", BUILDER, m.PUBLISH_ADAPTER, adapter("new", bytes(32))),
    ("bad_model_param", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), rank=0)),
    ("bad_model_param", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), rank=65)),
    ("bad_model_param", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), price=9)),
    ("bad_model_param", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(30), price=1_000_001)),
    ("adapter_exists", BUILDER, m.PUBLISH_ADAPTER, adapter("new", h(10))),
    ("adapter_exists", BUILDER, m.PUBLISH_ADAPTER, adapter("legal", h(11))),
    ("model_not_found", BUILDER, m.SET_PRICE, m.SetPrice("nope", 1, 100)),
    ("not_model_owner", OTHER, m.SET_PRICE, m.SetPrice("legal", 1, 100)),
    ("model_version_not_found", BUILDER, m.SET_PRICE, m.SetPrice("legal", 3, 100)),
    ("model_version_not_found", BUILDER, m.SET_PRICE, m.SetPrice("legal", 0, 100)),
    ("bad_model_param", BUILDER, m.SET_PRICE, m.SetPrice("legal", 1, 9)),
    ("model_not_found", BUILDER, m.RETIRE, m.Retire("nope", 1)),
    ("not_model_owner", OTHER, m.RETIRE, m.Retire("legal", 1)),
    ("model_version_not_found", BUILDER, m.RETIRE, m.Retire("legal", 7)),
]


@pytest.mark.parametrize(("code", "sender", "tx_type", "payload"), BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
def test_each_error_leaves_state_as_it_was_but_the_fee(setup: Sim, code: str, sender: Any, tx_type: int,
                                                        payload: Any) -> None:
    assert_fails_cleanly(setup.copy(), sender, tx_type, payload, code)


def test_retired_versions_refuse_set_price_and_retire(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((BUILDER, m.RETIRE, m.Retire("legal", 1)))
    for tx_type, payload in ((m.SET_PRICE, m.SetPrice("legal", 1, 100)), (m.RETIRE, m.Retire("legal", 1))):
        assert_fails_cleanly(sim, BUILDER, tx_type, payload, "model_retired")
