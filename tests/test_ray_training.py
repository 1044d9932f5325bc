"""Training on a local Ray head: LDS retrainings and market training jobs give the single-process results.

LDS: with a worker killed in the middle of a retraining, the same outcomes bit for bit (a whole
run with and without `--ray` is compared in tests/test_attribution_lds_cli.py). Market: a provider
started with `--ray auto` wins a training lease, trains it as a Ray task and reports the adapter a
local `train` of the same spec writes, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ailedger.attribution.lds import LdsConfig, run_lds
from ailedger.cli.backend import Embedded
from ailedger.cluster import AUTO, Cluster
from ailedger.factory.basemodel import load_base
from ailedger.factory.checkpoints import ADAPTER_FILE
from ailedger.factory.data import exported_snapshot
from ailedger.factory.train import TrainSpec, train
from ailedger.factory.train_tasks import train_on
from tests.test_cli import as_json, home
from tests.test_market_cli import spec_file
from tests.test_model_train_cli import chain
from tests.test_ray_cluster import one_worker_killed

__all__ = ["chain", "home"]

CFG = LdsConfig(owners=2, facts_per_owner=1, paraphrases=2, stuffers=1, stuffer_records=1, subsets=4, epochs=4, k=64,
                trak=False)


@pytest.fixture(scope="module")
def local_lds(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Any]:
    work = tmp_path_factory.mktemp("lds-local") / "lds"
    return run_lds(work, CFG), json.loads((work / "lds.json").read_text())


def test_a_retraining_whose_worker_dies_is_retried_to_the_same_outcomes(
        cluster: Cluster, local_lds: tuple[dict[str, Any], Any], tmp_path: Path) -> None:
    with one_worker_killed(cluster) as killed:
        run_lds(tmp_path / "lds", CFG, cluster=cluster)
    assert killed, "no worker was caught retraining"
    assert json.loads((tmp_path / "lds" / "lds.json").read_text()) == local_lds[1]


def test_a_training_job_on_ray_writes_the_local_adapter(cluster: Cluster, tmp_path: Path) -> None:
    from ailedger.factory.tiny import build_tiny

    base = load_base(build_tiny(tmp_path / "tiny", seed=5))
    records = [{"text": f"Record {i} says the ledger pays contributor {i % 3}."} for i in range(10)]
    spec = TrainSpec(base=base.info.name, datanet="d", version=1, snapshot_root="00" * 32, rank=4, alpha=8,
                     dropout=0.1, lr=0.02, epochs=2, batch_size=3, max_len=32, seed=7, checkpoint_every=3)
    here = train(spec, records, base, tmp_path / "here")
    there = train_on(cluster, spec, records, base, tmp_path / "there")
    assert there.adapter_hash == here.adapter_hash and there.losses == here.losses
    assert (tmp_path / "there" / ADAPTER_FILE).read_bytes() == (tmp_path / "here" / ADAPTER_FILE).read_bytes()
    assert there.card == here.card  # the base's identity (its name too) and every figure of the card


def test_a_provider_with_ray_trains_its_lease_to_the_local_adapter(chain: dict[str, Any], home: Path) -> None:
    """`provider start --ray auto` end to end: the reported digest is the local training's adapter file."""
    posted = as_json("market", "order", "--from", "builder", "--cpu", "1", "--memory", "1", "--max-price", "0.01",
                     "--duration", "6", "--window", "5", "--spec-file", str(spec_file(chain)))
    (order,) = posted["orders"]
    out = as_json("provider", "start", "--from", "worker", "--report-every", "2", "--work-dir",
                  str(chain["tmp"] / "prov"), "--ray", AUTO)
    assert any(line.startswith("trained lease") for line in out["log"]), out["log"]
    (lease,) = out["leases"]
    doc = json.loads(spec_file(chain).read_bytes())
    spec = TrainSpec.from_json(json.dumps(doc["spec"]))
    backend = Embedded(home / "data", write=False)
    try:
        _, records = exported_snapshot(backend, spec.datanet, spec.version, chain["tmp"] / "local" / "data")
    finally:
        backend.close()
    train(spec, records, load_base(spec.base), chain["tmp"] / "local")
    local = (chain["tmp"] / "local" / ADAPTER_FILE).read_bytes()
    assert (chain["tmp"] / "prov" / "train" / f"lease-{lease['id']}" / ADAPTER_FILE).read_bytes() == local
    assert lease["digest"] == hashlib.sha256(local).hexdigest() and lease["order"] == order["id"]


def test_a_worker_refuses_a_base_whose_weights_are_not_the_callers(tmp_path: Path) -> None:
    """The caller's own files load by their fingerprint; changed files are hashed again, and other weights refused."""
    from ailedger.core import errors
    from ailedger.core.errors import LedgerError
    from ailedger.factory.tiny import build_tiny
    from ailedger.factory.worker_base import BaseRef

    path = build_tiny(tmp_path / "tiny", seed=5)
    base = load_base(path)
    ref = BaseRef.of(base)
    assert ref.load().info == base.info
    os.utime(path / "config.json", ns=(1, 1))  # the same weights, other files: hashed again, accepted
    assert ref.load().info == base.info
    build_tiny(tmp_path / "other", seed=6)
    shutil.copy(tmp_path / "other" / "model.safetensors", path / "model.safetensors")
    with pytest.raises(LedgerError) as caught:
        ref.load()
    assert caught.value.code == errors.BASE_MODEL_UNAVAILABLE
