"""The compiled LedgerAnchor contract: ABI, creation and runtime bytecode, compiler and source hash.

Why a committed artifact: a verifier holding only `pip install ailedger` (no npm, no solc) can still
deploy, read the contract, and compare the code running at an address with the code this source
compiles to. Set-up (`make venv`) recompiles evm/LedgerAnchor.sol into it with solcjs, and a test
checks the two agree, so the artifact can never drift from the reviewed source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError

ARTIFACT_FILE = "LedgerAnchor.json"


@dataclass(frozen=True)
class Artifact:
    contract: str
    source_sha256: str
    solc_version: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-hex creation code (constructor arguments are appended at deploy)
    deployed_bytecode: str  # 0x-hex runtime code, what `eth_getCode` returns for a deployed contract


def parse_artifact(doc: Any) -> Artifact:
    try:
        art = Artifact(doc["contract"], doc["source_sha256"], doc["solc_version"], doc["abi"], doc["bytecode"],
                       doc["deployed_bytecode"])
    except (KeyError, TypeError) as exc:
        raise LedgerError(errors.ANCHOR_ARTIFACT_INVALID, f"missing field {exc}") from exc
    if not isinstance(art.abi, list) or not all(isinstance(c, str) and c.startswith("0x") and len(c) > 2
                                                for c in (art.bytecode, art.deployed_bytecode)):
        raise LedgerError(errors.ANCHOR_ARTIFACT_INVALID, "abi or bytecode has the wrong shape")
    return art


@cache
def load_artifact() -> Artifact:
    """The artifact shipped inside the package."""
    try:
        text = resources.files(__package__).joinpath(ARTIFACT_FILE).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        raise LedgerError(errors.ANCHOR_ARTIFACT_INVALID, f"{ARTIFACT_FILE}: {exc}") from exc
    return parse_artifact(doc)
