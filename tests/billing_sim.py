"""Helpers for billing tests: a world with a base model and two priced adapters, receipt and key builders."""

from __future__ import annotations

from typing import Any

from ailedger.billing import payloads as b
from ailedger.billing import views
from ailedger.billing.state import ApiKey, BillingAccount, StoredReceipt
from ailedger.chain.genesis import Allocation
from ailedger.core.keys import KeyPair
from ailedger.models import payloads as m
from tests.conftest import key
from tests.datanet_sim import Sim
from tests.models_sim import adapter, base, datanet_with_versions, h

OWNER, VAL, CONTRIB, BUILDER = key(41), key(42), key(43), key(44)
CALLER, CALLER2, PROVIDER, PROVIDER2, POOR = key(45), key(46), key(47), key(48), key(49)
UNIT = 1_000_000
BASE_HASH = h(1)
LEGAL1, LEGAL2, OLD1 = h(10), h(11), h(12)
PARAMS = {"datanet_min_window_blocks": 1, "billing_withdraw_delay_blocks": 5, "billing_base_price_per_1k": 500,
          "billing_max_receipts_per_tx": 6, "billing_max_citations": 2, "billing_max_keys_per_account": 3}
ALLOC = [Allocation(k.address, 100 * UNIT) for k in (OWNER, CONTRIB, BUILDER, CALLER, CALLER2, PROVIDER, PROVIDER2)]
ALLOC += [Allocation(VAL.address, UNIT, 5 * UNIT), Allocation(POOR.address, 2_000)]


def kh(i: int) -> bytes:
    """A deterministic API key hash (tests need no real key behind it)."""
    return (0xB0000000 + i).to_bytes(4, "big") * 8


def rid(i: int) -> bytes:
    return (0xC0000000 + i).to_bytes(4, "big") * 8


def world(params: dict[str, int] | None = None) -> Sim:
    """Base smollm2 (weights h(1)); legal@1 at 2,000 and legal@2 at 333 per 1k tokens; old@1 retired."""
    sim = Sim(ALLOC, {**PARAMS, **(params or {})})
    datanet_with_versions(sim, OWNER, VAL, CONTRIB)
    sim.ok((OWNER, m.REGISTER_BASE, base()))
    sim.ok((BUILDER, m.PUBLISH_ADAPTER, adapter("legal", LEGAL1, price=2_000)),
           (BUILDER, m.PUBLISH_ADAPTER, adapter("legal", LEGAL2, version=2, price=333)),
           (BUILDER, m.PUBLISH_ADAPTER, adapter("old", OLD1, price=1_000)))
    sim.ok((BUILDER, m.RETIRE, m.Retire("old", 1)))
    return sim


def authorize(key_hash: bytes, provider: KeyPair = PROVIDER, allowance: int = 10 * UNIT,
              expires: int = 0) -> b.AuthorizeKey:
    return b.AuthorizeKey(key_hash, provider.address, allowance, expires)


def receipt(i: int, key_hash: bytes, tokens: tuple[int, int] = (600, 400), model: str = "legal", version: int = 1,
            **kw: Any) -> b.Receipt:
    """Receipt rid(i) for a call of `model@version` (version 0: the base) with the registry's own hashes."""
    adapter_hash = {("legal", 1): LEGAL1, ("legal", 2): LEGAL2, ("old", 1): OLD1}.get((model, version), bytes(32))
    return b.Receipt(kw.pop("id", rid(i)), key_hash, model, version, kw.pop("base_hash", BASE_HASH),
                     kw.pop("adapter_hash", adapter_hash), tokens[0], tokens[1], kw.pop("citations", []),
                     kw.pop("attribution", bytes(32)), kw.pop("shares", []))


def submit(*receipts: b.Receipt) -> b.SubmitReceipts:
    return b.SubmitReceipts(list(receipts))


def acct(sim: Sim, k: KeyPair) -> BillingAccount:
    return views.get_account(sim.state, k.address)


def api_key(sim: Sim, key_hash: bytes) -> ApiKey:
    found = views.get_key(sim.state, key_hash)
    assert found is not None
    return found


def stored(sim: Sim, i: int) -> StoredReceipt:
    found = views.get_receipt(sim.state, rid(i))
    assert found is not None
    return found
