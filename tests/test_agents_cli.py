"""`ailedger agent …` and `ailedger task …` end to end on an embedded data directory (each write seals a
block), with `agent run` executing agents on the tiny model through the real serving engine, then the
same reads over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ailedger.api.client import HttpClient
from ailedger.cli.backend import Embedded
from ailedger.factory.tiny import build_tiny
from tests.conftest_api import serve_in_thread
from tests.test_cli import as_json, fails, home, run

__all__ = ["home"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("agents") / "tiny", seed=7)


def write(path: Path, doc: object) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def init_chain(tiny_dir: Path) -> None:
    for k in ("op", "alice", "ver", "eve"):
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "agents-cli", "--alloc", "op=100", "--alloc", "alice=100", "--alloc",
        "ver=100", "--alloc", "eve=1", "--param", "agents_verify_min_bps=10000",  # every result is verified
        "--param", "agents_verify_window_blocks=3")
    run("model", "register-base", "tiny", "--from", "op", "--dir", str(tiny_dir))
    run("tx", "stake", "--from", "op", "--amount", "2")
    run("tx", "stake", "--from", "ver", "--amount", "1")


def test_register_post_run_verify(home: Path, tiny_dir: Path, tmp_path: Path) -> None:
    init_chain(tiny_dir)
    policy = ["--policy-text", "You are a careful calculator. Answer with the number only."]
    fails("agent", "register", "calc", "--from", "op", "--model", "tiny", *policy, "--task-type", "arithmetic",
          "--tool", "shell", "--price", "0.1", code="agent_unknown_tool")
    fails("agent", "register", "calc", "--from", "op", "--model", "nope@1", *policy, "--task-type", "arithmetic",
          "--price", "0.1", code="agent_model_unavailable")
    fails("agent", "register", "calc", "--from", "eve", "--model", "tiny", *policy, "--task-type", "arithmetic",
          "--price", "0.1", code="agent_stake_too_low")
    a = as_json("agent", "register", "calc", "--from", "op", "--model", "tiny", *policy, "--task-type", "arithmetic",
                "--tool", "calculator", "--price", "0.1")
    assert (a["status"], a["score_bps"], a["tools"]) == ("active", 5_000, ["calculator"]) and a["tx"]["receipt"]["ok"]
    # the same model without its calculator: its answers come from the tiny (random) model alone
    run("agent", "register", "guess", "--from", "op", "--model", "tiny", *policy, "--task-type", "arithmetic",
        "--price", "0.05")
    assert [x["name"] for x in as_json("agent", "list", "--task-type", "arithmetic")["agents"]] == ["guess", "calc"]
    assert "calculator" in run("agent", "tools").stdout and "code_tests" in run("task", "checkers").stdout

    task_in = write(tmp_path / "in.json", {"expression": "(17 + 25) * 3 / 4"})
    post = ["task", "post", "--from", "alice", "--type", "arithmetic", "--input", task_in, "--window", "5"]
    fails(*post, "--agent", "calc", "--amount", "0.2", "--checker", "astrology", code="task_unknown_checker")
    fails(*post, "--agent", "calc", "--amount", "0.05", "--checker", "arithmetic", code="task_fee_below_price")
    fails(*post, "--agent", "calc", "--amount", "500", "--checker", "arithmetic", code="task_fee_unfunded")
    fails(*post[:3], "op", *post[4:], "--agent", "calc", "--amount", "0.2", "--checker", "arithmetic",
          code="task_own_agent")
    t1 = as_json(*post, "--agent", "calc", "--amount", "0.2", "--checker", "arithmetic")
    t2 = as_json(*post, "--agent", "guess", "--amount", "0.2", "--checker", "arithmetic")
    assert (t1["status"], t1["fee"], t1["agent"]) == ("open", 200_000, "calc")

    fails("agent", "run", str(t1["id"]), "--from", "alice", "--base", str(tiny_dir), code="task_not_yours")
    fails("task", "verify", str(t1["id"]), "--from", "ver", code="verifier_not_registered")
    run("task", "register-verifier", "--from", "ver")
    fails("task", "verify", str(t1["id"]), "--from", "ver", code="task_not_sampled")  # no result yet
    ran = as_json("agent", "run", str(t1["id"]), "--from", "op", "--base", str(tiny_dir), "--max-tokens", "8")
    out = ran["output"]
    assert out["answer"] == "63/2" and out["tool_calls"][0]["tool"] == "calculator"
    assert ran["task"]["status"] == "submitted" and ran["task"]["draw"] == "pending" and ran["completion_tokens"] >= 1
    fails("task", "verify", str(t1["id"]), "--from", "ver", code="task_not_sampled")  # drawn at the next block's end
    fails("agent", "run", str(t1["id"]), "--from", "op", "--base", str(tiny_dir), code="task_not_open")
    run("tx", "transfer", "--from", "alice", "--to", "ver", "--amount", "1")  # a block: the draw
    assert as_json("task", "show", str(t1["id"]))["draw"] == "verify"  # agents_verify_min_bps = 10,000
    v = as_json("task", "verify", str(t1["id"]), "--from", "ver")
    assert v["check"]["passed"] and v["task"]["status"] == "paid" and v["task"]["verdict"] == "passed"
    assert v["task"]["paid"] + v["task"]["refunded"] == 200_000

    guessed = as_json("agent", "run", str(t2["id"]), "--from", "op", "--base", str(tiny_dir), "--max-tokens", "8")
    run("tx", "transfer", "--from", "alice", "--to", "ver", "--amount", "1")  # a block: the draw
    assert guessed["output"]["tool_calls"] == [] and guessed["output"]["answer"] != "63/2"
    v2 = as_json("task", "verify", str(t2["id"]), "--from", "ver")
    assert not v2["check"]["passed"] and v2["task"]["status"] == "failed"
    assert v2["task"]["refunded"] == 200_000 and v2["task"]["slashed"] == 200_000  # 2,000 bps of min stake 1
    shown = as_json("agent", "show", "guess")
    assert (shown["verified_bad"], shown["score_bps"], shown["slashed"]) == (1, 3_333, 200_000)
    assert as_json("agent", "show", "calc")["verified_good"] == 1

    # the slash left op below agents_min_stake for its two agents: no task until it bonds again
    fails(*post, "--agent", "calc", "--amount", "0.2", "--checker", "arithmetic", code="agent_stake_too_low")
    run("tx", "stake", "--from", "op", "--amount", "0.2")
    t3 = as_json(*post, "--agent", "calc", "--amount", "0.2", "--checker", "arithmetic", "--window", "1")
    run("tx", "transfer", "--from", "alice", "--to", "ver", "--amount", "1")  # a block passes: t3 expires
    assert as_json("task", "show", str(t3["id"]))["status"] == "expired"
    fails("agent", "run", str(t3["id"]), "--from", "op", "--base", str(tiny_dir), code="task_result_late")
    assert [x["id"] for x in as_json("task", "list", "--agent", "calc")["tasks"]] == [t3["id"], t1["id"]]
    assert [x["id"] for x in as_json("task", "list", "--status", "failed")["tasks"]] == [t2["id"]]

    # review: a verifier's own judgement of an output, posted with --pass / --fail
    t4 = as_json(*post, "--agent", "calc", "--amount", "0.2", "--checker", "review")
    as_json("agent", "run", str(t4["id"]), "--from", "op", "--base", str(tiny_dir), "--max-tokens", "4")
    run("tx", "transfer", "--from", "alice", "--to", "ver", "--amount", "1")  # the draw
    fails("task", "verify", str(t4["id"]), "--from", "ver", code="task_verdict_needed")
    fails("task", "verify", str(t4["id"]), "--from", "op", "--pass", code="verifier_not_registered")
    v4 = as_json("task", "verify", str(t4["id"]), "--from", "ver", "--fail")
    assert v4["task"]["status"] == "failed" and v4["check"]["reason"] == "reviewed by the verifier"

    # the operator's side: update, retire; strangers are refused before anything is sent
    fails("agent", "update", "calc", "--from", "alice", "--price", "0.3", code="agent_not_operator")
    fails("agent", "retire", "guess", "--from", "alice", code="agent_not_operator")
    assert as_json("agent", "update", "calc", "--from", "op", "--price", "0.15")["price"] == 150_000
    assert as_json("agent", "retire", "guess", "--from", "op")["status"] == "retired"
    fails(*post, "--agent", "guess", "--amount", "0.2", "--checker", "arithmetic", code="agent_retired")
    fails("agent", "reinstate", "guess", "--from", "op", code="agent_not_reinstatable")
    for args in (("agent", "list"), ("agent", "show", "calc"), ("task", "list"), ("task", "show", "1")):
        assert "Traceback" not in run(*args).stdout

    embedded = Embedded(home / "data", write=False)
    try:
        with serve_in_thread(embedded.node) as url, HttpClient(url) as client:
            assert client.agents("arithmetic") == embedded.agents("arithmetic")
            assert client.agent("calc") == embedded.agent("calc")
            assert client.tasks() == embedded.tasks() and client.task(1) == embedded.task(1)
            assert client.agents_registry() == embedded.agents_registry()
            for path, status, code in [("/v1/tasks/99", 404, "task_not_found"),
                                       ("/v1/agents/nobody", 404, "agent_not_found"),
                                       ("/v1/tasks?status=nope", 400, "bad_request")]:
                r = httpx.get(url + path)
                assert r.status_code == status and r.json()["error"]["code"] == code, path
    finally:
        embedded.close()
