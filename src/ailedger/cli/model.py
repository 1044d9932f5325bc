"""`ailedger model`: register base models, publish LoRA adapters with their provenance, read the registry.

Hashing stays in `factory/` (`tensors.py` for the adapter's tensors, `basemodel.describe` for a base
directory); these commands read an adapter directory, check its model card against what the ledger
says (base weights, Datanet snapshot) before anything is sent, upload the card and the
hyper-parameters as blobs (so anyone can fetch them by the hashes the ledger records), and sign the
transaction. Reads go through `/v1/ledger/models…` (or the same functions embedded).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.cli import model_render as render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.model_train import train_cmd
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import FeeOpt, FromOpt, send_and_show, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32
from ailedger.core.keys import KeyPair
from ailedger.models import payloads as p
from ailedger.models.state import name_ok

app = typer.Typer(help="Model registry: base models and published LoRA adapters with their provenance.",
                  no_args_is_help=True)

# The files `factory.train` writes into an adapter directory (named here so that publishing needs no torch).
ADAPTER_FILE, ADAPTER_CONFIG, CARD_FILE = "adapter_model.safetensors", "adapter_config.json", "model_card.json"

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Model name ([a-z0-9.-], 1-64 characters).")]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", help="Version number (see `model show NAME`).",
                                           min=1)]


# -- reading an adapter directory --------------------------------------------------------------------

def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class AdapterDir:
    """What publishing needs from an adapter directory: hashes, rank, and the two blobs."""

    adapter_hash: str
    rank: int
    card: dict[str, Any]
    card_blob: bytes
    hyperparams_blob: bytes

    @property
    def card_hash(self) -> str:
        return hashlib.sha256(self.card_blob).hexdigest()

    @property
    def hyperparams_hash(self) -> str:
        return hashlib.sha256(self.hyperparams_blob).hexdigest()


def read_adapter_dir(directory: Path) -> AdapterDir:
    """Hash the adapter's tensors and read its config and card; the card must agree with the tensors."""
    from ailedger.factory.tensors import read_adapter_json, read_header, tensors_hash

    weights = directory / ADAPTER_FILE
    if not weights.is_file():
        raise LedgerError(errors.ADAPTER_INVALID, f"{weights} is missing")
    digest = tensors_hash(read_header(weights))
    _, config = read_adapter_json(directory / ADAPTER_CONFIG)
    card_blob, card = read_adapter_json(directory / CARD_FILE)
    rank, hyper = config.get("r"), card.get("hyperparams")
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise LedgerError(errors.ADAPTER_INVALID, f"{directory / ADAPTER_CONFIG} has no integer rank 'r'")
    if not isinstance(hyper, dict):
        raise LedgerError(errors.ADAPTER_INVALID, f"{directory / CARD_FILE} has no 'hyperparams' object")
    if card.get("adapter_hash", digest) != digest:
        raise LedgerError(errors.WEIGHTS_CORRUPT, f"{weights} hashes to {digest}, its card says {card['adapter_hash']}")
    found = AdapterDir(digest, rank, card, card_blob, canonical(hyper))
    if card.get("hyperparams_hash", found.hyperparams_hash) != found.hyperparams_hash:
        raise LedgerError(errors.ADAPTER_INVALID, f"{directory / CARD_FILE}: hyperparams do not hash to its "
                                                  "hyperparams_hash")
    return found


def _card_field(card: dict[str, Any], *path: str) -> Any:
    node: Any = card
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def check_provenance(backend: Backend, adapter: AdapterDir, base: str, datanet: str, version: int) -> dict[str, Any]:
    """The card must name the base weights and the Datanet snapshot it is published against; returns the version."""
    base_doc = backend.ledger_base(base)
    card_base = _card_field(adapter.card, "base", "weights_hash")
    if card_base is not None and card_base != base_doc["weights_hash"]:
        raise LedgerError(errors.CARD_MISMATCH, f"the card names base weights {card_base}, {base} has "
                                                f"{base_doc['weights_hash']}")
    snap = backend.datanet_version(datanet, version, 0, 1)
    card_dn = _card_field(adapter.card, "datanet")
    if isinstance(card_dn, dict):
        said = (card_dn.get("name", datanet), card_dn.get("version", version), card_dn.get("root", snap["root"]))
        if said != (datanet, version, snap["root"]):
            raise LedgerError(errors.CARD_MISMATCH, f"the card names Datanet {said[0]} version {said[1]} root "
                                                    f"{said[2]}, not {datanet} version {version} root {snap['root']}")
    return snap


def _check_owner(backend: Backend, name: str, address: str) -> None:
    try:
        owner = backend.ledger_model(name)["owner"]
    except LedgerError as exc:
        if exc.code is errors.MODEL_NOT_FOUND:
            return
        raise
    if owner != address:
        raise LedgerError(errors.NOT_MODEL_OWNER, f"{name!r} belongs to {owner}")


def _hash_opt(text: str | None, option: str) -> bytes | None:
    if text is None:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32 or len(text) != 64:
        raise LedgerError(errors.BAD_ARGUMENT, f"{option} {text!r}: 64 hex digits")
    return raw


# -- commands ------------------------------------------------------------------------------------------

app.command("train")(train_cmd)  # in model_train.py: the training job (post, claim, train, deliver, accept)


@app.command("register-base")
def register_base(ctx: typer.Context, name: NameArg, sender: FromOpt,
                  model_dir: Annotated[Path | None, typer.Option(
                      "--dir", help="A Hugging Face causal-LM directory (config.json + safetensors); its hashes "
                      "are computed by factory.basemodel.describe.", file_okay=False)] = None,
                  weights_hash: Annotated[str | None, typer.Option(
                      "--weights-hash", help="Instead of --dir: the tensors hash (64 hex).")] = None,
                  config_hash: Annotated[str | None, typer.Option(
                      "--config-hash", help="Instead of --dir: the config hash (64 hex).")] = None,
                  arch: Annotated[str | None, typer.Option("--arch", help="Architecture, e.g. LlamaForCausalLM.")]
                  = None,
                  params_count: Annotated[int | None, typer.Option("--params", help="Number of parameters.", min=1)]
                  = None,
                  context: Annotated[int | None, typer.Option("--context", help="Context length in tokens.", min=1)]
                  = None,
                  licence: Annotated[str, typer.Option("--licence", help="Licence of the weights.")] = "unspecified",
                  fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
                  passphrase_file: PassphraseFile = None) -> None:
    """Register a base model by the hash of its weights (explicit options override what --dir gives)."""
    s = settings(ctx)
    found: dict[str, Any] = {}
    if model_dir is not None:
        try:
            from ailedger.factory.basemodel import describe
        except ImportError as exc:
            raise LedgerError(errors.BASE_HASHES_NEEDED, f"factory.basemodel is not importable: {exc}") from exc
        found = describe(model_dir, name).to_json()
    given: dict[str, Any] = {"weights_hash": weights_hash, "config_hash": config_hash, "architecture": arch,
                             "params_count": params_count, "context_length": context}
    info: dict[str, Any] = {k: v if v is not None else found.get(k) for k, v in given.items()}
    missing = [k for k, v in info.items() if v in (None, 0, "")]
    if missing:
        raise LedgerError(errors.BASE_HASHES_NEEDED, "missing " + ", ".join(missing))
    payload = register_base_payload(name, info, licence)
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        result = send_ok(backend, key, p.REGISTER_BASE, payload, fee)
        doc = backend.ledger_base(name)
    emit(s, {**doc, "tx": result}, lambda c: render.render_base(c, doc))


def register_base_payload(name: str, info: dict[str, Any], licence: str) -> bytes:
    """The register_base payload from `factory.basemodel.describe(...).to_json()`-shaped hashes and facts."""
    wh, ch = _hash_opt(str(info["weights_hash"]), "--weights-hash"), _hash_opt(str(info["config_hash"]),
                                                                              "--config-hash")
    assert wh is not None and ch is not None
    return p.REGISTER_BASE_CODEC.encode(p.RegisterBase(name, wh, ch, str(info["architecture"]),
                                                       int(info["params_count"]), int(info["context_length"]),
                                                       licence))


@app.command("publish")
def publish(ctx: typer.Context, name: NameArg, sender: FromOpt,
            base: Annotated[str, typer.Option("--base", help="Registered base model name.")],
            adapter_dir: Annotated[Path, typer.Option(
                "--adapter-dir", help=f"Directory with {ADAPTER_FILE}, {ADAPTER_CONFIG} and {CARD_FILE}.",
                file_okay=False)],
            datanet: Annotated[str, typer.Option("--datanet", help="Datanet the adapter was trained on.")],
            version: Annotated[int, typer.Option("--version", help="The Datanet version (snapshot) it was trained "
                                                                   "on.", min=1)],
            price: Annotated[str, typer.Option("--price", help="Price per 1,000 tokens, in units (e.g. 0.003).")],
            job: Annotated[str | None, typer.Option("--job", help="The training job's id (64 hex).")] = None,
            fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
            passphrase_file: PassphraseFile = None) -> None:
    """Publish an adapter with its provenance; the first publish of a name makes the sender its owner."""
    s = settings(ctx)
    amount = parse_units(price)
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        doc = publish_adapter(backend, key, name, base, adapter_dir, datanet, version, amount, job, fee)
    emit(s, doc, lambda c: render.render_model(c, doc))


def publish_adapter(backend: Backend, key: KeyPair, name: str, base: str, adapter_dir: Path, datanet: str,
                    version: int, price: int, job: str | None = None, fee: str | None = None) -> dict[str, Any]:
    """Check the adapter directory's provenance against the ledger, store its card, publish it (price in
    micro-units per 1,000 tokens); returns the new version as the ledger shows it, the transaction under "tx"."""
    from ailedger.market.service import parse_job_id

    if not name_ok(name):
        raise LedgerError(errors.BAD_MODEL_NAME, repr(name))
    job_id = parse_job_id(job) if job is not None else bytes(32)
    adapter = read_adapter_dir(adapter_dir)
    check_provenance(backend, adapter, base, datanet, version)
    _check_owner(backend, name, key.address_text)
    if job is not None:
        backend.job(job)  # job_not_found before anything is stored
    payload = p.PUBLISH_ADAPTER_CODEC.encode(p.PublishAdapter(
        name, base, bytes.fromhex(adapter.adapter_hash), datanet, version, bytes.fromhex(adapter.hyperparams_hash),
        bytes.fromhex(adapter.card_hash), adapter.rank, price, job_id))
    backend.put_blobs([adapter.card_blob, adapter.hyperparams_blob])  # first: never a model without its card
    result = send_ok(backend, key, p.PUBLISH_ADAPTER, payload, fee)
    return {**backend.ledger_model(f"{name}@sha256:{adapter.adapter_hash}"), "tx": result}


@app.command("show")
def show(ctx: typer.Context,
         ref: Annotated[str, typer.Argument(metavar="REF", help="NAME, NAME@VERSION or NAME@sha256:HEX.")],
         node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One model version with its provenance (base weights, Datanet snapshot, hashes) and the name's versions."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.ledger_model(ref)
    emit(s, doc, lambda c: render.render_model(c, doc))


@app.command("list")
def list_cmd(ctx: typer.Context,
             bases: Annotated[bool, typer.Option("--bases", help="List the registered base models instead.")] = False,
             live: Annotated[bool, typer.Option("--live", help="Leave retired versions out.")] = False,
             node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every published adapter version (or, with --bases, every base model)."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.ledger_bases() if bases else backend.ledger_models(include_retired=not live)
    emit(s, doc, lambda c: render.render_bases(c, doc) if bases else render.render_models(c, doc))


def _owner_tx(ctx: typer.Context, sender: str, tx_type: int, payload: bytes, ref: str, fee: str | None,
              node: str | None, data_dir: Path | None, passphrase_file: Path | None) -> None:
    send_and_show(ctx, sender, tx_type, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.ledger_model(ref), render.render_model)


@app.command("set-price")
def set_price(ctx: typer.Context, name: NameArg, version: VersionArg,
              price: Annotated[str, typer.Argument(metavar="PRICE", help="New price per 1,000 tokens, in units.")],
              sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
              passphrase_file: PassphraseFile = None) -> None:
    """Reprice a version (owner only; not once retired)."""
    payload = p.SET_PRICE_CODEC.encode(p.SetPrice(name, version, parse_units(price)))
    _owner_tx(ctx, sender, p.SET_PRICE, payload, f"{name}@{version}", fee, node, data_dir, passphrase_file)


@app.command("retire")
def retire(ctx: typer.Context, name: NameArg, version: VersionArg, sender: FromOpt, fee: FeeOpt = None,
           node: NodeOpt = None, data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Retire a version (owner only): it stays on the ledger, but references to it no longer resolve for serving."""
    payload = p.RETIRE_CODEC.encode(p.Retire(name, version))
    _owner_tx(ctx, sender, p.RETIRE, payload, f"{name}@{version}", fee, node, data_dir, passphrase_file)


def _check_attribution_target(backend: Backend, name: str, version: int, address: str) -> None:
    """Refuse before a fee is spent what the ledger would refuse: unknown, foreign or retired versions."""
    doc = backend.ledger_model(f"{name}@{version}")
    if doc["owner"] != address:
        raise LedgerError(errors.NOT_MODEL_OWNER, f"{name!r} belongs to {doc['owner']}")
    if doc["retired"]:
        raise LedgerError(errors.MODEL_RETIRED, f"{name}@{version}")


def attribution_payload(name: str, version: int, root: bytes) -> bytes:
    if not name_ok(name):
        raise LedgerError(errors.BAD_MODEL_NAME, repr(name))
    if not any(root):
        raise LedgerError(errors.BAD_MODEL_PARAM, "root is all zeros; give the root `ailedger attribution index` "
                                                  "printed")
    return p.PUBLISH_ATTRIBUTION_CODEC.encode(p.PublishAttribution(name, version, root))


def publish_attribution(backend: Backend, key: KeyPair, name: str, version: int, root: bytes,
                        fee: str | None = None) -> dict[str, Any]:
    """Send publish_attribution for `name@version` from the owner's `key` and wait for it.

    Returns the version as the ledger now shows it (`attribution_root` set) with the transaction under
    "tx". `ailedger attribution index --publish` calls this after building the bundle.
    """
    payload = attribution_payload(name, version, root)
    _check_attribution_target(backend, name, version, key.address_text)
    result = send_ok(backend, key, p.PUBLISH_ATTRIBUTION, payload, fee)
    return {**backend.ledger_model(f"{name}@{version}"), "tx": result}


@app.command("publish-attribution")
def publish_attribution_cmd(ctx: typer.Context, name: NameArg, version: VersionArg,
                            root: Annotated[str, typer.Argument(metavar="ROOT", help="The attribution bundle's root "
                                                                "(64 hex), as `ailedger attribution index` "
                                                                "printed it.")],
                            sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
                            passphrase_file: PassphraseFile = None) -> None:
    """Publish (or replace) the root of a version's attribution bundle (owner only; not once retired)."""
    payload = attribution_payload(name, version, parse_hex32(root, errors.BAD_MODEL_PARAM))
    address = key_dir(settings(ctx)).info(sender).address
    send_and_show(ctx, sender, p.PUBLISH_ATTRIBUTION, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.ledger_model(f"{name}@{version}"), render.render_model,
                  before=lambda b: _check_attribution_target(b, name, version, address))
