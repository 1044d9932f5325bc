"""An exclusive lock on a data directory's writer, so two processes never seal the same height.

`ailedger node run` (and `python -m ailedger.api`) hold it while serving; an embedded CLI write to a
served directory is then refused (data_dir_busy) instead of forking the chain behind the node's
back. The kernel drops an flock when its process dies, so a node killed with SIGKILL leaves no stale
lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from ailedger.core import errors
from ailedger.core.errors import LedgerError

WRITER_LOCK = "writer.lock"
WRITER_WAIT_S = 5.0  # another command's block takes milliseconds; a running node holds the lock for good


def lock_writer(data_dir: Path, wait_s: float | None = None) -> int | None:
    """Hold `data_dir/writer.lock` exclusively, so two processes never seal the same height.

    `ailedger node run` holds it while serving, so an embedded write to a served directory is
    refused (data_dir_busy) instead of forking the chain behind the node's back.

    Returns the descriptor (closing it releases the lock), or None when the directory does not
    exist (opening the chain then reports no_chain).
    """
    if not data_dir.is_dir():
        return None
    wait_s = WRITER_WAIT_S if wait_s is None else wait_s
    fd = os.open(data_dir / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LedgerError(errors.DATA_DIR_BUSY, f"{data_dir / WRITER_LOCK} held for {wait_s:g} s") from None
            time.sleep(0.05)
