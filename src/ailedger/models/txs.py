"""The handlers of the model transactions (their wire format is in payloads.py).

Each handler checks everything before its first write. No amount moves here: publishing is paid
by the transaction fee alone, and a price is what serving will charge per 1,000 tokens later.
"""

from __future__ import annotations

from ailedger.chain import params
from ailedger.chain.module import BlockContext
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet import views as datanets
from ailedger.models.payloads import PublishAdapter, PublishAttribution, RegisterBase, Retire, SetPrice
from ailedger.models.state import (
    ADAPTER_COUNT_KEY,
    BASE,
    BASE_COUNT_KEY,
    HEAD,
    Adapter,
    BaseModel,
    Head,
    adapter_index_key,
    append_index,
    base_index_key,
    base_key,
    find_adapter_hash,
    get_adapter,
    get_base,
    get_count,
    get_head,
    head_key,
    name_ok,
    put_adapter,
    put_adapter_hash,
    weights_key,
)

ZERO = bytes(32)


def check_name(name: str) -> None:
    if not name_ok(name):
        raise LedgerError(errors.BAD_MODEL_NAME, repr(name))


def _bad(detail: str) -> LedgerError:
    return LedgerError(errors.BAD_MODEL_PARAM, detail)


def _nonzero(value: bytes, what: str) -> None:
    if value == ZERO:
        raise _bad(f"{what} is all zeros; send the sha256 of the file")


def check_price(state: Journal, price: int) -> None:
    lo = params.get(state, "models_min_price_per_1k_tokens")
    hi = params.get(state, "models_max_price_per_1k_tokens")
    if not lo <= price <= hi:
        raise _bad(f"price_per_1k_tokens {price} outside models_min/max_price_per_1k_tokens {lo}..{hi}")


def apply_register_base(state: Journal, ctx: BlockContext, tx: Tx, p: RegisterBase) -> None:
    check_name(p.name)
    _nonzero(p.weights_hash, "weights_hash")
    if p.params_count == 0 or p.context_length == 0:
        raise _bad("params_count and context_length must be positive")
    if get_base(state, p.name) is not None:
        raise LedgerError(errors.BASE_MODEL_EXISTS, f"name {p.name!r}")
    other = state.get(weights_key(p.weights_hash))
    if other is not None:
        raise LedgerError(errors.BASE_MODEL_EXISTS, f"these weights are registered as {other.decode()!r}")
    base = BaseModel(p.name, p.weights_hash, p.config_hash, p.architecture, p.params_count, p.context_length,
                     p.licence, tx.sender_address, ctx.height)
    state.set(base_key(p.name), BASE.encode(base))
    state.set(weights_key(p.weights_hash), p.name.encode())
    append_index(state, BASE_COUNT_KEY, base_index_key(get_count(state, BASE_COUNT_KEY)), p.name)


def apply_publish_adapter(state: Journal, ctx: BlockContext, tx: Tx, p: PublishAdapter) -> None:
    check_name(p.name)
    owner = tx.sender_address
    head = get_head(state, p.name)
    if head is not None and head.owner != owner:
        raise LedgerError(errors.NOT_MODEL_OWNER, f"{p.name!r} belongs to another account")
    base = get_base(state, p.base)
    if base is None:
        raise LedgerError(errors.BASE_MODEL_NOT_FOUND, repr(p.base))
    if datanets.get_datanet(state, p.datanet) is None:
        raise LedgerError(errors.DATANET_NOT_FOUND, repr(p.datanet))
    snapshot = datanets.get_version(state, p.datanet, p.datanet_version)
    if snapshot is None:
        raise LedgerError(errors.VERSION_NOT_FOUND, f"{p.datanet} has no version {p.datanet_version}")
    _nonzero(p.adapter_hash, "adapter_hash")
    max_rank = params.get(state, "models_max_rank")
    if not 1 <= p.rank <= max_rank:
        raise _bad(f"rank {p.rank} outside 1..models_max_rank {max_rank}")
    check_price(state, p.price_per_1k_tokens)
    taken = find_adapter_hash(state, p.adapter_hash)
    if taken is not None:
        raise LedgerError(errors.ADAPTER_EXISTS, f"published as {taken[0]}@{taken[1]}")
    if head is None:
        head = Head(owner, 0)
        append_index(state, ADAPTER_COUNT_KEY, adapter_index_key(get_count(state, ADAPTER_COUNT_KEY)), p.name)
    head.versions += 1
    state.set(head_key(p.name), HEAD.encode(head))
    put_adapter(state, Adapter(p.name, head.versions, owner, base.name, base.weights_hash, p.adapter_hash,
                               p.datanet, p.datanet_version, snapshot.root, snapshot.count, p.hyperparams_hash,
                               p.card_hash, p.rank, p.price_per_1k_tokens, p.job_id, ctx.height))
    put_adapter_hash(state, p.adapter_hash, p.name, head.versions)


def owned_version(state: Journal, tx: Tx, name: str, version: int) -> Adapter:
    """The live version `name@version`, checked to belong to the sender."""
    head = get_head(state, name)
    if head is None:
        raise LedgerError(errors.MODEL_NOT_FOUND, repr(name))
    if head.owner != tx.sender_address:
        raise LedgerError(errors.NOT_MODEL_OWNER, repr(name))
    adapter = get_adapter(state, name, version)
    if adapter is None:
        raise LedgerError(errors.MODEL_VERSION_NOT_FOUND, f"{name}@{version}")
    if adapter.retired:
        raise LedgerError(errors.MODEL_RETIRED, adapter.ref)
    return adapter


def apply_set_price(state: Journal, ctx: BlockContext, tx: Tx, p: SetPrice) -> None:
    adapter = owned_version(state, tx, p.name, p.version)
    check_price(state, p.price_per_1k_tokens)
    adapter.price_per_1k_tokens = p.price_per_1k_tokens
    put_adapter(state, adapter)


def apply_retire(state: Journal, ctx: BlockContext, tx: Tx, p: Retire) -> None:
    adapter = owned_version(state, tx, p.name, p.version)
    adapter.retired, adapter.retired_height = 1, ctx.height
    put_adapter(state, adapter)


def apply_publish_attribution(state: Journal, ctx: BlockContext, tx: Tx, p: PublishAttribution) -> None:
    """Record (or replace) the root of a live version's attribution bundle.

    Why replacing is allowed: an owner rebuilds the bundle when the index must change (a record
    retracted from the snapshot, a corrupted file); each answer's record names the root it was
    computed against, so receipts stored before stay checkable against their own root.
    """
    adapter = owned_version(state, tx, p.name, p.version)
    if p.root == ZERO:
        raise _bad("root is all zeros; send the root `ailedger attribution index` printed")
    adapter.attribution_root, adapter.attribution_height = p.root, ctx.height
    put_adapter(state, adapter)
