"""Who a block's receipts pay, computed for all of them at once (the rules; payout.py writes them).

Per receipt row (charged > 0), by the rules of docs/settlement.md:
1. `charged` is split into four parts by the adapter's Datanet fee split (data, model owner, compute,
   validators; largest remainder, apportion.py). A base-only call (version 0) uses (0, 0, 10,000, 0):
   the provider gets all of it, since no Datanet and no adapter owner took part.
2. The data part goes to the receipt's records by their basis points, but only to records that are
   `accepted` in the adapter's Datanet now (at the end of the settling block): the weights of the
   others are set to 0 and the part is apportioned over the eligible ones. A record rejected (or in any
   way no longer accepted) stops earning from the block that sees it so, and its part goes to the other
   eligible records of the same receipt.
3. A receipt with no eligible record (no shares: an unattributed answer; or none of its records
   accepted) refunds its data part to the caller's prepaid balance: nobody profits from a missing or
   broken attribution, and a provider gains nothing by leaving attribution out.
4. Model owner and compute parts go to the adapter's owner and the submitting provider; the validators'
   parts are summed per Datanet for the block (payout.py pays them pro rata to bonded stake).

Reads here are one per distinct model, Datanet and (Datanet, record) pair of the block, never one per
receipt; everything per receipt or per share is a NumPy column operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ailedger.chain.params import Reader
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.datanet import state as datanets
from ailedger.models import state as models
from ailedger.settlement.apportion import Array, apportion, group_sum, split_fee
from ailedger.settlement.batch import Batch
from ailedger.settlement.state import Role

BASE_SPLIT = (0, 0, 10_000, 0)
DENSE_LIMIT = 1 << 22  # key spaces up to this size (32 MiB of index) use a dense table, else np.unique


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int
    datanet: str  # "" for a base-only call
    owner: bytes | None  # None for a base-only call
    split: tuple[int, int, int, int]


def resolve_model(state: Reader, name: str, version: int) -> ModelInfo:
    """The payees and split of `name@version`; a base (or, defensively, a vanished adapter) pays compute."""
    adapter = models.get_adapter(state, name, version) if version else None
    cfg = datanets.get_config(state, adapter.datanet) if adapter is not None else None
    if adapter is None or cfg is None:
        return ModelInfo(name, version, "", None, BASE_SPLIT)
    s = cfg.split
    return ModelInfo(name, version, adapter.datanet, adapter.owner, (s.data, s.model_owner, s.compute, s.validators))


@dataclass
class Plan:
    """A block's settlement before it is written: credits, refunds, validator pools, ineligible records."""

    settled: int = 0
    receipts: int = 0
    # (address, datanet, model, version, role) -> [amount, count]
    credits: dict[tuple[bytes, str, str, int, int], list[int]] = field(default_factory=dict)
    refunds: dict[bytes, int] = field(default_factory=dict)  # caller -> micro-units back to prepaid
    validators: dict[str, list[int]] = field(default_factory=dict)  # Datanet -> [amount, receipts]
    ineligible: list[tuple[str, bytes]] = field(default_factory=list)

    def credit(self, key: tuple[bytes, str, str, int, int], amount: int, count: int) -> None:
        if amount or count:
            cur = self.credits.setdefault(key, [0, 0])
            cur[0] += amount
            cur[1] += count


def dedup(keys: Array, space: int) -> tuple[Array, Array]:
    """(distinct keys ascending, index of each key among them), by a dense table when the space is small."""
    if space <= DENSE_LIMIT:
        seen = np.zeros(space, dtype=bool)
        seen[keys] = True
        distinct = np.flatnonzero(seen)
        where = np.full(space, -1, dtype=np.int64)
        where[distinct] = np.arange(len(distinct))
        return distinct, where[keys]
    distinct, inverse = np.unique(keys, return_inverse=True)
    return distinct, inverse.astype(np.int64)


def amount_dtype(charged: Array) -> Any:
    """int64 when no sum of the block's amounts can overflow it, else Python ints (exact, slower)."""
    if len(charged) == 0 or int(charged.max()) <= MAX_AMOUNT // len(charged):
        return np.int64
    return object


def plan_block(state: Reader, b: Batch) -> Plan:
    plan = Plan(receipts=len(b))
    if not len(b):
        return plan
    dtype = amount_dtype(b.charged)
    charged = b.charged.astype(dtype)
    plan.settled = int(charged.sum())
    infos = [resolve_model(state, name, version) for name, version in b.models]
    nm = len(infos)
    dn_names = sorted({i.datanet for i in infos if i.datanet})
    dn_of_model = np.array([dn_names.index(i.datanet) if i.datanet else len(dn_names) for i in infos], dtype=np.int64)
    parts = split_fee(charged, np.array([i.split for i in infos], dtype=np.int64)[b.model])
    _data_pool(state, plan, b, infos, dn_names, dn_of_model, parts[:, 0])
    owner = group_sum(parts[:, 1], b.model, nm)
    calls = group_sum(np.ones(len(b), dtype=np.int64), b.model, nm)
    for m, info in enumerate(infos):
        if info.owner is not None:
            plan.credit((info.owner, info.datanet, info.name, info.version, Role.MODEL_OWNER), int(owner[m]),
                        int(calls[m]))
    keys, where = dedup(b.provider * nm + b.model, len(b.providers) * nm)
    compute = group_sum(parts[:, 2], where, len(keys))
    counts = group_sum(np.ones(len(b), dtype=np.int64), where, len(keys))
    for k, amount, count in zip(keys.tolist(), compute.tolist(), counts.tolist(), strict=True):
        info = infos[k % nm]
        plan.credit((b.providers[k // nm], info.datanet, info.name, info.version, Role.COMPUTE), int(amount), count)
    dn_of_row = dn_of_model[b.model]
    pools = group_sum(parts[:, 3], dn_of_row, len(dn_names) + 1)
    per_dn = group_sum(np.ones(len(b), dtype=np.int64), dn_of_row, len(dn_names) + 1)
    for d, name in enumerate(dn_names):
        plan.validators[name] = [int(pools[d]), int(per_dn[d])]
    return plan


def _data_pool(state: Reader, plan: Plan, b: Batch, infos: list[ModelInfo], dn_names: list[str],
               dn_of_model: Array, data: Array) -> None:
    """Rules 2 and 3: the data part to eligible records' contributors by bp, else back to the caller."""
    n, nm, nrec = len(b), len(infos), max(1, len(b.records))
    model_of_share = b.model[b.share_row]
    pair_keys, pair_of_share = dedup(dn_of_model[model_of_share] * nrec + b.share_record, (len(dn_names) + 1) * nrec)
    eligible = np.zeros(len(pair_keys), dtype=np.int64)
    contributors: list[bytes] = []
    for p, key in enumerate(pair_keys.tolist()):
        d, rec = divmod(key, nrec)
        rs = datanets.get_record_state(state, dn_names[d], b.records[rec]) if d < len(dn_names) else None
        contributors.append(rs.contributor if rs is not None else bytes(20))
        if rs is not None and rs.status == datanets.Status.ACCEPTED:
            eligible[p] = 1
        else:
            plan.ineligible.append((dn_names[d] if d < len(dn_names) else "", b.records[rec]))
    weight = (b.share_bp * eligible[pair_of_share]).astype(data.dtype)
    total = group_sum(weight, b.share_row, n)
    start = np.cumsum(b.shares) - b.shares
    pos = np.arange(len(b.share_row), dtype=np.int64) - start[b.share_row]
    width = int(b.shares.max()) if n else 1
    paid = apportion(data, total, weight, b.share_row, pos, max(1, width))
    refund = group_sum(np.where(total > 0, 0, data), b.caller, len(b.callers))
    for c, amount in enumerate(refund.tolist()):
        if amount:
            plan.refunds[b.callers[c]] = int(amount)
    keys, where = dedup(pair_of_share * nm + model_of_share, max(1, len(pair_keys)) * nm)
    amounts = group_sum(paid, where, len(keys))
    counts = group_sum((weight > 0).astype(np.int64), where, len(keys))
    for k, amount, count in zip(keys.tolist(), amounts.tolist(), counts.tolist(), strict=True):
        p, m = divmod(k, nm)
        if eligible[p]:
            info = infos[m]
            plan.credit((contributors[p], info.datanet, info.name, info.version, Role.DATA), int(amount), count)
