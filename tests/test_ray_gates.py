"""Datanet gates on a local Ray head: the same verdicts, hashes and redactions as in one process.

The records are the synthetic Datanet generator's (near and exact duplicates, PII, junk, schema
breakers), cut into many chunks so that Ray's workers screen several at once and the duplicate
decisions must come back in stream order to be right. The gatekeeper (`run_gates`, `datanet gate`)
is checked the same way on two copies of one chain with the same pending records.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ailedger.cli.backend import Embedded
from ailedger.cluster import AUTO, Cluster
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as p
from ailedger.datanet.gatekeeper import index_path, run_gates
from ailedger.datanet.gates import GateConfig, check_records
from ailedger.datanet.gates.runner import RecordResult
from ailedger.datanet.gates.verdict import Gate
from ailedger.datanet.pipeline import contribute
from ailedger.datanet.remote import datanet_gate_config
from ailedger.datanet.synth import SCHEMA, generate
from tests.test_cli import home
from tests.test_cli import run as run_cli
from tests.test_datanet_pipeline import C1, C2, MIX, OWNER, data_dir, send, write_jsonl
from tests.test_datanet_pipeline import create as create_datanet
from tests.test_ray_cluster import one_worker_killed

REPO = Path(__file__).resolve().parents[1]

__all__ = ["data_dir", "home"]  # the fixtures, shared with test_datanet_pipeline and test_cli


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


def _gate_and_read(data_dir: Path, state: Path, cluster: Cluster | None) -> tuple[Any, ...]:
    """`run_gates` over the Datanet in `data_dir` (chunks of 20); what it says, posts and keeps."""
    backend = Embedded(data_dir, write=True)
    try:
        dn = backend.datanet("cook")
        config = datanet_gate_config(backend, dn, chunk_size=20)
        summary = run_gates("cook", OWNER, backend, state, gate_config=config, cluster=cluster).to_json()
        summary.pop("index_path")
        hashes = backend.datanet_hashes("cook", "any")["hashes"]
        statuses = backend.datanet_known("cook", hashes)["known"]
        records = [backend.datanet_record("cook", h) for h in hashes]
        dn_after = backend.datanet("cook")
    finally:
        backend.close()
    return summary, statuses, records, dn_after, index_path(state, "cook").read_bytes()  # bytes: the records'


def test_gatekeeper_on_ray_posts_what_it_posts_without(cluster: Cluster, data_dir: Path, tmp_path: Path) -> None:
    """Two copies of one chain with the same pending records, gated with and without the cluster."""
    backend = Embedded(data_dir, write=True)
    try:
        create_datanet(backend, schema=SCHEMA)
        synth = [s.record for s in generate(200, seed=17, mix=MIX)]
        contribute(write_jsonl(tmp_path / "a.jsonl", synth[:100]), "cook", C1, backend, include_rejected=True)
        odd = [bytes.fromhex(h) for h in backend.put_blobs([b"not JSON {", b"[1, 2"])]
        odd.insert(1, hashlib.sha256(b"bytes the store never saw").digest())
        send(backend, C2, p.CONTRIBUTE, p.Contribute("cook", odd, merkle_root(odd)), p.CONTRIBUTE_CODEC)
        contribute(write_jsonl(tmp_path / "b.jsonl", synth[100:]), "cook", C2, backend, include_rejected=True)
        pending = backend.datanet("cook")["counts"]["pending"]
    finally:
        backend.close()
    twin = tmp_path / "twin"
    shutil.copytree(data_dir, twin)
    local = _gate_and_read(data_dir, tmp_path / "gk-local", None)
    on_ray = _gate_and_read(twin, tmp_path / "gk-ray", cluster)
    assert on_ray == local
    summary = local[0]
    assert summary["pending"] == pending > 6 * 20 and summary["unreadable"] == 1  # several chunks in flight
    assert summary["by_reason"]["schema/not_object"] == 2 and len(summary["tx_ids"]) > 1
    assert {"pii", "quality", "near_duplicate"} <= {reason.split("/")[0] for reason in summary["by_reason"]}
    assert summary["index_size"] == summary["passed"] > 0


def test_datanet_gate_with_ray_auto_prints_what_it_prints_without(home: Path, tmp_path: Path) -> None:
    """The command in fresh processes on two copies of one home: `--ray auto` changes nothing it reports."""
    for k in ("owner", "c1"):
        run_cli("keys", "new", k)
    run_cli("chain", "init", "--chain-id", "gate-ray", "--alloc", "owner=100", "--alloc", "c1=100",
            "--param", "datanet_min_window_blocks=1")
    run_cli("datanet", "create", "cook", "--from", "owner", "--topic", "home cooking", "--stake-per-record", "0.01",
            "--quorum", "1", "--window", "10")
    data = write_jsonl(tmp_path / "c1.jsonl", [s.record for s in generate(120, seed=23, mix=MIX)])
    run_cli("datanet", "contribute", "cook", str(data), "--from", "c1", "--include-rejected")
    twin = tmp_path / "twin"
    shutil.copytree(home, twin)

    def gate(at: Path, *extra: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "ailedger.cli.main", "--json", "datanet", "gate", "cook",
                              "--from", "owner", "--no-offtopic", *extra], capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, "AILEDGER_HOME": str(at)}, timeout=180)
        assert out.returncode == 0, out.stderr[-2000:]
        doc = json.loads(out.stdout)
        doc.pop("index_path")
        return doc

    alone, on_ray = gate(home), gate(twin, "--ray", AUTO)
    assert on_ray == alone and alone["rejected"] > 0 and alone["passed"] > 0
