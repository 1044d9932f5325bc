"""`ailedger job`: post compute jobs (train, serve, attribution) with an escrowed budget, claim, deliver, accept.

The job's spec file and (optionally) its result file are uploaded as blobs; the ledger records
their SHA-256. A job's id is known from the poster and the nonce of the post_job transaction
(`market.state.job_id`), so `job post` prints it as soon as the transaction is in a block.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ailedger.cli import model_render as render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import FeeOpt, FromOpt, send_and_show, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.market import payloads as p
from ailedger.market.service import parse_job_id
from ailedger.market.state import Kind, job_id

app = typer.Typer(help="Compute jobs: budgets escrowed on the ledger, claimed by staked workers, paid on acceptance.",
                  no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(metavar="JOB_ID", help="The job's id (64 hex, see `job list`).")]


class JobKind(StrEnum):
    train = "train"
    serve = "serve"
    attribution = "attribution"


KINDS = {JobKind.train: Kind.TRAIN, JobKind.serve: Kind.SERVE, JobKind.attribution: Kind.ATTRIBUTION}


def _file_blob(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc.strerror or exc}") from exc
    if not data:
        raise LedgerError(errors.EMPTY_FILE, f"{what} {path} is empty")
    return data


def _job_tx(ctx: typer.Context, sender: str, tx_type: int, payload: bytes, jid: str, fee: str | None,
            node: str | None, data_dir: Path | None, passphrase_file: Path | None,
            blob: bytes | None = None) -> None:
    def before(backend: Backend) -> None:
        backend.job(jid)  # job_not_found before any blob is stored
        if blob is not None:
            backend.put_blobs([blob])

    send_and_show(ctx, sender, tx_type, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.job(jid), render.render_job, before)


@app.command("post")
def post(ctx: typer.Context, sender: FromOpt,
         kind: Annotated[JobKind, typer.Option("--kind", help="What the worker is to do.")],
         spec: Annotated[Path, typer.Option("--spec", help="The job's spec file (stored as a blob, its hash on the "
                                                           "ledger).", dir_okay=False)],
         budget: Annotated[str, typer.Option("--budget", help="Budget in units, escrowed from your balance.")],
         deadline: Annotated[int, typer.Option("--deadline", help="Blocks from now until the deadline.", min=1)],
         fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
         passphrase_file: PassphraseFile = None) -> None:
    """Post a job; its budget leaves your balance until it is paid to the worker or refunded."""
    s = settings(ctx)
    blob = _file_blob(spec, "spec")
    payload = p.POST_JOB_CODEC.encode(p.PostJob(KINDS[kind], hashlib.sha256(blob).digest(), parse_units(budget),
                                                deadline))
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        backend.put_blobs([blob])  # first: a job never exists without its spec
        result = send_ok(backend, key, p.POST_JOB, payload, fee)
        doc = backend.job(job_id(decode_address(result["sender"]), int(result["nonce"])).hex())
    emit(s, {**doc, "tx": result}, lambda c: render.render_job(c, doc))


@app.command("claim")
def claim(ctx: typer.Context, jid: JobArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
          data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Claim an open job as its worker (needs `market_worker_min_stake` bonded)."""
    payload = p.JOB_REF_CODEC.encode(p.JobRef(parse_job_id(jid)))
    _job_tx(ctx, sender, p.CLAIM_JOB, payload, jid, fee, node, data_dir, passphrase_file)


@app.command("submit")
def submit(ctx: typer.Context, jid: JobArg, sender: FromOpt,
           result: Annotated[Path | None, typer.Option("--result", help="Result file (stored as a blob).",
                                                       dir_okay=False)] = None,
           result_hash: Annotated[str | None, typer.Option(
               "--result-hash", help="Instead of --result: the result's SHA-256 (64 hex), already stored.")] = None,
           fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
           passphrase_file: PassphraseFile = None) -> None:
    """Deliver a claimed job's result before its deadline (the claimant only)."""
    if (result is None) == (result_hash is None):
        raise LedgerError(errors.BAD_ARGUMENT, "give exactly one of --result FILE or --result-hash HEX")
    blob = _file_blob(result, "result") if result is not None else None
    digest = hashlib.sha256(blob).digest() if blob is not None else parse_job_id(str(result_hash))
    payload = p.SUBMIT_RESULT_CODEC.encode(p.SubmitResult(parse_job_id(jid), digest))
    _job_tx(ctx, sender, p.SUBMIT_RESULT, payload, jid, fee, node, data_dir, passphrase_file, blob)


@app.command("accept")
def accept(ctx: typer.Context, jid: JobArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
           data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Accept a delivered result (the poster only): the whole budget goes to the worker."""
    payload = p.JOB_REF_CODEC.encode(p.JobRef(parse_job_id(jid)))
    _job_tx(ctx, sender, p.ACCEPT_RESULT, payload, jid, fee, node, data_dir, passphrase_file)


@app.command("show")
def show(ctx: typer.Context, jid: JobArg, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One job: kind, budget, status, worker, result and the heights it moved at."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.job(jid)
    emit(s, doc, lambda c: render.render_job(c, doc))


@app.command("list")
def list_cmd(ctx: typer.Context,
             status: Annotated[str | None, typer.Option(
                 "--status", help="Only jobs in this state: open, claimed, submitted, paid or refunded.")] = None,
             node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Jobs in posting order."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.jobs(status)
    emit(s, doc, lambda c: render.render_jobs(c, doc))
