"""The handlers of the market's transactions 0x0405..0x040F (wire format in payloads.py, rules in docs/market.md).

Each handler checks everything before its first write, so a refused transaction leaves state as it was.
Value only moves between an account's balance, a provider's bond and an order's escrow, in whole
amounts (leases.py), so the total supply is conserved (tests/test_market_props.py).
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.module import BlockContext
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.market import checks, leases
from ailedger.market.book import (
    CheckStatus,
    Lease,
    LeaseStatus,
    Order,
    OrderStatus,
    Provider,
    TrainRoot,
    add_bid,
    add_provider,
    bid_key,
    bidders,
    enqueue,
    get_check,
    get_lease,
    get_order,
    get_provider,
    must_order,
    next_id,
    put_lease,
    put_order,
    put_provider,
    put_train_root,
    take_bids,
    train_root,
)
from ailedger.market.payloads import (
    Bid,
    CheckResult,
    LeaseRef,
    NoArgs,
    OrderRef,
    PostOffer,
    PostOrder,
    RegisterProvider,
    ReportTraining,
    ReportWork,
    Unit,
)
from ailedger.market.resources import check as check_resources
from ailedger.market.resources import covers
from ailedger.market.state import Kind
from ailedger.models import views as models


def _provider(state: Journal, address: bytes) -> Provider:
    p = get_provider(state, address)
    if p is None:
        raise LedgerError(errors.PROVIDER_NOT_REGISTERED, "register with register_provider first")
    return p


def _bonded(state: Journal, bond: int) -> None:
    floor = params.get(state, "market_provider_min_stake")
    if bond < floor:
        raise LedgerError(errors.PROVIDER_BOND_TOO_LOW, f"bond {bond} < market_provider_min_stake {floor}")


def _order(state: Journal, oid: int) -> Order:
    o = get_order(state, oid)
    if o is None:
        raise LedgerError(errors.ORDER_NOT_FOUND, f"order {oid}")
    return o


def _lease(state: Journal, lid: int, party: bytes, sender: bytes) -> Lease:
    lease = get_lease(state, lid)
    if lease is None:
        raise LedgerError(errors.LEASE_NOT_FOUND, f"lease {lid}")
    if sender != party:
        raise LedgerError(errors.NOT_LEASE_PARTY, f"lease {lid}")
    if lease.status != LeaseStatus.ACTIVE:
        raise LedgerError(errors.LEASE_NOT_ACTIVE, f"lease {lid}")
    return lease


def apply_register_provider(state: Journal, ctx: BlockContext, tx: Tx, p: RegisterProvider) -> None:
    accounts.require_positive(p.bond)
    sender = tx.sender_address
    operator = p.operator if any(p.operator) else sender
    prov = get_provider(state, sender)
    if prov is not None and prov.operator != operator and (prov.active_leases or prov.pending_checks):
        raise LedgerError(errors.PROVIDER_HAS_LEASES, "the operator can change only without active leases")
    bond = (prov.bond if prov else 0) + p.bond
    _bonded(state, bond)
    accounts.debit(state, sender, p.bond)
    if prov is None:
        add_provider(state, Provider(sender, operator, bond, ctx.height))
    else:
        prov.operator, prov.bond = operator, bond
        put_provider(state, prov)


def apply_post_offer(state: Journal, ctx: BlockContext, tx: Tx, p: PostOffer) -> None:
    prov = _provider(state, tx.sender_address)
    check_resources(p.resources, errors.MARKET_BAD_OFFER)
    if not p.price_per_block and not p.price_per_ktokens:
        raise LedgerError(errors.MARKET_BAD_OFFER, "give a price per block, per 1,000 tokens, or both")
    prov.has_offer, prov.offer = 1, p.resources
    prov.price_per_block, prov.price_per_ktokens = p.price_per_block, p.price_per_ktokens
    put_provider(state, prov)


def apply_withdraw_offer(state: Journal, ctx: BlockContext, tx: Tx, p: NoArgs) -> None:
    prov = _provider(state, tx.sender_address)
    prov.has_offer = 0
    put_provider(state, prov)


def apply_retire_provider(state: Journal, ctx: BlockContext, tx: Tx, p: NoArgs) -> None:
    prov = _provider(state, tx.sender_address)
    if prov.active_leases or prov.pending_checks:
        raise LedgerError(errors.PROVIDER_HAS_LEASES,
                          f"{prov.active_leases} active leases, {prov.pending_checks} pending checks")
    accounts.credit(state, prov.address, prov.bond)
    prov.bond, prov.has_offer = 0, 0
    put_provider(state, prov)


def _served_model(state: Journal, p: PostOrder) -> tuple[bytes, str]:
    """A serve order's model: the registry's exact version (or base) and its hash, or a coded error.

    `NAME@N`, `NAME@sha256:HEX` and `NAME` (its highest live version, pinned now) name an adapter version,
    which must exist and not be retired (model_not_found, model_version_not_found, model_retired,
    bad_model_ref); a registered base's name names the base alone. The order records the exact `NAME@N` and
    the weights' hash (the adapter's, or the base's); a spec_hash sent with it must be that hash or zeros.
    """
    if p.kind != Kind.SERVE:
        raise LedgerError(errors.MARKET_BAD_ORDER, "only serve orders name a model")
    base = models.get_base(state, p.model) if "@" not in p.model else None
    if base is not None:
        ref, weights = base.name, base.weights_hash
    else:
        adapter = models.resolve(state, p.model)
        ref, weights = adapter.ref, adapter.adapter_hash
    if any(p.spec_hash) and p.spec_hash != weights:
        raise LedgerError(errors.MARKET_BAD_ORDER, f"spec_hash {p.spec_hash.hex()} is not the hash of {ref} "
                                                   f"({weights.hex()}); send zeros or that hash")
    return weights, ref


def apply_post_order(state: Journal, ctx: BlockContext, tx: Tx, p: PostOrder) -> None:
    def bad(detail: str) -> LedgerError:
        return LedgerError(errors.MARKET_BAD_ORDER, detail)

    if p.kind not in (Kind.TRAIN, Kind.SERVE):
        raise bad(f"kind {p.kind}; 1 train, 2 serve")
    spec_hash, model = p.spec_hash, p.model
    if model:
        spec_hash, model = _served_model(state, p)
    if not any(spec_hash):
        raise bad("spec_hash is all zeros; send the job spec's or the adapter's hash")
    check_resources(p.needs, errors.MARKET_BAD_ORDER)
    if p.unit not in (Unit.BLOCK, Unit.KTOKENS) or (p.kind == Kind.TRAIN and p.unit != Unit.BLOCK):
        raise bad(f"unit {p.unit}; 1 per block, 2 per 1,000 tokens (serving only)")
    if not p.max_price:
        raise bad("max_price must be at least 1")
    lo, hi = params.get(state, "market_min_window_blocks"), params.get(state, "market_max_window_blocks")
    if not lo <= p.window_blocks <= hi:
        raise bad(f"window_blocks {p.window_blocks} outside market_min/max_window_blocks {lo}..{hi}")
    hi = params.get(state, "market_max_duration_blocks")
    if not 1 <= p.duration_blocks <= hi:
        raise bad(f"duration_blocks {p.duration_blocks} outside 1..market_max_duration_blocks {hi}")
    accounts.require_positive(p.budget)
    if p.unit == Unit.BLOCK and p.budget < p.max_price * p.duration_blocks:
        raise LedgerError(errors.ESCROW_INSUFFICIENT,
                          f"budget {p.budget} < max_price {p.max_price} x duration {p.duration_blocks}")
    accounts.debit(state, tx.sender_address, p.budget)
    oid = next_id(state, b"mkt/on")
    put_order(state, Order(oid, tx.sender_address, p.kind, spec_hash, p.needs, p.unit, p.max_price, p.budget,
                           p.window_blocks, ctx.height + p.window_blocks, p.duration_blocks, OrderStatus.BIDDING,
                           ctx.height, model=model))
    enqueue(state, b"w", ctx.height + p.window_blocks, oid)


def apply_bid(state: Journal, ctx: BlockContext, tx: Tx, p: Bid) -> None:
    order = _order(state, p.order_id)
    if order.status != OrderStatus.BIDDING or ctx.height > order.window_end:
        raise LedgerError(errors.ORDER_NOT_BIDDING, f"order {order.id}, window ended at {order.window_end}")
    sender = tx.sender_address
    if sender == order.consumer:
        raise LedgerError(errors.OWN_ORDER)
    prov = _provider(state, sender)
    _bonded(state, prov.bond)
    if not prov.has_offer or not covers(prov.offer, order.needs):
        raise LedgerError(errors.OFFER_DOES_NOT_COVER, f"order {order.id} needs {order.needs.to_json()}")
    if p.price > order.max_price:
        raise LedgerError(errors.BID_ABOVE_MAX, f"{p.price} > max_price {order.max_price}")
    name = "market_cost_floor_per_block" if order.unit == Unit.BLOCK else "market_cost_floor_per_ktokens"
    floor = params.get(state, name)
    if p.price < max(floor, 1):
        raise LedgerError(errors.BID_BELOW_FLOOR, f"{p.price} < {name} {floor}")
    if order.unit == Unit.BLOCK and p.price * order.duration > order.escrow:
        raise LedgerError(errors.ESCROW_INSUFFICIENT,
                          f"price {p.price} x {order.duration} blocks > escrow {order.escrow}")
    if state.get(bid_key(order.id, sender)) is not None:
        raise LedgerError(errors.DUPLICATE_BID, f"order {order.id}")
    most = params.get(state, "market_max_bids_per_order")
    if len(bidders(state, order.id)) >= most:  # bounds the work of the window's close in end_block
        raise LedgerError(errors.ORDER_BIDS_FULL, f"order {order.id} holds {most} bids")
    add_bid(state, order.id, sender, p.price)


def apply_report_work(state: Journal, ctx: BlockContext, tx: Tx, p: ReportWork) -> None:
    lease0 = get_lease(state, p.lease_id)
    lease = _lease(state, p.lease_id, lease0.provider if lease0 else b"", tx.sender_address)
    if not any(p.digest):
        raise LedgerError(errors.MARKET_BAD_REPORT, "digest is all zeros")
    if lease.unit == Unit.BLOCK and p.tokens:  # a per-token lease may report 0: a period without requests
        raise LedgerError(errors.MARKET_BAD_REPORT, f"tokens {p.tokens} on a per-block lease")
    order = must_order(state, lease.order)
    tokens = lease.tokens + p.tokens
    if lease.unit == Unit.KTOKENS and tokens * lease.price // 1_000 - lease.paid > order.escrow:
        raise LedgerError(errors.ESCROW_INSUFFICIENT,
                          f"{tokens} tokens at {lease.price} per 1,000 exceed the escrow {order.escrow}")
    lease.tokens, lease.last_report, lease.digest, lease.reports = tokens, ctx.height, p.digest, lease.reports + 1
    put_lease(state, lease)
    enqueue(state, b"r", ctx.height, lease.id)
    timeout = ctx.height + params.get(state, "market_report_timeout_blocks")
    if timeout < lease.end:
        enqueue(state, b"t", timeout, lease.id)


def apply_report_training(state: Journal, ctx: BlockContext, tx: Tx, p: ReportTraining) -> None:
    """report_work for a training lease, plus the Merkle root over its checkpoint boundaries that a spot check
    proves the re-run segments against (docs/market.md, "Training spot checks")."""
    lease0 = get_lease(state, p.lease_id)
    lease = _lease(state, p.lease_id, lease0.provider if lease0 else b"", tx.sender_address)
    if must_order(state, lease.order).kind != Kind.TRAIN:
        raise LedgerError(errors.MARKET_BAD_REPORT, f"lease {lease.id} is not a training lease: send report_work")
    if not any(p.root) or not any(p.manifest) or p.boundaries < 1:
        raise LedgerError(errors.MARKET_BAD_REPORT, "a training report names a manifest and a root over at least one "
                                                    "boundary (both non-zero)")
    committed = TrainRoot(p.root, p.boundaries, p.manifest)
    known = train_root(state, lease.id, p.digest)
    if known is not None and known != committed:
        raise LedgerError(errors.MARKET_BAD_REPORT, "this digest was reported with another root or manifest")
    apply_report_work(state, ctx, tx, ReportWork(p.lease_id, p.digest, 0))  # checks all before its first write
    put_train_root(state, lease.id, p.digest, committed)


def apply_withdraw_pay(state: Journal, ctx: BlockContext, tx: Tx, p: LeaseRef) -> None:
    lease0 = get_lease(state, p.lease_id)
    lease = _lease(state, p.lease_id, lease0.provider if lease0 else b"", tx.sender_address)
    order = must_order(state, lease.order)
    leases.pay_out(state, lease, order)
    put_lease(state, lease)
    put_order(state, order)


def apply_close_lease(state: Journal, ctx: BlockContext, tx: Tx, p: LeaseRef) -> None:
    lease0 = get_lease(state, p.lease_id)
    lease = _lease(state, p.lease_id, lease0.consumer if lease0 else b"", tx.sender_address)
    leases.finish(state, lease, ctx.height, LeaseStatus.CLOSED)


def apply_check_result(state: Journal, ctx: BlockContext, tx: Tx, p: CheckResult) -> None:
    check = get_check(state, p.check_id)
    if check is None or check.status != CheckStatus.PENDING:
        raise LedgerError(errors.CHECK_NOT_FOUND, f"check {p.check_id} is not pending")
    if tx.sender_address != check.verifier:
        raise LedgerError(errors.NOT_CHECK_VERIFIER, f"check {p.check_id}")
    if p.passed not in (0, 1):
        raise LedgerError(errors.MARKET_BAD_REPORT, "passed is 1 (the work matched) or 0 (it did not)")
    checks.answer(state, check, bool(p.passed), p.digest, ctx.height)


def apply_cancel_order(state: Journal, ctx: BlockContext, tx: Tx, p: OrderRef) -> None:
    order = _order(state, p.order_id)
    if tx.sender_address != order.consumer:
        raise LedgerError(errors.NOT_LEASE_PARTY, f"only the consumer may cancel order {order.id}")
    if order.status != OrderStatus.BIDDING:
        raise LedgerError(errors.ORDER_NOT_BIDDING, f"order {order.id} is not bidding")
    take_bids(state, order.id)
    accounts.credit(state, order.consumer, order.escrow)
    order.escrow, order.status = 0, OrderStatus.CANCELLED
    put_order(state, order)
