"""Only an executed proposal changes a parameter, and only `set_stake` changes bonded stake: checked on the source.

The scan reads every module of src/ailedger and fails on any of:
* a write of the parameter registry (`<...registry or params...>.set(...)`) outside governance's execution
  (governance/rules.py), or a `write_genesis` call outside the runtime's genesis (chain/runtime.py);
* a `param/` key or the registry's PREFIX used outside chain/params.py (a raw write would skip bounds and history);
* an assignment to `.stake` outside chain/accounts.py (it would skip the checkpoints votes are weighed by).
The scanner is itself tested on snippets that break each rule, so the scan cannot pass by reading nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ailedger"
PARAM_WRITERS = {"governance/rules.py"}
GENESIS_WRITERS = {"chain/runtime.py"}
PARAM_HOME = "chain/params.py"
STAKE_HOME = "chain/accounts.py"


def violations(rel: str, source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value).lower()
            if (node.func.attr == "set" and ("registry" in receiver or "params" in receiver)
                    and rel not in PARAM_WRITERS):
                out.append(f"{where} writes a parameter: {ast.unparse(node)[:80]}")
            if node.func.attr == "write_genesis" and rel not in GENESIS_WRITERS:
                out.append(f"{where} writes genesis parameters")
        if (isinstance(node, ast.Constant) and isinstance(node.value, bytes) and node.value.startswith(b"param/")
                and rel != PARAM_HOME):
            out.append(f"{where} names a param/ key")
        if rel != PARAM_HOME and isinstance(node, ast.Attribute) and node.attr == "PREFIX" and \
                ast.unparse(node.value).split(".")[-1] == "params":
            out.append(f"{where} uses params.PREFIX")
        if rel != PARAM_HOME and isinstance(node, ast.ImportFrom) and node.module == "ailedger.chain.params" and \
                any(a.name == "PREFIX" for a in node.names):
            out.append(f"{where} imports the parameter key prefix")
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign | ast.AnnAssign) else []
        if rel != STAKE_HOME and any(isinstance(t, ast.Attribute) and t.attr == "stake" for t in targets):
            out.append(f"{where} assigns .stake directly")
    return out


def test_parameters_change_only_through_governance_execution_and_stake_only_through_set_stake() -> None:
    found = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 100
    for path in files:
        found += violations(path.relative_to(SRC).as_posix(), path.read_text())
    assert not found, "\n".join(found)


def test_the_scanner_catches_each_kind_of_write() -> None:
    bad = {
        "runtime.params.set(state, 'min_fee', 0, 1, 0)": "writes a parameter",
        "self.registry.set(state, 'min_fee', 0, 1, 0)": "writes a parameter",
        "registry.write_genesis(state, {})": "writes genesis",
        "state.set(b'param/min_fee', b'')": "names a param/ key",
        "state.set(params.PREFIX + b'x', b'')": "uses params.PREFIX",
        "from ailedger.chain.params import PREFIX": "imports the parameter key prefix",
        "acct.stake -= 5": "assigns .stake",
        "acct.stake = 0": "assigns .stake",
    }
    for snippet, why in bad.items():
        found = violations("datanet/rules.py", snippet)
        assert found and why in found[0], (snippet, found)
    assert violations("governance/rules.py", "registry.set(state, c.name, c.value, height, pid)") == []
    assert violations("datanet/rules.py", "state.set(key, value)\nacct.balance -= 1") == []
