"""`ailedger datanet export` leaves out records retracted since the version froze (datanet tx 0x0208).

(Kept beside the spot-check tests by the task's file rules; it is a datanet export test.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ailedger.core.merkle import merkle_root
from tests.test_cli import as_json, home, run
from tests.test_spotcheck_market import facts_v1

__all__ = ["home"]

TEXTS = ["The ledger records who contributed.", "A datanet is versioned.", "Every fee is split exactly."]


def test_export_skips_retracted_records_unless_asked(home: Path, tmp_path: Path) -> None:
    snap, pending = facts_v1(tmp_path, TEXTS)
    gone = pending[1]["hash"]
    run("datanet", "retract", "facts", gone, "--from", "owner", "--reason", "consent_withdrawn")
    assert as_json("datanet", "record", "facts", gone)["status"] == "retracted"

    out = tmp_path / "v1.jsonl"
    doc = as_json("datanet", "export", "facts", "--version", "1", "--out", str(out))
    lines = out.read_bytes().splitlines()
    assert doc["retracted"] == [gone] and doc["written"] == len(lines) == 2 and doc["count"] == 3
    assert gone not in {hashlib.sha256(line).hexdigest() for line in lines}
    assert "1 retracted left out" in run("datanet", "export", "facts", "--version", "1", "--out", str(out)).stdout

    full = as_json("datanet", "export", "facts", "--version", "1", "--out", str(out), "--include-retracted")
    lines = out.read_bytes().splitlines()
    assert full["retracted"] == [] and full["written"] == len(lines) == 3
    assert merkle_root([hashlib.sha256(line).digest() for line in lines]).hex() == snap["root"]
