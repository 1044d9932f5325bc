"""`ailedger attribution`: build an adapter's attribution bundle, explain and verify an answer's attribution.

- `index ADAPTER` reads the adapter's snapshot and its contributors from the ledger
  (`attribution.snapshot`), builds the influence and verbatim-span indexes with a progress bar
  (interrupted, it resumes where it stopped) and prints the bundle root; `--publish --from OWNER`
  also records that root on the ledger for the adapter's version (`model publish-attribution`).
- `show RECEIPT` fetches an answer's attribution record (from the node: the receipt names the
  record's hash, the record itself is a blob; or from a serving server with `--server`, or a file)
  and explains it in words and a table.
- `verify RECEIPT --adapter DIR` checks the record against the ledger (the receipt's hash and
  shares, the adapter's published root) and recomputes it from its public inputs with the bundle
  in DIR; any difference beyond the stated tolerance is reported and the command fails.

Heavy imports (torch, the model) happen inside the commands, so `ailedger --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.cluster_opt import RayOpt, cluster_for
from ailedger.cli.keys import PassphraseFile
from ailedger.cli.output import Settings, emit, kv_table, marked, settings, short
from ailedger.cli.progress import stage_bars
from ailedger.cli.tx import FeeOpt, unlock_key
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import sha256

if TYPE_CHECKING:
    from ailedger.factory.basemodel import BaseModel

app = typer.Typer(help="Proof of Attribution: which records and contributors drove each answer.", no_args_is_help=True)

AdapterArg = Annotated[Path, typer.Argument(metavar="ADAPTER", help="Adapter directory (as training wrote it).",
                                            exists=True, file_okay=False)]
BaseOpt = Annotated[str, typer.Option("--base", help="`smollm2` (shipped) or a local Hugging Face causal-LM "
                                                     "directory: the adapter's base.")]
ReceiptArg = Annotated[str, typer.Argument(metavar="RECEIPT", help="Receipt id (64 hex), as the answer's "
                                                                  "`ailedger.receipt_id` gave it.")]
ServerOpt = Annotated[str | None, typer.Option("--server", help="Fetch the record from this serving server "
                                                                "(`ailedger serve`) instead of the node.")]
FileOpt = Annotated[Path | None, typer.Option("--file", help="Read the record from this JSON file instead.",
                                              exists=True, dir_okay=False)]
ZERO = "00" * 32


def _load_base(s: Settings, base: str) -> BaseModel:
    from ailedger.factory.basemodel import load_base

    with stage_bars(s) as tick:
        return load_base(base, progress=tick)


def _ledger_version(backend: Backend, adapter_hash: str) -> dict[str, Any] | None:
    """The ledger's entry for the adapter with this hash, if it was published."""
    found = backend.ledger_models(include_retired=True)["models"]
    return next((dict(m) for m in found if m["adapter_hash"] == adapter_hash), None)


# ---- index --------------------------------------------------------------------------------------------------
@app.command("index")
def index(ctx: typer.Context, adapter: AdapterArg, base: BaseOpt = "smollm2",
          k: Annotated[int, typer.Option("--k", min=4, max=1 << 16, help="Projection dimension (a multiple of "
                                                                         "4).")] = 2048,
          seed: Annotated[int, typer.Option("--seed", min=0, help="Projection seed.")] = 0,
          top_layers: Annotated[int, typer.Option("--top-layers", min=0, help="Differentiate only the LoRA tensors "
                                                  "of the last N blocks (0: all); fewer is faster, see "
                                                  "docs/attribution.md.")] = 6,
          publish: Annotated[bool, typer.Option("--publish", help="Record the bundle's root on the ledger for the "
                                                                  "adapter's version (needs --from, the owner).")]
          = False,
          sender: Annotated[str | None, typer.Option("--from", help="The adapter owner's key, with "
                                                                    "--publish.")] = None,
          chunk: Annotated[int | None, typer.Option("--chunk", min=1, help="Records per resumable part (and per "
                                                    "Ray task); default 256, or about a quarter of each Ray "
                                                    "worker's share with --ray. The index is the same.")] = None,
          ray: RayOpt = None, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
          passphrase_file: PassphraseFile = None) -> None:
    """Build ADAPTER's attribution bundle (influence + verbatim spans) over its snapshot; resumable."""
    from ailedger.attribution.attributor import build_bundle
    from ailedger.attribution.influence import InfluenceConfig, chunk_for
    from ailedger.attribution.snapshot import adapter_snapshot
    from ailedger.cli.model import publish_attribution

    s = settings(ctx)
    if publish != (sender is not None):
        raise LedgerError(errors.BAD_ARGUMENT, "--publish and --from go together: the owner's key signs the root")
    if k % 4:
        raise LedgerError(errors.BAD_ARGUMENT, f"--k {k} is not a multiple of 4")
    key = unlock_key(s, sender, passphrase_file) if sender is not None else None
    loaded = _load_base(s, base)
    with open_backend(s, node, data_dir, write=key is not None) as backend, cluster_for(ray) as cluster:
        with stage_bars(s) as tick:
            snap = adapter_snapshot(adapter, backend, tick)
            per_part = chunk or chunk_for(len(snap.hashes), cluster)
            try:
                bundle = build_bundle(adapter, loaded, snap.records, snap.hashes, snap.contributors,
                                      InfluenceConfig(k=k, seed=seed, top_layers=top_layers, chunk=per_part), tick,
                                      cluster=cluster)
            except KeyboardInterrupt:
                raise LedgerError(errors.INTERRUPTED, "stopped; run the same command again to resume") from None
        out: dict[str, Any] = {
            "adapter": str(adapter), "adapter_hash": bundle.adapter.adapter_hash, "root": bundle.root.hex(),
            "datanet": snap.datanet, "version": snap.version, "snapshot_root": snap.root,
            "records": len(snap.hashes), "contributors": len(set(snap.contributors.values())),
            "influence_root": bundle.influence.root.hex(), "spans_root": bundle.spans.root.hex(),
            "k": bundle.influence.k, "seed": seed, "checkpoints": bundle.influence.steps,
            "bytes": sum(f.stat().st_size for f in (adapter / "attribution").iterdir() if f.is_file()),
            "published": None}
        if key is not None:
            entry = _ledger_version(backend, bundle.adapter.adapter_hash)
            if entry is None:
                raise LedgerError(errors.MODEL_NOT_FOUND, f"adapter {bundle.adapter.adapter_hash} is not published; "
                                                          "run `ailedger model publish` first")
            done = publish_attribution(backend, key, entry["name"], int(entry["version"]), bundle.root, fee)
            out["published"] = {"model": f"{entry['name']}@{entry['version']}", "tx": done["tx"].get("tx_id"),
                                "height": done.get("attribution_height")}

    def render(c: Console) -> None:
        c.print(kv_table("attribution bundle", [
            ("adapter", f"{out['adapter']} ({out['adapter_hash']})"), ("root", out["root"]),
            ("snapshot", f"{out['datanet']} v{out['version']}, root {out['snapshot_root']}"),
            ("records", f"{out['records']} from {out['contributors']} contributors"),
            ("influence", f"k {out['k']}, seed {out['seed']}, checkpoints {out['checkpoints']}, root "
                          f"{out['influence_root']}"),
            ("spans", out["spans_root"]), ("bytes", f"{out['bytes']:,}"),
            ("published", out["published"]["model"] + f" at height {out['published']['height']}"
             if out["published"] else "no (publish with --publish --from OWNER)")]))

    emit(s, out, render)


# ---- fetching a record --------------------------------------------------------------------------------------
def _from_server(server: str, receipt: str) -> dict[str, Any]:
    import httpx

    from ailedger.api.client import error_from_body

    url = f"{server.rstrip('/')}/v1/attribution/{receipt}"
    try:
        resp = httpx.get(url, timeout=120.0)
    except httpx.HTTPError as exc:
        raise LedgerError(errors.NODE_UNREACHABLE, f"{server}: {exc}") from exc
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not resp.is_success or not isinstance(body, dict):
        raise error_from_body(resp.status_code, body, url)  # the serving API's errors have the node's shape
    return dict(body["attribution"])


def _from_ledger(backend: Backend, receipt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored receipt and the record its `attribution` hash names, fetched from the blob store."""
    found = backend.billing_receipt(receipt)
    digest = str(found.get("attribution") or ZERO)
    if digest == ZERO:
        raise LedgerError(errors.ATTRIBUTION_NOT_FOUND, f"receipt {receipt} carries no attribution record")
    blob = backend.get_blob(digest)
    if sha256(blob).hex() != digest:
        raise LedgerError(errors.ATTRIBUTION_VERIFY_FAILED, f"the blob store answered other bytes for {digest}")
    return json.loads(blob), found


def _fetch(s: Settings, receipt: str, server: str | None, file: Path | None, node: str | None,
           data_dir: Path | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from ailedger.core.hexid import parse_hex32

    receipt = parse_hex32(receipt, errors.BAD_RECEIPT_ID).hex()
    if file is not None:
        try:
            doc = json.loads(file.read_bytes())
        except (OSError, ValueError) as exc:
            raise LedgerError(errors.FILE_UNREADABLE, f"{file}: {exc}") from exc
        return dict(doc.get("attribution", doc)), None
    if server is not None:
        return _from_server(server, receipt), None
    with open_backend(s, node, data_dir) as backend:
        return _from_ledger(backend, receipt)


# ---- show ---------------------------------------------------------------------------------------------------
def _words(record: dict[str, Any]) -> list[str]:
    """The record explained in sentences."""
    answer = len(record.get("answer_tokens", []))
    shares = record.get("shares", [])
    paid = [r for r in record.get("records", []) if r.get("paid")]
    if not shares:
        return [f"No record of the snapshot stands out for this answer of {answer} tokens: nobody is paid from it "
                "(its data part goes by settlement's rule for unattributed answers)."]
    lines = [f"This answer of {answer} tokens is attributed to {len(paid)} record(s) of {len(shares)} "
             f"contributor(s) of snapshot {short(record['snapshot_root'])}:"]
    for sh in shares:
        mine = [r for r in paid if r["contributor"] == sh["contributor"]]
        why = []
        for r in mine:
            bits = [f"influence {r['influence'] / 1e6:.3f}"]
            if r["span"]:
                bits.append(f"copied {r['span'] / 1e4:.0f}% of the answer verbatim")
            why.append(f"record {short(r['record'], 12)} ({', '.join(bits)})")
        lines.append(f"  {sh['contributor']} gets {sh['bp'] / 100:.2f}%: " + "; ".join(why))
    lines.append(f"Rule {record['method']}: records scoring at least {record['rule']['floor']:.0%} of the best, at "
                 f"most {record['rule']['top_k']}, are paid in proportion to influence + "
                 f"{record['rule']['span_weight']} x verbatim share.")
    return lines


def render_record(c: Console, record: dict[str, Any]) -> None:
    for line in _words(record):
        c.print(line)
    table = Table(title="records", show_lines=False)
    for col in ("record", "contributor", "influence", "verbatim", "score", "bp", "paid"):
        table.add_column(col, justify="right" if col in ("influence", "verbatim", "score", "bp") else "left")
    for r in record.get("records", []):
        table.add_row(short(r["record"], 16), r["contributor"], f"{r['influence'] / 1e6:.4f}",
                      f"{r['span'] / 1e6:.3f}", f"{r['score'] / 1e6:.4f}", str(r["bp"]), marked(r["paid"], "yes")
                      if r["paid"] else "no")
    c.print(table)
    for sp in record.get("spans", []):
        c.print(f"verbatim tokens {sp['start']}..{sp['end']} of the answer occur in {sp['record_count']} record(s) "
                f"({sp['count']} time(s)): {', '.join(short(h, 12) for h in sp['records'][:4])}")
    c.print(kv_table("inputs", [("bundle root", record["bundle_root"]), ("adapter", record["adapter_hash"]),
                                ("influence index", record["influence_root"]), ("span index", record["spans_root"]),
                                ("projection", f"seed {record['projection_seed']}, k {record['k']}")]))


@app.command("show")
def show(ctx: typer.Context, receipt: ReceiptArg, server: ServerOpt = None, file: FileOpt = None,
         node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Explain an answer's attribution: who is paid, for which records, and why."""
    s = settings(ctx)
    record, _ = _fetch(s, receipt, server, file, node, data_dir)
    emit(s, record, lambda c: render_record(c, record))


# ---- verify -------------------------------------------------------------------------------------------------
def _ledger_checks(record: dict[str, Any], found: dict[str, Any] | None, published: str | None) -> list[str]:
    """What the ledger says against the record: the receipt's hash and shares, the adapter's root."""
    from ailedger.attribution.attributor import receipt_shares, record_hash
    out = []
    if found is not None:
        if str(found.get("attribution")) != record_hash(record).hex():
            out.append("the receipt's attribution hash is not the record's")
        on_ledger = tuple(sorted((bytes.fromhex(x["record"]), int(x["bp"])) for x in found.get("shares", [])))
        if on_ledger != receipt_shares(record):
            out.append("the receipt's shares are not the record's")
    if published is not None and published != record.get("bundle_root"):
        out.append(f"the ledger's attribution root for this adapter is {published}, the record used "
                   f"{record.get('bundle_root')}")
    return out


@app.command("verify")
def verify_cmd(ctx: typer.Context, receipt: ReceiptArg,
               adapter: Annotated[Path, typer.Option("--adapter", help="The adapter directory with its attribution "
                                                                       "bundle (`ailedger attribution index`).",
                                                     exists=True, file_okay=False)],
               base: BaseOpt = "smollm2", server: ServerOpt = None, file: FileOpt = None, node: NodeOpt = None,
               data_dir: DataDirOpt = None) -> None:
    """Recompute an answer's attribution from public inputs and compare it with the stored record."""
    from ailedger.attribution.attributor import BPS_TOLERANCE, MICRO, SCORE_TOLERANCE, Attributor, verify

    s = settings(ctx)
    record, found = _fetch(s, receipt, server, file, node, data_dir)
    published = None
    if found is not None:
        with open_backend(s, node, data_dir) as backend:
            entry = _ledger_version(backend, record.get("adapter_hash", ""))
            published = entry.get("attribution_root") if entry else None
    problems = _ledger_checks(record, found, published)
    attributor = Attributor.load(adapter, _load_base(s, base), str(record.get("bundle_root")))
    result = verify(record, attributor)
    problems += list(result.differences)
    out = {"receipt": receipt, "matches": not problems, "differences": problems,
           "tolerance": {"score": SCORE_TOLERANCE / MICRO, "bp": BPS_TOLERANCE},
           "checked_against_ledger": found is not None}

    def render(c: Console) -> None:
        c.print(marked(not problems, "the record matches its recomputation" if not problems else
                       "the record does NOT match"))
        for p in problems:
            c.print(f"  - {p}")
        c.print(f"tolerance: scores within {SCORE_TOLERANCE / MICRO}, contributor shares within {BPS_TOLERANCE} "
                f"bp; ledger checks {'done' if found is not None else 'skipped (record not from the node)'}")

    emit(s, out, render)
    if problems:
        raise LedgerError(errors.ATTRIBUTION_VERIFY_FAILED, "; ".join(problems[:3]))


def _register_eval() -> None:
    """`attribution eval FACTS.jsonl` (cli/attribution_eval.py): the whole loop on a user's facts file."""
    from ailedger.cli.attribution_eval import eval_command

    app.command("eval")(eval_command)


_register_eval()


def _register_lds() -> None:
    """`attribution lds` (cli/attribution_lds.py): the linear datamodeling score on a generated set-up."""
    from ailedger.cli.attribution_lds import lds_command

    app.command("lds")(lds_command)


_register_lds()
