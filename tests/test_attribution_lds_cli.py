"""`ailedger attribution lds` in-process: the figures, kept work directory, `--ray auto` and refused input.

The set-up is the smallest that still has subsets to correlate (one owner: 8 records, 2 questions;
3 subsets, 2 epochs, k = 64, no TRAK), so a run takes seconds; `--ray auto` starts a local head for
the command, and since the retrainings are deterministic its figures and its `lds.json` (every
subset's mask and outcomes) must be the local run's, bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from ailedger.cli.attribution_lds import render
from tests.test_cli import as_json, fails, home

__all__ = ["home"]

pytestmark = pytest.mark.timeout(300)  # two runs, one of them starting a Ray head (about 30 s together when quiet)
TINY = ("--owners", "1", "--subsets", "3", "--epochs", "2", "--k", "64", "--no-trak")


def test_lds_with_ray_gives_the_local_figures_and_outcomes(home: Path, tmp_path: Path) -> None:
    local = as_json("attribution", "lds", *TINY, "--work-dir", str(tmp_path / "local"))
    assert set(local["lds"]) == set(local["lds_seen"]) == {"engine", "influence"}  # --no-trak
    assert local["setup"]["subsets"] == 3 and local["setup"]["records"] == 8 and local["setup"]["targets"] == 2
    assert local["work_dir"] == str(tmp_path / "local")
    saved = json.loads((tmp_path / "local" / "lds.json").read_text())
    assert len(saved["masks"]) == 3 and len(saved["outcomes"]) == 3

    on_ray = as_json("attribution", "lds", *TINY, "--work-dir", str(tmp_path / "ray"), "--ray", "auto")
    assert on_ray["lds"] == local["lds"] and on_ray["lds_seen"] == local["lds_seen"]
    assert json.loads((tmp_path / "ray" / "lds.json").read_text()) == saved

    c = Console(record=True, width=140)
    render(c, local)
    text = c.export_text()
    assert "this engine" in text and "influence alone" in text and "TRAK" not in text
    assert "8: 2 facts of 1 owners x 3 paraphrases, 2 stuffer records" in text and "lds.json" in text


def test_lds_refuses_bad_input_with_a_code(home: Path, tmp_path: Path) -> None:
    fails("attribution", "lds", "--subsets", "1", code="bad_argument", exit=2)
    fails("attribution", "lds", "--fraction", "1", code="bad_argument", exit=2)
    fails("attribution", "lds", "--fraction", "0", code="bad_argument", exit=2)
    fails("attribution", "lds", "--k", "30", code="bad_argument", exit=2)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    fails("attribution", "lds", "--work-dir", str(mine), code="bad_argument", exit=2)  # it would be emptied
    assert (mine / "notes.txt").read_text() == "keep me"
