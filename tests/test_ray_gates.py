"""Datanet gates on a local Ray head: the same verdicts, hashes and redactions as in one process.

The records are the synthetic Datanet generator's (near and exact duplicates, PII, junk, schema
breakers), cut into many chunks so that Ray's workers screen several at once and the duplicate
decisions must come back in stream order to be right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ailedger.cluster import AUTO, Cluster, connect
from ailedger.datanet.gates import GateConfig, check_records
from ailedger.datanet.gates.runner import RecordResult
from ailedger.datanet.gates.verdict import Gate
from ailedger.datanet.synth import SCHEMA, generate
from tests.test_ray_cluster import one_worker_killed

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with connect(AUTO, num_cpus=2) as c:
        yield c


@pytest.fixture(scope="module")
def records() -> list[Any]:
    out: list[Any] = [t.record for t in generate(3000, seed=31)]
    for at, bad in ((7, "not an object"), (160, {"title": 5}), (161, {"title": 5}), (900, ["a", "list"])):
        out.insert(at, bad)  # schema breakers, one repeated: its exact-duplicate finding follows the schema one
    return out


def _key(results: list[RecordResult]) -> list[Any]:
    return [(r.index, r.record_hash, r.stored_hash, r.verdicts, json.dumps(r.record, sort_keys=True))
            for r in results]


@pytest.mark.parametrize("policy", ["reject", "redact"])
def test_ray_gates_give_the_local_results(cluster: Cluster, records: list[Any], policy: str) -> None:
    config = GateConfig(schema=SCHEMA, pii_policy=policy, chunk_size=150)  # type: ignore[arg-type]
    local = list(check_records(records, config))
    on_ray = list(check_records(records, config, cluster=cluster))
    assert _key(on_ray) == _key(local)
    gates = {v.gate for r in local for v in r.verdicts}
    assert {Gate.SCHEMA, Gate.EXACT_DUPLICATE, Gate.PII, Gate.NEAR_DUPLICATE} <= gates  # every kind was exercised


def test_a_gate_worker_killed_mid_chunk_changes_nothing(cluster: Cluster, records: list[Any]) -> None:
    config = GateConfig(schema=SCHEMA, chunk_size=100)
    local = list(check_records(records, config))
    with one_worker_killed(cluster) as killed:
        on_ray = list(check_records(records, config, cluster=cluster))
    assert killed, "no worker was caught screening a chunk"
    assert _key(on_ray) == _key(local)


def test_datanet_check_with_ray_auto_prints_what_it_prints_without(tmp_path: Path, records: list[Any]) -> None:
    """The command end to end in a fresh process: `--ray auto` starts a head on loopback and stops it."""
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records[:600] if isinstance(r, dict)))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    env = {**os.environ, "AILEDGER_HOME": str(tmp_path / "home")}

    def check(*extra: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "ailedger.cli.main", "--json", "datanet", "check", str(data),
                              "--schema", str(schema), *extra], capture_output=True, text=True, cwd=REPO, env=env,
                             timeout=180)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    alone, on_ray = check(), check("--ray", AUTO)
    assert on_ray == alone and alone["summary"]["read"] == 599 and alone["summary"]["rejected"] > 10
