"""`ailedger store migrate | show`: move a chain between its SQLite file and a PostgreSQL database.

Why a command and not a dump file: the copy is checked by roots as it lands (chain/migrate.py), and
`--switch` then points the data directory at the new store in one atomic file write, so a node
started afterwards opens the migrated chain and nothing else changes (keys, blobs, genesis.json).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ailedger.chain.migrate import MigrateReport, migrate
from ailedger.chain.store import DB_NAME, Store, set_store_url, store_url
from ailedger.chain.writerlock import lock_writer
from ailedger.cli.backend import ChainDirOpt, data_dir_of
from ailedger.cli.output import emit, kv_table, settings
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.modules import default_runtime

app = typer.Typer(help="Move a chain between stores (SQLite file, PostgreSQL).", no_args_is_help=True)


def _source_dir(spec: str) -> Path:
    """sqlite:PATH (a data directory, or its chain.sqlite) -> the data directory."""
    if not spec.startswith("sqlite:"):
        raise LedgerError(errors.BAD_STORE_URL, f"--from {spec!r}: give sqlite:DATA_DIR (or leave --from out and "
                          "use --data-dir for a directory whose chain lives in PostgreSQL)")
    path = Path(spec.removeprefix("sqlite:"))
    return path.parent if path.name == DB_NAME else path


@app.command("migrate")
def migrate_cmd(ctx: typer.Context,
                source: Annotated[str | None, typer.Option("--from", metavar="sqlite:PATH",
                                                           help="The chain to copy (default: --data-dir's chain, "
                                                           "whichever store holds it).")] = None,
                target: Annotated[str, typer.Option("--to", metavar="URL", help="postgresql://... (an empty "
                                                    "database) or sqlite:NEW_DATA_DIR.")] = "",
                switch: Annotated[bool, typer.Option("--switch", help="Afterwards point the data directory at the "
                                                     "new store (an SQLite file is kept as chain.sqlite.migrated).")]
                = False,
                data_dir: ChainDirOpt = None) -> None:
    """Copy a chain into another store and prove the copy equal by its roots."""
    s = settings(ctx)
    if not target:
        raise LedgerError(errors.BAD_STORE_URL, "give --to postgresql://USER@HOST/DB or --to sqlite:NEW_DATA_DIR")
    directory = _source_dir(source) if source is not None else data_dir_of(s, data_dir)
    lock = lock_writer(directory)  # no node may add blocks while the rows are copied
    src = Store.open(directory)
    try:
        dst = Store.create_at(target, directory, src.genesis, default_runtime())
        try:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=s.err, transient=True, disable=s.json) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(phase, total=max(total, 1))
                    bar.update(tasks[phase], completed=done)

                report = migrate(src, dst, progress)
        finally:
            dst.close()
    finally:
        src.close()
        if lock is not None:
            os.close(lock)
    if switch:
        _switch(directory, target)
    emit(s, {**report.to_json(), "switched": switch}, lambda c: _render(c, report, switch, directory))


def _switch(directory: Path, target: str) -> None:
    if target.startswith("sqlite:"):
        raise LedgerError(errors.BAD_ARGUMENT, "--switch moves a data directory onto a server store; an SQLite "
                          "target is a data directory of its own already")
    set_store_url(directory, target)
    old = directory / DB_NAME
    if old.exists():
        old.replace(directory / (DB_NAME + ".migrated"))
        for suffix in ("-wal", "-shm"):
            (directory / (DB_NAME + suffix)).unlink(missing_ok=True)


def _render(c: Console, r: MigrateReport, switched: bool, directory: Path) -> None:
    c.print(kv_table("store migrate: copy proven equal by its roots", [
        ("from", r.source), ("to", r.target), ("blocks", r.blocks), ("transactions", r.txs),
        ("state rows", r.state_rows), ("pending", r.pending), ("head hash", r.head_hash),
        ("state root", r.state_root),
        ("data directory", f"{directory} now uses the new store" if switched else "unchanged (use --switch)")]))


@app.command("show")
def show(ctx: typer.Context, data_dir: ChainDirOpt = None) -> None:
    """Which store holds the data directory's chain, and its head."""
    s = settings(ctx)
    directory = data_dir_of(s, data_dir)
    store = Store.open(directory)
    try:
        head = store.head()
        doc = {"data_dir": str(directory), "kind": store.kind, "where": store.describe(),
               "url_file": store_url(directory) is not None, "height": head.height,
               "state_root": head.state_root.hex()}
    finally:
        store.close()
    emit(s, doc, lambda c: c.print(kv_table("store", list(doc.items()))))
