"""Read helpers over settlement state: earnings, lines in a height range, the receipts behind a line,
holdings and the conservation check."""

from __future__ import annotations

from typing import Any

from ailedger.billing import state as billing
from ailedger.chain.params import Reader
from ailedger.datanet import state as datanets
from ailedger.settlement.plan import resolve_model
from ailedger.settlement.reference import settle_receipt
from ailedger.settlement.state import (
    ROLE_NAMES,
    Earnings,
    Entry,
    account_addresses,
    address_vesting_key,
    get_earnings,
    get_line,
    get_summary,
    get_totals,
    ineligible_records,
    line_height,
    unpack_vesting,
)


def holdings(state: Reader) -> int:
    """Everything settlement holds for people: every earnings balance plus every vesting holding.

    Part of the total supply (balances + stakes + ... + billing's holdings + this)."""
    total = 0
    for address in account_addresses(state):
        e = get_earnings(state, address)
        total += e.balance + e.held
    return total


def conservation(state: Reader) -> dict[str, Any]:
    """The supply-conservation check: every micro-unit the escrow paid out is somewhere, exactly.

    settled = earned + held + refunded + pooled          (each block, and so over all blocks)
    sum of earnings balances = earned + released + forfeit_paid - withdrawn
    sum of vesting holdings  = held - released - forfeited
    """
    t = get_totals(state)
    balances = held = 0
    for address in account_addresses(state):
        e = get_earnings(state, address)
        balances += e.balance
        held += e.held
    checks = {
        "escrow_out_equals_payouts": t.settled == t.earned + t.held + t.refunded + t.pooled,
        "balances_match": balances == t.earned + t.released + t.forfeit_paid - t.withdrawn,
        "vesting_matches": held == t.held - t.released - t.forfeited,
    }
    return {"conserved": all(checks.values()), "checks": checks, "settled": t.settled, "earned": t.earned,
            "held": t.held, "refunded": t.refunded, "pooled": t.pooled, "released": t.released,
            "forfeited": t.forfeited, "forfeit_paid": t.forfeit_paid, "withdrawn": t.withdrawn,
            "receipts": t.receipts, "balances": balances, "vesting": held}


def first_line_at_or_after(state: Reader, address: bytes, lines: int, height: int) -> int:
    """Index of the address's first line at a height >= `height` (its line heights increase)."""
    lo, hi = 0, lines
    while lo < hi:
        mid = (lo + hi) // 2
        if line_height(state, address, mid) < height:
            lo = mid + 1
        else:
            hi = mid
    return lo


def entry_json(e: Entry) -> dict[str, Any]:
    return {"datanet": e.datanet or None, "model": f"{e.model}@{e.version}" if e.model else None,
            "role": ROLE_NAMES[e.role], "amount": e.amount, "held": e.held, "forfeited": e.forfeited,
            "count": e.count}


def earnings_doc(e: Earnings) -> dict[str, Any]:
    return {"balance": e.balance, "held": e.held, "earned": e.earned, "vested": e.vested,
            "forfeited": e.forfeited, "withdrawn": e.withdrawn, "line_count": e.lines}


def lines_in_range(state: Reader, address: bytes, lines: int, start: int, stop: int | None,
                   datanet: str | None, model: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The address's lines with start <= height <= stop, filtered; (lines, whether more were left out)."""
    out: list[dict[str, Any]] = []
    n = first_line_at_or_after(state, address, lines, start)
    while n < lines:
        height = line_height(state, address, n)
        if stop is not None and height > stop:
            break
        line = get_line(state, address, height)
        entries = [x for x in (line.entries if line else [])
                   if (datanet is None or x.datanet == datanet) and (model is None or _model_matches(x, model))]
        if entries:
            if len(out) == limit:
                return out, True
            out.append({"height": height, "entries": [entry_json(x) for x in entries]})
        n += 1
    return out, False


def _model_matches(e: Entry, model: str) -> bool:
    return e.model == model or f"{e.model}@{e.version}" == model


def totals_by(lines: list[dict[str, Any]], field: str) -> dict[str, dict[str, int]]:
    """Sum lines' entries per Datanet or per model (amount, held, forfeited, count)."""
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        for x in line["entries"]:
            key = x[field] or "-"
            cur = out.setdefault(key, {"amount": 0, "held": 0, "forfeited": 0, "count": 0})
            for k in cur:
                cur[k] += x[k]
    return dict(sorted(out.items()))


def vesting(state: Reader, address: bytes) -> list[dict[str, Any]]:
    return [{"datanet": v.datanet, "amount": v.amount, "release_height": v.release_height}
            for v in unpack_vesting(state.get(address_vesting_key(address)))]


def line_receipts(state: Reader, address: bytes, height: int, limit: int) -> list[dict[str, Any]]:
    """The receipts settled at `height` that paid `address`, each with its part recomputed by the rule.

    Exact for data, model-owner and compute lines: the block's receipts (stl/blk gives their range),
    their stored fields, the models' splits (fixed at publication) and the records that were not
    accepted when the block settled (stl/inel) are all a receipt's part depends on. Whether a data part
    was held (vesting) is per block and address, and the line says it. A validator's line is per
    Datanet: its receipts are the Datanet's receipts of the block, and their `validators` part the pool
    that was split by stake. Cost: one read per receipt of the block, so `limit` bounds the answer.
    """
    summary = get_summary(state, height)
    if summary is None:
        return []
    ineligible = ineligible_records(state, height)
    out: list[dict[str, Any]] = []
    models: dict[tuple[str, int], Any] = {}
    for seq in range(summary.first_seq, summary.end_seq):
        rid = state.get(billing.unsettled_key(seq))
        r = billing.get_receipt(state, rid or b"")
        if r is None or r.charged == 0:
            continue
        info = models.get((r.model, r.version))
        if info is None:
            info = models[(r.model, r.version)] = resolve_model(state, r.model, r.version)
        shares = [(x.record, x.bp) for x in r.shares]
        eligible = {rec for rec, _ in shares if (info.datanet, rec) not in ineligible}
        p = settle_receipt(r.charged, info.split, shares, eligible)
        parts: list[dict[str, Any]] = []
        if r.provider == address and p.compute:
            parts.append({"role": "compute", "amount": p.compute})
        if info.owner == address and p.model_owner:
            parts.append({"role": "model_owner", "amount": p.model_owner})
        for record, amount in p.data:
            if _contributor(state, info.datanet, record) == address:
                parts.append({"role": "data", "record": record.hex(), "amount": amount})
        if _is_validator(state, info.datanet, address) and p.validators:
            parts.append({"role": "validators_pool", "amount": p.validators})
        if parts:
            out.append({"id": r.id.hex(), "seq": seq, "model": f"{r.model}@{r.version}",
                        "datanet": info.datanet or None, "charged": r.charged, "parts": parts})
            if len(out) >= limit:
                break
    return out


def _contributor(state: Reader, datanet: str, record: bytes) -> bytes | None:
    rs = datanets.get_record_state(state, datanet, record)
    return rs.contributor if rs is not None else None


def _is_validator(state: Reader, datanet: str, address: bytes) -> bool:
    return bool(datanet) and address in datanets.addresses(state, datanets.validators_key(datanet))
