"""Gradient extraction for the influence index on a local Ray head: the same file, the same root, bit for bit.

The adapter is the tiny model trained on a few made-up facts; the index is built once in this
process (torch's default threads) and once as Ray tasks (one thread per worker), then once more with
a worker killed in the middle of a chunk: the task runs again and the root does not change.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ailedger.attribution.influence import InfluenceConfig, build_index
from ailedger.attribution.influence_index import InfluenceIndex
from ailedger.cluster import AUTO, Cluster
from ailedger.core.merkle import merkle_root
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.train import TrainResult, TrainSpec, train
from tests.test_attribution_cli import env, world
from tests.test_attribution_influence import base, fact_records, hashes_of
from tests.test_cli import as_json
from tests.test_ray_cluster import one_worker_killed

__all__ = ["base", "env", "world"]

RECORDS = fact_records(9)  # the influence tests' first nine facts, and the record with no text
HASHES = hashes_of(RECORDS)
SPEC = TrainSpec(base="tiny", datanet="facts", version=1, snapshot_root=merkle_root(HASHES).hex(), rank=8, alpha=16,
                 dropout=0.0, lr=2e-2, epochs=8, batch_size=4, max_len=64, seed=3, checkpoint_every=10)
CFG = InfluenceConfig(k=256, seed=0, chunk=3, top_layers=1)


@pytest.fixture(scope="module")
def trained(base: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(SPEC, RECORDS, base, tmp_path_factory.mktemp("run") / "adapter")


@pytest.fixture(scope="module")
def local(base: BaseModel, trained: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> InfluenceIndex:
    return build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path_factory.mktemp("local") / "influence.bin", CFG)


def test_the_cluster_listens_on_loopback_only(cluster: Cluster) -> None:
    assert cluster.started and cluster.address.startswith("127.0.0.1:")
    assert cluster.workers == 2


def test_ray_build_is_the_local_build_bit_for_bit(cluster: Cluster, local: InfluenceIndex, base: BaseModel,
                                                   trained: TrainResult, tmp_path: Path) -> None:
    stages: list[tuple[str, int, int | None]] = []
    on_ray = build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path / "influence.bin", CFG,
                         lambda *a: stages.append(a), cluster=cluster)
    assert len(local.steps) >= 2  # several checkpoints, several chunks: the reassembly is exercised
    assert on_ray.root == local.root
    assert (tmp_path / "influence.bin").read_bytes() == local.path.read_bytes()
    assert ("featurize", len(RECORDS) * len(local.steps), len(RECORDS) * len(local.steps)) in stages


def test_a_resumed_ray_build_keeps_the_local_parts(cluster: Cluster, local: InfluenceIndex, base: BaseModel,
                                                   trained: TrainResult, tmp_path: Path) -> None:
    """Parts written by an interrupted local build are kept; Ray computes only the missing ones."""
    out = tmp_path / "influence.bin"
    seen: list[int] = []

    def stop_after_first(stage: str, done: int, total: int | None) -> None:
        seen.append(done)
        if stage == "featurize" and done > 0:
            raise KeyboardInterrupt

    with pytest.raises(Exception, match="resume"):
        build_index(trained.out_dir, base, RECORDS, HASHES, out, CFG, stop_after_first)
    assert any(out.with_name(out.name + ".parts").glob("*.part"))
    assert build_index(trained.out_dir, base, RECORDS, HASHES, out, CFG, cluster=cluster).root == local.root


def test_a_worker_killed_mid_task_is_retried_and_the_root_is_the_same(
        cluster: Cluster, local: InfluenceIndex, base: BaseModel, trained: TrainResult, tmp_path: Path) -> None:
    with one_worker_killed(cluster) as killed:
        on_ray = build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path / "influence.bin", CFG, cluster=cluster)
    assert killed, "no worker was caught running a task"
    assert on_ray.root == local.root


def test_attribution_index_with_ray_publishes_the_same_root(cluster: Cluster, env: dict[str, Any],
                                                            tmp_path: Path) -> None:
    """`ailedger attribution index --ray auto` from the ledger: the bundle root the local command built."""
    copy = tmp_path / "adapter"
    shutil.copytree(env["adapter"], copy, ignore=shutil.ignore_patterns("attribution"))
    built = as_json("attribution", "index", str(copy), "--base", str(env["tiny"]), "--k", "512", "--ray", AUTO)
    assert built["root"] == env["built"]["root"] and built["influence_root"] == env["built"]["influence_root"]
