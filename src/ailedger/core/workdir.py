"""A run's own directory: emptied at the start of each run, but never a directory the run did not make.

Why one function: the demo, `attribution eval` and the LDS each begin by wiping their directory,
and a user who points one of them at a directory of their own must get a refusal, not an empty
directory. A run marks its directory with a marker file; the next run may wipe a directory that is
new, empty or marked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ailedger.core import errors
from ailedger.core.errors import LedgerError


def fresh_dir(d: Path, marker: str, note: str, refusal: str) -> Path:
    """Empty `d` and mark it (`marker` holding `note`); refused with `f"{d} {refusal}"` unless new, empty or marked."""
    if d.exists() and (not d.is_dir() or (any(d.iterdir()) and not (d / marker).is_file())):
        raise LedgerError(errors.BAD_ARGUMENT, f"{d} {refusal}")
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / marker).write_text(note)
    return d
