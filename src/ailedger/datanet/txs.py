"""The handlers of the Datanet transactions (their wire format is in payloads.py).

Every handler checks everything before its first write, except where a later failure is rolled
back by the runtime's journal (the whole transaction fails, only the fee is kept). Amounts move
only between balances, stakes, record escrows and pools, so nothing is minted or burned.
"""

from __future__ import annotations

import re

from ailedger.chain import accounts, params
from ailedger.chain.module import BlockContext
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.errors import ErrorCode, LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.datanet import frontier, rules
from ailedger.datanet.payloads import (
    RETRACT_REASONS,
    AddGatekeeper,
    Contribute,
    CreateDatanet,
    GateVerdict,
    Named,
    Retract,
    RetractReason,
    VoteBatch,
)
from ailedger.datanet.state import (
    CONFIG,
    COUNT_KEY,
    VERSION,
    Config,
    ContributorStats,
    Counters,
    RecordState,
    Retraction,
    Status,
    Version,
    Vote,
    addresses,
    append_due,
    contributor_index_key,
    gatekeepers_key,
    get_amount,
    get_config,
    get_contributor,
    get_counters,
    get_record_state,
    meta_key,
    name_index_key,
    put_amount,
    put_contributor,
    put_counters,
    put_record_state,
    put_retraction,
    tree_key,
    validators_key,
    version_key,
)
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role

_NAME = re.compile(r"[a-z0-9-]{1,64}", re.ASCII)


def _bad(detail: str) -> LedgerError:
    return LedgerError(errors.BAD_DATANET_PARAM, detail)


def _config(state: Journal, name: str) -> Config:
    cfg = get_config(state, name)
    if cfg is None:
        raise LedgerError(errors.DATANET_NOT_FOUND, name)
    return cfg


def _batch_size(state: Journal, n: int) -> None:
    if n == 0:
        raise LedgerError(errors.EMPTY_BATCH)
    limit = params.get(state, "datanet_max_records_per_tx")
    if n > limit:
        raise LedgerError(errors.TOO_MANY_RECORDS, f"{n} > datanet_max_records_per_tx {limit}")


def _no_repeats(hashes: list[bytes]) -> None:
    if len(set(hashes)) != len(hashes):
        raise LedgerError(errors.DUPLICATE_RECORD, "a record hash appears twice in the transaction")


def check_create(state: Journal, p: CreateDatanet) -> None:
    """Every rule of a new Datanet's settings; raises bad_datanet_name / datanet_exists / bad_datanet_param."""
    if not _NAME.fullmatch(p.name):
        raise LedgerError(errors.BAD_DATANET_NAME, repr(p.name))
    if get_config(state, p.name) is not None:
        raise LedgerError(errors.DATANET_EXISTS, p.name)
    min_stake = params.get(state, "datanet_min_stake_per_record")
    if p.stake_per_record < min_stake:
        raise _bad(f"stake_per_record {p.stake_per_record} < datanet_min_stake_per_record {min_stake}")
    max_votes = params.get(state, "datanet_max_votes_per_record")
    if not 1 <= p.quorum <= max_votes:
        raise _bad(f"quorum {p.quorum} outside 1..datanet_max_votes_per_record {max_votes}")
    lo, hi = params.get(state, "datanet_min_window_blocks"), params.get(state, "datanet_max_window_blocks")
    if not lo <= p.window_blocks <= hi:
        raise _bad(f"window_blocks {p.window_blocks} outside datanet_min/max_window_blocks {lo}..{hi}")
    if p.split.total() != rules.BPS:
        raise _bad(f"fee split sums to {p.split.total()} basis points, not 10,000")
    if p.neardup_threshold_bps > rules.BPS:
        raise _bad(f"neardup_threshold_bps {p.neardup_threshold_bps} > 10,000")
    if p.pii_policy not in (0, 1):
        raise _bad(f"pii_policy {p.pii_policy} is neither 0 (reject) nor 1 (redact)")


def apply_create(state: Journal, ctx: BlockContext, tx: Tx, p: CreateDatanet) -> None:
    check_create(state, p)
    owner = tx.sender_address
    cfg = Config(p.name, owner, p.topic, p.description, p.schema_hash, p.licence, p.stake_per_record, p.quorum,
                 p.window_blocks, p.split, p.neardup_threshold_bps, p.pii_policy, ctx.height)
    state.set(meta_key(p.name), CONFIG.encode(cfg))
    put_counters(state, p.name, Counters())
    state.set(gatekeepers_key(p.name), owner)
    n = get_amount(state, COUNT_KEY)
    state.set(name_index_key(n), p.name.encode())
    put_amount(state, COUNT_KEY, n + 1)


def _add_member(state: Journal, key: bytes, address: bytes, limit_param: str) -> None:
    members = addresses(state, key)
    if address in members:
        raise LedgerError(errors.ALREADY_REGISTERED)
    limit = params.get(state, limit_param)
    if len(members) >= limit:
        raise LedgerError(errors.DATANET_ROLE_FULL, f"{limit_param} = {limit}")
    state.set(key, (state.get(key) or b"") + address)


def apply_add_gatekeeper(state: Journal, ctx: BlockContext, tx: Tx, p: AddGatekeeper) -> None:
    cfg = _config(state, p.name)
    if tx.sender_address != cfg.owner:
        raise LedgerError(errors.NOT_DATANET_OWNER)
    _add_member(state, gatekeepers_key(p.name), p.address, "datanet_max_gatekeepers")


def _validator_stake(state: Journal, address: bytes) -> int:
    stake = accounts.get_account(state, address).stake
    minimum = params.get(state, "datanet_validator_min_stake")
    if stake < minimum:
        raise LedgerError(errors.VALIDATOR_STAKE_TOO_LOW, f"bonded {stake} < datanet_validator_min_stake {minimum}")
    return stake


def apply_register_validator(state: Journal, ctx: BlockContext, tx: Tx, p: Named) -> None:
    _config(state, p.name)
    _validator_stake(state, tx.sender_address)
    _add_member(state, validators_key(p.name), tx.sender_address, "datanet_max_validators")


def apply_contribute(state: Journal, ctx: BlockContext, tx: Tx, p: Contribute) -> None:
    cfg = _config(state, p.name)
    n = len(p.records)
    _batch_size(state, n)
    if merkle_root(p.records) != p.batch_root:
        raise LedgerError(errors.BAD_BATCH_ROOT)
    _no_repeats(p.records)
    for h in p.records:
        if get_record_state(state, p.name, h) is not None:
            raise LedgerError(errors.DUPLICATE_RECORD, f"{h.hex()} is already in {p.name}")
    sender = tx.sender_address
    accounts.debit(state, sender, n * cfg.stake_per_record)
    window_end = ctx.height + cfg.window_blocks
    for h in p.records:
        put_record_state(state, p.name, h, RecordState(Status.PENDING, sender, cfg.stake_per_record, ctx.height,
                                                       window_end))
    append_due(state, window_end, p.name, p.records)
    counters = get_counters(state, p.name)
    counters.pending += n
    stats = get_contributor(state, p.name, sender)
    if stats is None:
        stats = ContributorStats()
        state.set(contributor_index_key(p.name, counters.contributors), sender)
        counters.contributors += 1
    stats.submitted += n
    put_contributor(state, p.name, sender, stats)
    put_counters(state, p.name, counters)


def _in_status(state: Journal, name: str, record_hash: bytes, status: int, otherwise: ErrorCode) -> RecordState:
    """The record's state, when it exists and has `status`; `otherwise` names what is wrong if not."""
    rec = get_record_state(state, name, record_hash)
    if rec is None:
        raise LedgerError(errors.RECORD_NOT_FOUND, record_hash.hex())
    if rec.status != status:
        raise LedgerError(otherwise, record_hash.hex())
    return rec


def _pending(state: Journal, name: str, record_hash: bytes) -> RecordState:
    return _in_status(state, name, record_hash, Status.PENDING, errors.RECORD_NOT_PENDING)


def apply_gate_verdict(state: Journal, ctx: BlockContext, tx: Tx, p: GateVerdict) -> None:
    cfg = _config(state, p.name)
    if tx.sender_address not in addresses(state, gatekeepers_key(p.name)):
        raise LedgerError(errors.NOT_GATEKEEPER)
    _batch_size(state, len(p.rejections))
    _no_repeats([r.record for r in p.rejections])
    found = [(r, _pending(state, p.name, r.record)) for r in p.rejections]
    counters = get_counters(state, p.name)
    for r, rec in found:
        rules.gate_reject(state, ctx.height, cfg, counters, r.record, rec, r.gate, r.reason)
    put_counters(state, p.name, counters)


def apply_vote(state: Journal, ctx: BlockContext, tx: Tx, p: VoteBatch) -> None:
    _config(state, p.name)
    voter = tx.sender_address
    if voter not in addresses(state, validators_key(p.name)):
        raise LedgerError(errors.NOT_VALIDATOR)
    stake = _validator_stake(state, voter)
    _batch_size(state, len(p.votes))
    max_votes = params.get(state, "datanet_max_votes_per_record")
    weight = stake * reputation.score_bps(state, voter, Role.VALIDATOR, ctx.height) // rules.BPS
    for b in p.votes:
        if b.accept not in (0, 1):
            raise _bad(f"accept is {b.accept}; send 1 to accept or 0 to reject")
        rec = get_record_state(state, p.name, b.record)
        if rec is None:
            raise LedgerError(errors.RECORD_NOT_FOUND, b.record.hex())
        if ctx.height > rec.window_end:
            raise LedgerError(errors.VOTE_WINDOW_CLOSED, f"window ended at height {rec.window_end}")
        if rec.status != Status.PENDING:
            raise LedgerError(errors.RECORD_NOT_PENDING, b.record.hex())
        if any(v.voter == voter for v in rec.votes):
            raise LedgerError(errors.ALREADY_VOTED, b.record.hex())
        if len(rec.votes) >= max_votes:
            raise LedgerError(errors.TOO_MANY_VOTES, f"{len(rec.votes)} votes, limit {max_votes}")
        rec.votes.append(Vote(voter, b.accept, weight))
        put_record_state(state, p.name, b.record, rec)


def apply_snapshot(state: Journal, ctx: BlockContext, tx: Tx, p: Named) -> None:
    cfg = _config(state, p.name)
    if tx.sender_address != cfg.owner:
        raise LedgerError(errors.NOT_DATANET_OWNER)
    counters = get_counters(state, p.name)
    counters.versions += 1
    root = frontier.root(state.get(tree_key(p.name)) or b"", counters.accepted)
    version = Version(counters.versions, root, counters.accepted, ctx.height)
    state.set(version_key(p.name, version.number), VERSION.encode(version))
    put_counters(state, p.name, counters)


def apply_retract(state: Journal, ctx: BlockContext, tx: Tx, p: Retract) -> None:
    """Take accepted records out of paid use: settlement stops paying them from this block on.

    A contributor may retract its own records (consent withdrawn); the Datanet's owner may take any
    accepted record down for personal data, licence or harm, which costs the contributor reputation
    as a rejection does. Nothing else moves: the stake went back at acceptance, and the record stays
    in the accepted list and in every version's root (the list is append-only, so frozen roots stay
    checkable); docs/datanets.md, "Retraction".
    """
    cfg = _config(state, p.name)
    if p.reason not in RETRACT_REASONS:
        raise _bad(f"reason {p.reason}: use one of " + ", ".join(f"{k} {v}" for k, v in RETRACT_REASONS.items()))
    _batch_size(state, len(p.records))
    _no_repeats(p.records)
    takedown = p.reason != RetractReason.CONSENT_WITHDRAWN
    if takedown and tx.sender_address != cfg.owner:
        raise LedgerError(errors.NOT_DATANET_OWNER, f"reason {RETRACT_REASONS[p.reason]} is a takedown by the owner")
    found = []
    for h in p.records:
        rec = _in_status(state, p.name, h, Status.ACCEPTED, errors.RECORD_NOT_ACCEPTED)
        if not takedown and rec.contributor != tx.sender_address:
            raise LedgerError(errors.NOT_RECORD_CONTRIBUTOR, h.hex())
        found.append((h, rec))
    weight = params.get(state, "datanet_rep_contributor_weight")
    for h, rec in found:
        rec.status = Status.RETRACTED
        put_record_state(state, p.name, h, rec)
        put_retraction(state, p.name, h, Retraction(ctx.height, tx.sender_address, p.reason))
        if takedown:
            reputation.record_outcome(state, rec.contributor, Role.CONTRIBUTOR, False, ctx.height, weight)
