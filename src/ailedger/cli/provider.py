"""`ailedger provider start|status`: run a compute provider's worker (provider/worker.py) and see how it does.

`start` needs no set-up beyond a key with a balance: an account that is not yet a provider is registered
with `--bond` (default `market_provider_min_stake`) and an offer describing this machine (its CPU cores and
memory, a CUDA device if there is one) at `--price-per-block` / `--price-per-ktokens`. It then steps the
worker: on the embedded default (`--data-dir`, one local provider) each step seals the blocks it needs, on a
node it waits `--interval` seconds between steps. Training leases run on ModelFactory; serving leases run
on the serving engine when `--serve-base` names a base model (requests are text files dropped into
`--inbox/LEASE_ID/`), with the adapter the order names: its files are looked up by the ledger's adapter hash
in `--adapters DIR` (as `ailedger serve --node` does); an order whose adapter is not there gets no bid, and
`status --serve-base B --adapters DIR` says which and why.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.cli import market_render
from ailedger.cli.backend import DataDirOpt, NodeOpt, open_backend
from ailedger.cli.cluster_opt import RayOpt, cluster_for
from ailedger.cli.datanet_render import _row, _table
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.output import emit, kv_table, settings, units
from ailedger.cli.tx import FeeOpt, FromOpt, unlock_key
from ailedger.core import errors
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.market import payloads as p
from ailedger.market.resources import Resources

AdaptersOpt = Annotated[Path | None, typer.Option(
    "--adapters", help="Adapter directories (any names), matched to the ledger's published versions by adapter "
                       "hash; serve orders naming a version whose files are not here get no bid.")]

app = typer.Typer(help="A compute provider's worker: bids on market orders, runs its leases, answers spot checks.",
                  no_args_is_help=True)


def this_machine() -> Resources:
    """The offer a provider makes by default: this machine's cores and memory, and a CUDA device if any."""
    cores = os.cpu_count() or 1
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        gib = max(1, pages * size // 2**30)
    except (ValueError, OSError):
        gib = 1
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0).lower().split()[-1].replace("/", "-")[:32]
        return Resources(cores, gib, name, torch.cuda.device_count(), "")
    return Resources(cores, gib, "", 0, "")


def _ensure_registered(worker: Any, bond: str | None, per_block: int, per_ktokens: int) -> None:
    try:
        me = worker.me()
    except LedgerError as exc:
        if exc.code is not errors.PROVIDER_NOT_REGISTERED:
            raise
        micro = parse_units(bond) if bond else int(worker.backend.params()["market_provider_min_stake"]["value"])
        worker.send(p.REGISTER_PROVIDER, p.REGISTER_PROVIDER_CODEC.encode(p.RegisterProvider(bytes(20), micro)))
        worker.say(f"registered as a provider, bond {units(micro)}")
        me = worker.me()
    if not me["offer"]:
        offer = p.PostOffer(this_machine(), per_block, per_ktokens)
        worker.send(p.POST_OFFER, p.POST_OFFER_CODEC.encode(offer))
        worker.say(f"offered {offer.resources.cpu_cores} cores, {offer.resources.memory_gib} GiB"
                   + (f", {offer.resources.accelerators}x {offer.resources.accelerator}"
                      if offer.resources.accelerators else ""))


@app.command("start")
def start(ctx: typer.Context, sender: FromOpt,
          steps: Annotated[int, typer.Option("--steps", min=0, help="Stop after this many steps (0: until Ctrl-C "
                                                                     "or until nothing is left to do).")] = 0,
          interval: Annotated[float, typer.Option("--interval", min=0.0, help="Seconds between steps on a node.")
                              ] = 1.0,
          bond: Annotated[str | None, typer.Option("--bond", help="Bond to register with, in units (default "
                                                                  "market_provider_min_stake).")] = None,
          per_block: Annotated[str, typer.Option("--price-per-block", help="Offer price per lease block.")] = "0.001",
          per_ktokens: Annotated[str, typer.Option("--price-per-ktokens", help="Offer price per 1,000 tokens.")
                                 ] = "0.001",
          report_every: Annotated[int, typer.Option("--report-every", min=1, help="Blocks between work reports.")
                                  ] = 5,
          work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Where leases train and checks re-run "
                                                                           "(default HOME/provider/KEY).")] = None,
          serve_base: Annotated[str | None, typer.Option(
              "--serve-base", help="Base model to serve leases with (e.g. smollm2); without it no serve bids.")] = None,
          inbox: Annotated[Path | None, typer.Option("--inbox", help="Serving requests: INBOX/LEASE_ID/*.txt "
                                                                     "(default WORK_DIR/inbox).")] = None,
          adapters: AdaptersOpt = None, ray: RayOpt = None,
          fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
          passphrase_file: PassphraseFile = None) -> None:
    """Register if needed, then bid on orders this machine can run, run the leases won, report, verify."""
    from ailedger.factory.basemodel import load_base
    from ailedger.provider.work import Server, Trainer
    from ailedger.provider.worker import Worker
    from ailedger.serving.catalog import Catalog
    from ailedger.serving.stack import served_base

    s = settings(ctx)
    key = unlock_key(s, sender, passphrase_file)
    root = work_dir or s.home / "provider" / sender
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if not s.json:
            s.out.print(line, markup=False, highlight=False)

    with open_backend(s, node, data_dir, write=True) as backend, cluster_for(ray) as cluster:
        server = None
        if serve_base:
            loaded = load_base(serve_base)
            catalog = Catalog.from_ledger(served_base(loaded), backend.ledger_models(include_retired=True), adapters)
            server = Server(loaded, inbox or root / "inbox", catalog=catalog)
        elif adapters is not None:
            raise LedgerError(errors.BAD_ARGUMENT, "--adapters needs --serve-base (the base they were trained for)")
        worker = Worker(backend, key, Trainer(backend, root / "train", cluster=cluster), server, report_every,
                        fee=parse_units(fee) if fee is not None else None, say=say)
        _ensure_registered(worker, bond, parse_units(per_block), parse_units(per_ktokens))
        done = 0
        try:
            while not steps or done < steps:
                sent = worker.step()
                done += 1
                if not sent and not worker.waiting() and not steps:
                    break  # nothing to bid on, run or verify: a later start picks up new orders
                if node and not sent:
                    time.sleep(interval)
        except KeyboardInterrupt:
            say("stopped")
        from ailedger.provider.worker import status as provider_status

        doc = {**provider_status(backend, key.address_text, server.catalog if server else None), "steps": done,
               "log": lines}
    emit(s, doc, lambda c: render_status(c, doc))


@app.command("status")
def status_cmd(ctx: typer.Context, who: Annotated[str, typer.Argument(metavar="ADDRESS_OR_KEYNAME",
                                                                      help="The provider.")],
               serve_base: Annotated[str | None, typer.Option(
                   "--serve-base", help="With --adapters: the base the worker serves, to say which serve orders it "
                                        "cannot bid on and why.")] = None,
               adapters: AdaptersOpt = None,
               node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """The provider's bond, offer, reputation, leases (paid and owed), spot checks and earnings."""
    from ailedger.factory.basemodel import SMOLLM2, describe, resolve
    from ailedger.provider.worker import status as provider_status
    from ailedger.serving.catalog import Catalog, ServedBase

    s = settings(ctx)
    address = key_dir(s).resolve(who)
    with open_backend(s, node, data_dir) as backend:
        catalog = None
        if serve_base:
            info = describe(resolve(serve_base), SMOLLM2 if serve_base.lower() == SMOLLM2 else None)
            catalog = Catalog.from_ledger(ServedBase(info.name, info.weights_hash),
                                          backend.ledger_models(include_retired=True), adapters)
        elif adapters is not None:
            raise LedgerError(errors.BAD_ARGUMENT, "--adapters needs --serve-base (the base they were trained for)")
        doc = provider_status(backend, address, catalog)
    emit(s, doc, lambda c: render_status(c, doc))


def render_status(c: Any, doc: dict[str, Any]) -> None:
    prov = doc["provider"]
    c.print(kv_table(f"provider {prov['address']} at height {doc['height']}", [
        ("operator", prov["operator"]), ("bond", units(prov["bond"])),
        ("reputation", f"{prov['reputation_bps'] / 100:.2f} %"),
        ("active leases", doc["active_leases"]), ("earned (paid out)", units(doc["earned"])),
        ("owed now", units(doc["owed"])), ("checks drawn for it to verify", len(doc["checks"]))]))
    market_render.render_leases(c, {"height": doc["height"], "leases": doc["leases"]})
    if doc["checks"]:
        t = _table("spot checks it verifies", "id", "lease", "status", "deadline")
        for x in doc["checks"]:
            _row(t, x["id"], x["lease"], x["status"], x["deadline"])
        c.print(t)
    for x in doc.get("not_bidding", []):
        c.print(f"not bidding on order {x['order']}: {x['why']}", markup=False, highlight=False)
