"""`ailedger market ...`: the compute market (docs/market.md) from the command line.

Reads: `offers`, `providers`, `orders`, `leases`, `checks`, `stats`. Writes: `register`, `offer`,
`withdraw-offer`, `retire`, `order`, `bid`, `cancel`, `report`, `withdraw`, `close`, `check-result`.
Writes whose failure can be seen on the current state (a bid outside the order's price range or after its
window, a lease action by someone who is not its party) are refused before sending, so they cost no fee;
the ledger checks everything again and a receipt's failure is printed with its code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.cli import market_render as render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import FeeOpt, FromOpt, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32
from ailedger.market import payloads as p
from ailedger.market.resources import Resources
from ailedger.market.state import Kind

app = typer.Typer(help="The compute market: providers bond and offer capacity, orders are won by reverse auction, "
                       "leases are paid for reported work and spot-checked.", no_args_is_help=True)

IdArg = Annotated[int, typer.Argument(metavar="ID", min=1, help="Order, lease or check number.")]
Cpu = Annotated[int, typer.Option("--cpu", min=1, help="CPU cores.")]
Mem = Annotated[int, typer.Option("--memory", min=1, help="Memory in GiB.")]
Acc = Annotated[str, typer.Option("--accelerator", help="Accelerator model label, e.g. h100 (none by default).")]
AccN = Annotated[int, typer.Option("--accelerators", min=0, help="Number of accelerators.")]
Region = Annotated[str, typer.Option("--region", help="Region label ('' = any, in an order).")]


def _query(**kw: Any) -> dict[str, str]:
    return {k: str(v) for k, v in kw.items() if v is not None}


def _address(ctx: typer.Context, name_or_address: str | None) -> str | None:
    if name_or_address is None:
        return None
    return encode_address(decode_address(key_dir(settings(ctx)).resolve(name_or_address)))


def _send(ctx: typer.Context, sender: str, tx_type: int, payload: bytes, fee: str | None, node: str | None,
          data_dir: Path | None, passphrase_file: Path | None, view: str, query: Callable[[str], dict[str, str]],
          draw: Callable[[Any, dict[str, Any]], None], before: Callable[[Backend, str], None] | None = None) -> None:
    """Check (`before`, with the sender's address), send, then show the `view` the transaction changed."""
    s = settings(ctx)
    address = key_dir(s).info(sender).address
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        if before is not None:
            before(backend, address)
        result = send_ok(backend, key, tx_type, payload, fee)
        doc = backend.market(view, query(address))
    emit(s, {**doc, "tx": result}, lambda c: draw(c, doc))


def _one(backend: Backend, view: str, ident: int) -> dict[str, Any]:
    return dict(backend.market(view, {"id": str(ident)})[view][0])


# -- reads --------------------------------------------------------------------------------------------

@app.command("offers")
def offers(ctx: typer.Context, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Providers with a capacity offer: resources, prices, bond, active leases and reputation."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.market("providers")
    emit(s, doc, lambda c: render.render_providers(c, doc, offers_only=True))


@app.command("providers")
def providers(ctx: typer.Context, who: Annotated[str | None, typer.Argument(
        metavar="[ADDRESS_OR_KEYNAME]", help="Only this provider.")] = None,
              node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every registered provider (retired ones show bond 0), with its operator."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.market("providers", _query(address=_address(ctx, who)))
    emit(s, doc, lambda c: render.render_providers(c, doc))


@app.command("orders")
def orders(ctx: typer.Context,
           status: Annotated[str | None, typer.Option(
               "--status", help="bidding, leased, done, expired or cancelled.")] = None,
           order_id: Annotated[int | None, typer.Option("--id", help="One order, with its bids.")] = None,
           node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Orders in posting order with their escrow, window and lease."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.market("orders", _query(status=status, id=order_id))
    emit(s, doc, lambda c: render.render_orders(c, doc))


@app.command("leases")
def leases(ctx: typer.Context,
           status: Annotated[str | None, typer.Option(
               "--status", help="active, ended, closed, timed_out or failed_check.")] = None,
           party: Annotated[str | None, typer.Option(
               "--party", metavar="ADDRESS_OR_KEYNAME", help="Only leases with this provider or consumer.")] = None,
           lease_id: Annotated[int | None, typer.Option("--id", help="One lease.")] = None,
           node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Leases with their price, reports, what was paid and what is owed now."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.market("leases", _query(status=status, party=_address(ctx, party), id=lease_id))
    emit(s, doc, lambda c: render.render_leases(c, doc))


@app.command("checks")
def checks(ctx: typer.Context,
           status: Annotated[str | None, typer.Option("--status", help="pending, passed, failed or missed.")] = None,
           verifier: Annotated[str | None, typer.Option(
               "--verifier", metavar="ADDRESS_OR_KEYNAME", help="Only checks drawn for this verifier.")] = None,
           node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Spot checks the ledger drew, who must answer them and by when."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.market("checks", _query(status=status, verifier=_address(ctx, verifier)))
    emit(s, doc, lambda c: render.render_checks(c, doc))


@app.command("stats")
def stats(ctx: typer.Context,
          window: Annotated[int, typer.Option("--window", min=1, help="Blocks of history to summarise.")] = 100,
          node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Concentration per resource class: top operator share and HHI now, and their per-block record."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.market("stats", _query(window=window))
    emit(s, doc, lambda c: render.render_stats(c, doc))


# -- writes -------------------------------------------------------------------------------------------

@app.command("register")
def register(ctx: typer.Context, sender: FromOpt,
             bond: Annotated[str, typer.Option("--bond", help="Units to bond into the market (added to the bond).")],
             operator: Annotated[str | None, typer.Option(
                 "--operator", metavar="ADDRESS_OR_KEYNAME",
                 help="The operator you run under (default: yourself); the cap counts an operator's providers "
                      "together.")] = None,
             fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
             passphrase_file: PassphraseFile = None) -> None:
    """Register as a compute provider (or top up the bond), bonding at least market_provider_min_stake."""
    op = decode_address(_address(ctx, operator) or "") if operator else bytes(20)
    payload = p.REGISTER_PROVIDER_CODEC.encode(p.RegisterProvider(op, parse_units(bond)))
    _send(ctx, sender, p.REGISTER_PROVIDER, payload, fee, node, data_dir, passphrase_file, "providers",
          lambda a: {"address": a}, render.render_providers)


@app.command("offer")
def offer(ctx: typer.Context, sender: FromOpt, cpu: Cpu, memory: Mem, accelerator: Acc = "", accelerators: AccN = 0,
          region: Region = "",
          per_block: Annotated[str, typer.Option("--price-per-block", help="Units per lease block.")] = "0",
          per_ktokens: Annotated[str, typer.Option("--price-per-ktokens", help="Units per 1,000 tokens.")] = "0",
          fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
          passphrase_file: PassphraseFile = None) -> None:
    """Post (or replace) your capacity offer: what your machine has and what you ask."""
    payload = p.POST_OFFER_CODEC.encode(p.PostOffer(Resources(cpu, memory, accelerator, accelerators, region),
                                                    parse_units(per_block), parse_units(per_ktokens)))
    _send(ctx, sender, p.POST_OFFER, payload, fee, node, data_dir, passphrase_file, "providers",
          lambda a: {"address": a}, render.render_providers)


@app.command("withdraw-offer")
def withdraw_offer(ctx: typer.Context, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
                   data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Withdraw your offer; your leases go on, your open bids lose when their windows close."""
    _send(ctx, sender, p.WITHDRAW_OFFER, p.NO_ARGS_CODEC.encode(p.NoArgs()), fee, node, data_dir, passphrase_file,
          "providers", lambda a: {"address": a}, render.render_providers)


@app.command("retire")
def retire(ctx: typer.Context, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
           data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Take your market bond back (only without active leases or pending spot checks)."""
    def before(backend: Backend, address: str) -> None:
        prov = backend.market("providers", {"address": address})["providers"][0]
        if prov["active_leases"] or prov["pending_checks"]:
            raise LedgerError(errors.PROVIDER_HAS_LEASES, f"{prov['active_leases']} active leases")

    _send(ctx, sender, p.RETIRE_PROVIDER, p.NO_ARGS_CODEC.encode(p.NoArgs()), fee, node, data_dir, passphrase_file,
          "providers", lambda a: {"address": a}, render.render_providers, before)


@app.command("order")
def order(ctx: typer.Context, sender: FromOpt, cpu: Cpu, memory: Mem,
          max_price: Annotated[str, typer.Option("--max-price", help="Most units per block (or per 1k tokens).")],
          budget: Annotated[str | None, typer.Option(
              "--budget", help="Units to escrow (default: max price x duration for per-block orders).")] = None,
          kind: Annotated[str, typer.Option("--kind", help="train or serve.")] = "train",
          unit: Annotated[str, typer.Option("--unit", help="block, or ktokens (serve only).")] = "block",
          window: Annotated[int, typer.Option("--window", min=1, help="Bid window in blocks.")] = 2,
          duration: Annotated[int, typer.Option("--duration", min=1, help="Lease length in blocks.")] = 20,
          accelerator: Acc = "", accelerators: AccN = 0, region: Region = "",
          spec_hash: Annotated[str | None, typer.Option(
              "--spec-hash", help="What to run, 64 hex digits: the job spec blob's SHA-256 (train) or the adapter "
                                  "hash (serve).")] = None,
          spec_file: Annotated[Path | None, typer.Option(
              "--spec-file", help="A training job spec (factory.job.job_spec_blob), uploaded to the node's blob "
                                  "store; its hash becomes --spec-hash.")] = None,
          model: Annotated[str, typer.Option(
              "--model", help="Serve: the adapter version to serve (NAME@N, or NAME for its newest live version, "
                              "pinned when posted) or a registered base's name; checked on the ledger. Default: "
                              "the provider's base, named by --spec-hash.")] = "",
          fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
          passphrase_file: PassphraseFile = None) -> None:
    """Post an order: its budget goes into escrow and providers bid for it during the window."""
    if (spec_hash is not None and spec_file is not None) or (spec_hash is None and spec_file is None and not model):
        raise LedgerError(errors.BAD_ARGUMENT, "give --spec-hash or --spec-file (one of them), or --model to serve")
    blob = spec_file.read_bytes() if spec_file is not None else None
    what = hashlib.sha256(blob).hexdigest() if blob is not None else str(spec_hash or "00" * 32)
    kinds, units_ = {"train": Kind.TRAIN, "serve": Kind.SERVE}, {"block": p.Unit.BLOCK, "ktokens": p.Unit.KTOKENS}
    if kind not in kinds or unit not in units_:
        raise LedgerError(errors.BAD_ARGUMENT, "--kind train|serve, --unit block|ktokens")
    price = parse_units(max_price)
    escrow = parse_units(budget) if budget is not None else price * duration
    payload = p.PostOrder(kinds[kind], parse_hex32(what, errors.BAD_ARGUMENT),
                          Resources(cpu, memory, accelerator, accelerators, region), units_[unit], price, escrow,
                          window, duration, model)

    def upload(backend: Backend, address: str) -> None:
        if model:  # an unknown or retired model is refused here, before a fee (the ledger refuses it too)
            try:
                backend.ledger_base(model)
            except LedgerError as exc:
                if exc.code is not errors.BASE_MODEL_NOT_FOUND:
                    raise
                if backend.ledger_model(model).get("retired"):
                    raise LedgerError(errors.MODEL_RETIRED, model) from None
        if blob is not None:
            backend.put_blobs([blob])  # first: an order never names a spec a provider cannot fetch

    _send(ctx, sender, p.POST_ORDER, p.POST_ORDER_CODEC.encode(payload), fee, node, data_dir, passphrase_file,
          "orders", lambda a: {"status": "bidding"}, render.render_orders, upload)


@app.command("bid")
def bid(ctx: typer.Context, sender: FromOpt, order_id: IdArg,
        price: Annotated[str, typer.Argument(metavar="PRICE", help="Units per block (or per 1k tokens).")],
        fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
        passphrase_file: PassphraseFile = None) -> None:
    """Bid on an order during its window; the lowest valid bid the concentration cap allows wins."""
    micro = parse_units(price)

    def before(backend: Backend, address: str) -> None:
        o = _one(backend, "orders", order_id)
        if o["status"] != "bidding" or int(backend.status()["height"]) >= o["window_end"]:
            raise LedgerError(errors.ORDER_NOT_BIDDING, f"order {order_id} is {o['status']}, window end "
                                                        f"{o['window_end']}")
        if micro > o["max_price"]:
            raise LedgerError(errors.BID_ABOVE_MAX, f"{micro} > {o['max_price']}")
        if any(b["provider"] == address for b in o["bids"]):
            raise LedgerError(errors.DUPLICATE_BID, f"order {order_id}")
        backend.market("providers", {"address": address})  # not registered: provider_not_registered

    _send(ctx, sender, p.BID, p.BID_CODEC.encode(p.Bid(order_id, micro)), fee, node, data_dir, passphrase_file,
          "orders", lambda a: {"id": str(order_id)}, render.render_orders, before)


def _lease_party(role: str, lease_id: int) -> Callable[[Backend, str], None]:
    def before(backend: Backend, address: str) -> None:
        lease = _one(backend, "leases", lease_id)
        if lease[role] != address:
            raise LedgerError(errors.NOT_LEASE_PARTY, f"lease {lease_id}'s {role} is {lease[role]}")
        if lease["status"] != "active":
            raise LedgerError(errors.LEASE_NOT_ACTIVE, f"lease {lease_id} is {lease['status']}")
    return before


def _lease_write(ctx: typer.Context, sender: str, lease_id: int, role: str, tx_type: int, payload: bytes,
                 fee: str | None, node: str | None, data_dir: Path | None, passphrase_file: Path | None) -> None:
    _send(ctx, sender, tx_type, payload, fee, node, data_dir, passphrase_file, "leases",
          lambda a: {"id": str(lease_id)}, render.render_leases, _lease_party(role, lease_id))


@app.command("report")
def report(ctx: typer.Context, sender: FromOpt, lease_id: IdArg,
           digest: Annotated[str, typer.Option("--digest", help="Work digest: checkpoint hash or request-log hash.")],
           tokens: Annotated[int, typer.Option("--tokens", min=0, help="Tokens served since the last report.")] = 0,
           root: Annotated[str | None, typer.Option(
               "--root", help="Training: the Merkle root over the checkpoint boundaries (sends report_training; "
                              "needs --boundaries and --manifest).")] = None,
           boundaries: Annotated[int, typer.Option("--boundaries", min=0, help="Training: leaves under --root.")] = 0,
           manifest: Annotated[str | None, typer.Option("--manifest", help="Training: the manifest blob's hash.")
                               ] = None,
           fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
           passphrase_file: PassphraseFile = None) -> None:
    """Report a lease's work (its provider); pay accrues for the blocks (or tokens) it covers."""
    work = parse_hex32(digest, errors.BAD_ARGUMENT)
    if root is None:
        payload = p.REPORT_WORK_CODEC.encode(p.ReportWork(lease_id, work, tokens))
        _lease_write(ctx, sender, lease_id, "provider", p.REPORT_WORK, payload, fee, node, data_dir, passphrase_file)
        return
    if manifest is None or tokens:
        raise LedgerError(errors.BAD_ARGUMENT, "--root reports training: give --manifest (and no --tokens)")
    payload = p.REPORT_TRAINING_CODEC.encode(p.ReportTraining(
        lease_id, work, parse_hex32(root, errors.BAD_ARGUMENT), boundaries, parse_hex32(manifest, errors.BAD_ARGUMENT)))
    _lease_write(ctx, sender, lease_id, "provider", p.REPORT_TRAINING, payload, fee, node, data_dir, passphrase_file)


@app.command("withdraw")
def withdraw(ctx: typer.Context, sender: FromOpt, lease_id: IdArg, fee: FeeOpt = None, node: NodeOpt = None,
             data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Take what a lease owes you for reported work (its provider)."""
    _lease_write(ctx, sender, lease_id, "provider", p.WITHDRAW_PAY, p.LEASE_REF_CODEC.encode(p.LeaseRef(lease_id)),
                 fee, node, data_dir, passphrase_file)


@app.command("close")
def close(ctx: typer.Context, sender: FromOpt, lease_id: IdArg, fee: FeeOpt = None, node: NodeOpt = None,
          data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Close a lease early (its consumer): reported work is paid, the rest of the escrow comes back."""
    _lease_write(ctx, sender, lease_id, "consumer", p.CLOSE_LEASE, p.LEASE_REF_CODEC.encode(p.LeaseRef(lease_id)),
                 fee, node, data_dir, passphrase_file)


@app.command("cancel")
def cancel(ctx: typer.Context, sender: FromOpt, order_id: IdArg, fee: FeeOpt = None, node: NodeOpt = None,
           data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Cancel an order still taking bids (its consumer); the escrow comes back."""
    _send(ctx, sender, p.CANCEL_ORDER, p.ORDER_REF_CODEC.encode(p.OrderRef(order_id)), fee, node, data_dir,
          passphrase_file, "orders", lambda a: {"id": str(order_id)}, render.render_orders)


@app.command("check-result")
def check_result(ctx: typer.Context, sender: FromOpt, check_id: IdArg,
                 passed: Annotated[bool, typer.Option("--pass/--fail", help="Did the re-run match the report?")],
                 digest: Annotated[str, typer.Option("--digest", help="Your re-run's result hash.")] = "00" * 32,
                 fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
                 passphrase_file: PassphraseFile = None) -> None:
    """Answer a spot check you were drawn for (`ailedger market checks --verifier YOU --status pending`)."""
    def before(backend: Backend, address: str) -> None:
        pending = backend.market("checks", {"status": "pending"})["checks"]
        mine = [c for c in pending if c["id"] == check_id]
        if not mine:
            raise LedgerError(errors.CHECK_NOT_FOUND, f"check {check_id} is not pending")
        if mine[0]["verifier"] != address:
            raise LedgerError(errors.NOT_CHECK_VERIFIER, f"check {check_id} was drawn for {mine[0]['verifier']}")

    answer = parse_hex32(digest, errors.BAD_ARGUMENT)
    payload = p.CHECK_RESULT_CODEC.encode(p.CheckResult(check_id, int(passed), answer))
    _send(ctx, sender, p.CHECK_RESULT, payload, fee, node, data_dir, passphrase_file, "checks",
          lambda a: {"verifier": a}, render.render_checks, before)
