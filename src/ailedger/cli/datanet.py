"""`ailedger datanet`: open a Datanet, contribute to it, gate it, review and vote, freeze and export versions.

The work itself is in `datanet/` (pipeline, gatekeeper, export, service); these commands unlock
keys, open the backend (`--node URL` or the embedded `--data-dir`), draw progress bars on stderr
and print the result (tables, or one JSON document with --json). Long runs that stop half way
(a failed receipt, Ctrl-C) report what they already did along with the error's code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.cli import datanet_render as render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.cluster_opt import RayOpt, cluster_for
from ailedger.cli.keys import PassphraseFile, key_dir, read_json_object
from ailedger.cli.output import Explained, Settings, emit, kv_table, marked, settings
from ailedger.cli.progress import StageCb, stage_bars
from ailedger.cli.tx import FeeOpt, FromOpt, send_and_show, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.datanet import payloads as p
from ailedger.datanet.remote import TxSender, WithReport, datanet_gate_config, param
from ailedger.datanet.service import parse_record_hash
from ailedger.datanet.state import FeeSplit

# The gates, the workers and the embedder import NumPy, jsonschema and model2vec: they are imported
# inside the commands that use them, so that `ailedger keys list` and friends start quickly.

app = typer.Typer(help="Datanets: community datasets with quality gates, stake, validator votes and versions.",
                  no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The Datanet's name ([a-z0-9-], 1-64 characters).")]
FileArg = Annotated[Path, typer.Argument(metavar="FILE", help="Records: .jsonl, .csv, .txt or .parquet.",
                                         dir_okay=False)]
FormatOpt = Annotated[str | None, typer.Option("--format", help="jsonl, csv, txt or parquet (default: by suffix).")]


class TxtMode(StrEnum):
    line = "line"
    paragraph = "paragraph"


class Choice(StrEnum):
    accept = "accept"
    reject = "reject"


class Pii(StrEnum):
    reject = "reject"
    redact = "redact"


TxtOpt = Annotated[TxtMode, typer.Option("--txt-mode", help="A .txt file holds one record per line or per paragraph.")]


# -- helpers ------------------------------------------------------------------------------------------

def _fee(fee: str | None) -> int | None:
    return parse_units(fee) if fee is not None else None


@contextmanager
def _reported() -> Iterator[None]:
    """A long run's failure keeps its report (under --json, in the one error document)."""
    try:
        yield
    except WithReport as exc:
        raise Explained(exc.code, exc.detail, {"report": exc.report}) from None
    except KeyboardInterrupt:
        raise LedgerError(errors.INTERRUPTED, "stopped by the user") from None


def _bars(s: Settings) -> AbstractContextManager[StageCb]:
    """A Rich progress bar per stage on stderr (none under --json or when piped), cleared at the end."""
    return stage_bars(s, transient=True, terminal_only=True)


def _fee_split(text: str) -> FeeSplit:
    parts = text.split(",")
    if len(parts) != 4 or not all(x.strip().isdigit() for x in parts):
        raise LedgerError(errors.BAD_ARGUMENT,
                          f"--fee-split {text!r}: four whole basis points, e.g. 7000,1500,1000,500")
    return FeeSplit(*(int(x) for x in parts))


def _schema_blob(path: Path) -> bytes:
    """The schema file as canonical JSON, checked as a Draft 2020-12 schema before anything is sent."""
    from ailedger.datanet.gates.records import canonical_record
    from ailedger.datanet.gates.schema import SchemaGate

    doc = read_json_object(path, errors.BAD_SCHEMA)
    SchemaGate(doc)
    return canonical_record(doc)


def _chain_dir(s: Settings, kind: str, backend: Backend) -> Path:
    return s.home / kind / str(backend.status()["chain_id"])


# -- opening a Datanet and its roles -------------------------------------------------------------------------

@app.command("create")
def create(ctx: typer.Context, name: NameArg, sender: FromOpt,
           topic: Annotated[str, typer.Option("--topic", help="What the records are about (200 bytes at most).")],
           stake_per_record: Annotated[str, typer.Option(
               "--stake-per-record", help="Stake a contributor bonds per record, in units.")],
           quorum: Annotated[int, typer.Option("--quorum", help="Votes a record needs to be decided.", min=1)],
           window: Annotated[int, typer.Option("--window", help="Voting window, in blocks.", min=1)],
           description: Annotated[str, typer.Option("--description", help="Longer description.")] = "",
           schema: Annotated[Path | None, typer.Option(
               "--schema", help="JSON Schema (Draft 2020-12) every record must match; stored as a blob, its hash on "
               "the ledger.", dir_okay=False)] = None,
           licence: Annotated[str, typer.Option("--licence", help="Licence of the records.")] = "CC-BY-4.0",
           fee_split: Annotated[str, typer.Option(
               "--fee-split", help="Basis points of every fee for data, model owner, compute and validators "
               "(sum 10000).")] = "7000,1500,1000,500",
           neardup: Annotated[float, typer.Option(
               "--neardup", help="Jaccard similarity from which a record is a near-duplicate.", min=0.0, max=1.0)]
           = 0.8,
           pii: Annotated[Pii, typer.Option("--pii", help="Records with PII are rejected, or redacted before "
                                                          "staking.")] = Pii.reject,
           fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
           passphrase_file: PassphraseFile = None) -> None:
    """Open a Datanet; the sender becomes its owner and first gatekeeper."""
    s = settings(ctx)
    split = _fee_split(fee_split)
    blob = _schema_blob(schema) if schema is not None else None
    payload = p.CREATE_CODEC.encode(p.CreateDatanet(
        name, topic, description, hashlib.sha256(blob).digest() if blob else bytes(32), licence,
        parse_units(stake_per_record), quorum, window, split, round(neardup * 10_000), 1 if pii is Pii.redact else 0))
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        if blob is not None:
            backend.put_blobs([blob])  # first: the Datanet never exists without its schema
        result = send_ok(backend, key, p.CREATE, payload, fee)
        doc = backend.datanet(name)
    emit(s, {**doc, "tx": result}, lambda c: render.render_datanet(c, doc))


def _role(ctx: typer.Context, sender: str, tx_type: int, payload: bytes, name: str, fee: str | None,
          node: str | None, data_dir: Path | None, passphrase_file: Path | None) -> None:
    send_and_show(ctx, sender, tx_type, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.datanet(name), render.render_datanet)


@app.command("add-gatekeeper")
def add_gatekeeper(ctx: typer.Context, name: NameArg,
                   address: Annotated[str, typer.Argument(metavar="ADDRESS", help="Address or key name.")],
                   sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
                   passphrase_file: PassphraseFile = None) -> None:
    """Let another key post gate verdicts (owner only)."""
    target = decode_address(key_dir(settings(ctx)).resolve(address))
    payload = p.ADD_GATEKEEPER_CODEC.encode(p.AddGatekeeper(name, target))
    _role(ctx, sender, p.ADD_GATEKEEPER, payload, name, fee, node, data_dir, passphrase_file)


@app.command("register-validator")
def register_validator(ctx: typer.Context, name: NameArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
                       data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Join the Datanet's validators; needs `datanet_validator_min_stake` bonded first (`ailedger tx stake`)."""
    _role(ctx, sender, p.REGISTER_VALIDATOR, p.NAMED_CODEC.encode(p.Named(name)), name, fee, node, data_dir,
          passphrase_file)


@app.command("snapshot")
def snapshot(ctx: typer.Context, name: NameArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
             data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Freeze a version: the Merkle root over every accepted record hash so far (owner only)."""
    s = settings(ctx)
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        result = send_ok(backend, key, p.SNAPSHOT, p.NAMED_CODEC.encode(p.Named(name)), fee)
        version = backend.datanet(name)["versions"][-1]
    doc = {**version, "datanet": name, "tx": result}
    emit(s, doc, lambda c: c.print(kv_table(f"{name} version {version['version']}", [
        ("records", version["count"]), ("root", version["root"]), ("height", version["height"]),
        ("export", f"ailedger datanet export {name} --version {version['version']} --out FILE")])))


# -- contributing -------------------------------------------------------------------------------------------

@app.command("check")
def check(ctx: typer.Context, file: FileArg,
          datanet: Annotated[str | None, typer.Option(
              "--datanet", help="Gate with this Datanet's settings and against its records.")] = None,
          schema: Annotated[Path | None, typer.Option(
              "--schema", help="Without --datanet: a JSON Schema to check against.", dir_okay=False)] = None,
          fmt: FormatOpt = None, txt_mode: TxtOpt = TxtMode.line,
          json_out: Annotated[bool, typer.Option("--json", help="Print JSON (same as the global --json).")] = False,
          ray: RayOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run every automatic gate on FILE without sending anything; prints each record's verdicts."""
    from ailedger.datanet.gates.runner import GateConfig
    from ailedger.datanet.pipeline import ContributeSummary, backend_lookup, check_file

    s = settings(ctx)
    s.json = s.json or json_out
    summary = ContributeSummary(datanet or "", str(file))
    records: list[dict[str, Any]] = []

    def run(config: GateConfig, known: Any) -> None:
        for lr in check_file(file, config, known, None, None, fmt, txt_mode.value, cluster):
            summary.count(lr)
            records.append(lr.to_json())

    with _reported(), cluster_for(ray) as cluster:
        if datanet is None:
            run(GateConfig(schema=json.loads(_schema_blob(schema)) if schema else None), frozenset())
        else:
            with open_backend(s, node, data_dir) as backend:
                dn = backend.datanet(datanet)
                run(datanet_gate_config(backend, dn), backend_lookup(backend, dn["name"]))
    out = summary.to_json()
    for k in ("to_stake", "staked", "stake_total", "tx_ids", "examples", "include_rejected", "stake_per_record"):
        out.pop(k, None)
    doc = {"file": str(file), "datanet": datanet, "summary": out, "records": records}
    emit(s, doc, lambda c: render.render_verdicts(c, doc))


@app.command("contribute")
def contribute_cmd(ctx: typer.Context, name: NameArg, file: FileArg, sender: FromOpt,
                   include_rejected: Annotated[bool, typer.Option(
                       "--include-rejected", help="Stake records that failed a gate too (exact duplicates never); "
                       "the gatekeepers will likely reject them and their stake goes to the validators.")] = False,
                   fmt: FormatOpt = None, txt_mode: TxtOpt = TxtMode.line, fee: FeeOpt = None, ray: RayOpt = None,
                   node: NodeOpt = None, data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Gate FILE locally, upload what passed to the blob store and stake it, chunk by chunk.

    Safe to interrupt: running the same command again skips what the Datanet already holds.
    """
    from ailedger.datanet.pipeline import contribute

    s = settings(ctx)
    key = unlock_key(s, sender, passphrase_file)
    with _reported(), open_backend(s, node, data_dir, write=True) as backend, cluster_for(ray) as cluster, \
            _bars(s) as tick:
        summary = contribute(file, name, key, backend, include_rejected=include_rejected, progress=tick,
                             fee=_fee(fee), fmt=fmt, txt_mode=txt_mode.value, cluster=cluster)
    doc = summary.to_json()
    emit(s, doc, lambda c: render.render_contribute(c, doc))


# -- gatekeeping, review and votes ------------------------------------------------------------------------

@app.command("gate")
def gate(ctx: typer.Context, name: NameArg, sender: FromOpt,
         offtopic: Annotated[bool, typer.Option(
             "--offtopic/--no-offtopic", help="Run the off-topic gate (static embedding distilled from MiniLM, "
             "cached after a one-time ~20 s distillation) once the Datanet has accepted records.")] = True,
         offtopic_threshold: Annotated[float | None, typer.Option(
             "--offtopic-threshold", help="Cosine distance to the accepted records' centroid above which a record "
             "is off-topic (default: calibrated to the 99.5th percentile of the accepted records' own "
             "distances).", min=0.01, max=2.0)] = None,
         fee: FeeOpt = None, ray: RayOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
         passphrase_file: PassphraseFile = None) -> None:
    """Gatekeeper: run every automatic gate over the pending records and post the rejections."""
    from ailedger.datanet.gatekeeper import run_gates

    s = settings(ctx)
    key = unlock_key(s, sender, passphrase_file)
    embedder = _lazy_embedder(s) if offtopic else None
    with _reported(), open_backend(s, node, data_dir, write=True) as backend, cluster_for(ray) as cluster, \
            _bars(s) as tick:
        summary = run_gates(name, key, backend, _chain_dir(s, "gatekeeper", backend), embedder=embedder,
                            offtopic_threshold=offtopic_threshold, fee=_fee(fee), progress=tick, cluster=cluster)
    doc = summary.to_json()
    emit(s, doc, lambda c: render.render_gate(c, doc))


def _lazy_embedder(s: Settings) -> Callable[[list[str]], Any]:
    """The static embedder, loaded (or distilled, once) only when the off-topic gate first needs it."""
    loaded: list[Callable[[list[str]], Any]] = []

    def embed(texts: list[str]) -> Any:
        if not loaded:
            from ailedger.datanet.embedding import static_embedder

            loaded.append(static_embedder(progress=lambda msg: s.err.print(msg)))
        return loaded[0](texts)

    return embed


def _text_of(backend: Backend, hash_hex: str) -> str:
    from ailedger.datanet.gates.records import record_text

    try:
        text = record_text(json.loads(backend.get_blob(hash_hex)))
    except (LedgerError, ValueError):
        return "(record bytes not in the blob store)"
    return text if len(text) <= 500 else text[:500] + "…"


@app.command("review")
def review(ctx: typer.Context, name: NameArg,
           limit: Annotated[int, typer.Option("--limit", help="Show at most this many.", min=1, max=1000)] = 20,
           node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Pending records with their text, the votes so far and the end of their voting window."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.datanet_pending(name, limit)
        for r in doc["records"]:
            r["text"] = _text_of(backend, r["hash"])
    emit(s, doc, lambda c: render.render_review(c, doc))


@app.command("vote")
def vote(ctx: typer.Context, name: NameArg,
         choice: Annotated[Choice, typer.Argument(metavar="accept|reject", help="Your vote.")],
         records: Annotated[list[str], typer.Argument(metavar="RECORD_HASH...", help="Record hashes (hex).")],
         sender: FromOpt,
         reason: Annotated[str | None, typer.Option(
             "--reason", help="Why. Shown back to you and kept locally in HOME/votes; the ledger's vote carries no "
             "reason, so nobody else sees it.")] = None,
         fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
         passphrase_file: PassphraseFile = None) -> None:
    """Vote on pending records (registered validators only); weight = bonded stake x validator reputation."""
    from ailedger.datanet.service import parse_record_hash

    s = settings(ctx)
    hashes = [parse_record_hash(h) for h in records]
    accept = 1 if choice is Choice.accept else 0
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        per_tx = param(backend, "datanet_max_records_per_tx")
        sender_ = TxSender(backend, key, _fee(fee))
        for i in range(0, len(hashes), per_tx):
            ballots = [p.Ballot(h, accept) for h in hashes[i:i + per_tx]]
            sender_.send(p.VOTE, p.VOTE_CODEC.encode(p.VoteBatch(name, ballots)))
        sender_.finish()
        log = _chain_dir(s, "votes", backend) / f"{name}.jsonl"
    doc = {"datanet": name, "accept": bool(accept), "records": [h.hex() for h in hashes], "reason": reason,
           "tx_ids": sender_.sent, "log": str(log)}
    _keep_vote(log, doc)
    emit(s, doc, lambda c: render.render_votes(c, doc))


def _keep_vote(log: Path, doc: dict[str, Any]) -> None:
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({k: doc[k] for k in ("accept", "records", "reason", "tx_ids")}) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"the vote is on the ledger, but {log}: {exc}") from exc


# -- reading and exporting ------------------------------------------------------------------------------------

@app.command("export")
def export(ctx: typer.Context, name: NameArg,
           version: Annotated[int, typer.Option("--version", help="Version number (see `datanet show`).", min=1)],
           out: Annotated[Path, typer.Option("--out", help="JSONL file to write (canonical records, one a line).",
                                             dir_okay=False)],
           include_retracted: Annotated[bool, typer.Option(
               "--include-retracted", help="Also write records retracted since the version froze (the file then "
                                           "rebuilds the version's root on its own).")] = False,
           node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Write a version's records out, verified against its on-ledger Merkle root; retracted records are left out."""
    from ailedger.datanet.export import export_version

    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend, _bars(s) as tick:
        doc = export_version(name, version, backend, out, tick, skip_retracted=not include_retracted)
    gone = len(doc["retracted"])
    how = ("recomputed from the records, equal to the ledger's" if not gone else
           f"recomputed from the version's hashes, equal to the ledger's; {gone} retracted left out of the file")
    emit(s, doc, lambda c: c.print(kv_table(f"{name} version {version} exported", [
        ("file", doc["out"]), ("records", doc["written"]), ("bytes", doc["bytes"]),
        ("root", marked(True, f"{doc['root']} ({how})"))])))


@app.command("show")
def show(ctx: typer.Context, name: NameArg, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Configuration, counts by state, contributors, validators with reputation, and versions."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.datanet(name)
    emit(s, doc, lambda c: render.render_datanet(c, doc))


HashesArg = Annotated[list[str], typer.Argument(metavar="HASH...", help="Record hashes (64 hex each).")]


class Reason(StrEnum):  # datanet/payloads.py RETRACT_REASONS
    consent_withdrawn = "consent_withdrawn"
    personal_data = "personal_data"
    licence = "licence"
    harmful = "harmful"


@app.command("record")
def record_cmd(ctx: typer.Context, name: NameArg,
               record: Annotated[str, typer.Argument(metavar="HASH", help="The record's hash (64 hex).")],
               node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One record: status, contributor, stake, window, votes, the gate verdict or retraction that decided it."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.datanet_record(name, record)
    emit(s, doc, lambda c: render.render_record(c, doc))


@app.command("retract")
def retract(ctx: typer.Context, name: NameArg, records: HashesArg, sender: FromOpt,
            reason: Annotated[Reason, typer.Option("--reason", help="consent_withdrawn (the contributor, its own "
                                                   "records) or a takedown by the owner: personal_data, licence, "
                                                   "harmful (costs the contributor reputation).")]
            = Reason.consent_withdrawn,
            fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
            passphrase_file: PassphraseFile = None) -> None:
    """Take accepted records out of paid use: settlement stops paying them from the next block on."""
    code = {v: k for k, v in p.RETRACT_REASONS.items()}[reason.value]
    hashes = [parse_record_hash(h) for h in records]
    sender_address = key_dir(settings(ctx)).info(sender).address

    def check(backend: Backend) -> None:  # what the ledger would refuse, refused before a fee is spent
        owner = backend.datanet(name)["owner"]
        for h in records:
            rec = backend.datanet_record(name, h)
            if rec["status"] != "accepted":
                raise LedgerError(errors.RECORD_NOT_ACCEPTED, f"{h} is {rec['status']}")
            if code == p.RetractReason.CONSENT_WITHDRAWN and rec["contributor"] != sender_address:
                raise LedgerError(errors.NOT_RECORD_CONTRIBUTOR, f"{h} was contributed by {rec['contributor']}")
        if code != p.RetractReason.CONSENT_WITHDRAWN and owner != sender_address:
            raise LedgerError(errors.NOT_DATANET_OWNER, f"{name} belongs to {owner}")

    payload = p.RETRACT_CODEC.encode(p.Retract(name, hashes, code))
    send_and_show(ctx, sender, p.RETRACT, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.datanet_record(name, records[0]), render.render_record, before=check)


@app.command("list")
def list_cmd(ctx: typer.Context, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every Datanet with its counts."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.datanets()
    emit(s, doc, lambda c: render.render_list(c, doc))
