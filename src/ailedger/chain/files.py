"""Files written whole or not at all.

Why one helper: an export, an index or any file another process may open next must never be seen
half-written, even after a crash. Each is written to `NAME.partial`, fsynced, then renamed over
`NAME`; whatever fails on the way leaves no partial file, and an I/O failure is the coded
`file_unreadable` error naming the path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ailedger.core import errors
from ailedger.core.errors import LedgerError


@contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write `path` through; it replaces `path` only when the block ends without error."""
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
