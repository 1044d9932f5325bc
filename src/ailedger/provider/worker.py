"""The provider's worker loop behind `ailedger provider start`: bid, work, report, verify, in that order.

One `step`:
1. bid: every order still taking bids in the next block whose needs the provider's offer covers, whose
   kind it can run (a trainer for train orders, a server for serve orders, one that has the files of the
   adapter the order names: otherwise the reason is kept in `not_bidding` and said once), and whose max price admits
   the offer's price in the order's unit (and whose escrow covers it for the whole duration), gets one
   bid at the offer's price (one bid per order: the ledger refuses a second);
2. work: for each active lease the provider holds, run the work when it is due (training once, then the
   same adapter is reported, by report_training with the root over its checkpoint boundaries; serving every
   period), upload the artifacts, report the digest (and tokens on per-token leases) at least every
   `report_every` blocks and in the lease's last block, then withdraw what the lease owes;
3. verify: every pending spot check drawn for this provider is re-done (work.py) and answered;
4. tick: when nothing was sent but a window or lease is still running, re-post the same offer, so that a
   chain that seals blocks only on writes (the embedded `--data-dir` default) moves on.
The loop reads everything it decides on from the ledger each step, so a restarted worker carries on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.datanet.remote import DatanetBackend, TxSender
from ailedger.market import payloads as p
from ailedger.market.resources import Resources, covers
from ailedger.provider.spotcheck import TrainedWork
from ailedger.provider.verify import digest
from ailedger.provider.work import Server, Trainer, why_not
from ailedger.serving.catalog import Catalog


class MarketBackend(DatanetBackend, Protocol):
    def market(self, view: str, query: dict[str, str] | None = None) -> dict[str, Any]: ...


def resources(doc: dict[str, Any]) -> Resources:
    return Resources(doc["cpu_cores"], doc["memory_gib"], doc["accelerator"] or "", doc["accelerators"],
                     doc["region"] or "")


@dataclass
class Worker:
    backend: MarketBackend
    key: KeyPair
    trainer: Trainer | None = None
    server: Server | None = None
    report_every: int = 5
    tick: bool = True
    fee: int | None = None
    say: Callable[[str], None] = lambda line: None
    trained: dict[int, TrainedWork] = field(default_factory=dict)  # lease id -> what its training committed to
    not_bidding: dict[int, str] = field(default_factory=dict)  # order id -> why this worker does not bid on it
    not_verifying: set[int] = field(default_factory=set)  # checks it cannot re-run (the adapter is not here)

    def send(self, tx_type: int, payload: bytes) -> None:
        sender = TxSender(self.backend, self.key, self.fee)
        sender.send(tx_type, payload)
        sender.finish()

    def me(self) -> dict[str, Any]:
        return dict(self.backend.market("providers", {"address": self.key.address_text})["providers"][0])

    def step(self) -> int:
        """One pass (module docstring); returns how many transactions it sent."""
        height = int(self.backend.status()["height"])
        me = self.me()
        sent = self._bid(me, height) + self._work(height) + self._verify()
        if not sent and self.tick and me["offer"] and self.waiting():
            offer = me["offer"]
            self.send(p.POST_OFFER, p.POST_OFFER_CODEC.encode(p.PostOffer(
                resources(offer), offer["price_per_block"], offer["price_per_ktokens"])))
            sent += 1
        return sent

    def waiting(self) -> bool:
        active = self.backend.market("leases", {"status": "active", "party": self.key.address_text})["leases"]
        return bool(active) or bool(self.backend.market("orders", {"status": "bidding"})["orders"])

    def _bid(self, me: dict[str, Any], height: int) -> int:
        offer, sent = me["offer"], 0
        if not offer or me["bond"] < int(self.backend.params()["market_provider_min_stake"]["value"]):
            return 0
        for o in self.backend.market("orders", {"status": "bidding"})["orders"]:
            price = offer["price_per_block"] if o["unit"] == "block" else offer["price_per_ktokens"]
            runner = self.trainer if o["kind"] == "train" else self.server
            if (o["consumer"] == self.key.address_text or o["window_end"] <= height or runner is None or not price
                    or price > o["max_price"] or not covers(resources(offer), resources(o["needs"]))
                    or (o["unit"] == "block" and price * o["duration"] > o["escrow"])):
                continue
            if o["kind"] == "serve" and self.server is not None:
                why = self.server.why_not(o.get("model"))
                if why:
                    if o["id"] not in self.not_bidding:
                        self.say(f"not bidding on order {o['id']}: {why}")
                    self.not_bidding[o["id"]] = why
                    continue
            full = self.backend.market("orders", {"id": str(o["id"])})["orders"][0]
            if any(b["provider"] == self.key.address_text for b in full["bids"]):
                continue
            self.send(p.BID, p.BID_CODEC.encode(p.Bid(o["id"], price)))
            self.say(f"bid {price} on order {o['id']} ({o['kind']}, {o['needs']['class']})")
            sent += 1
        return sent

    def _work(self, height: int) -> int:
        sent = 0
        mine = self.backend.market("leases", {"status": "active", "party": self.key.address_text})["leases"]
        for lease in mine:
            if lease["provider"] != self.key.address_text:
                continue
            due = height + 1 - lease["last_report"] >= self.report_every or height + 1 >= lease["end"]
            if not due and lease["reports"]:
                continue
            order = self.backend.market("orders", {"id": str(lease["order"])})["orders"][0]
            tokens = 0
            if order["kind"] == "train" and self.trainer is not None:
                if lease["id"] not in self.trained:
                    trained = self.trainer.run(order, lease["id"])
                    self.backend.put_blobs(trained.blobs)
                    self.trained[lease["id"]] = trained
                    self.say(f"trained lease {lease['id']}: adapter {trained.digest.hex()}, "
                             f"{len(trained.manifest.boundaries)} boundaries under root {trained.root.hex()}")
                tw = self.trained[lease["id"]]
                self.send(p.REPORT_TRAINING, p.REPORT_TRAINING_CODEC.encode(p.ReportTraining(
                    lease["id"], tw.digest, tw.root, len(tw.manifest.boundaries), tw.manifest_hash)))
                self.send(p.WITHDRAW_PAY, p.LEASE_REF_CODEC.encode(p.LeaseRef(lease["id"])))
                sent += 2
                continue
            if order["kind"] == "serve" and self.server is not None:
                blob, tokens = self.server.run(lease["id"], order.get("model"))
                self.backend.put_blobs([blob])
                work = digest(blob)
                self.say(f"served lease {lease['id']} with {order.get('model') or 'the base'}: {tokens} tokens")
            else:
                continue
            tokens = tokens if lease["unit"] != "block" else 0
            self.send(p.REPORT_WORK, p.REPORT_WORK_CODEC.encode(p.ReportWork(lease["id"], work, tokens)))
            self.send(p.WITHDRAW_PAY, p.LEASE_REF_CODEC.encode(p.LeaseRef(lease["id"])))
            sent += 2
        return sent

    def _verify(self) -> int:
        sent = 0
        pending = self.backend.market("checks", {"status": "pending", "verifier": self.key.address_text})["checks"]
        for c in pending:
            lease = self.backend.market("leases", {"id": str(c["lease"])})["leases"][0]
            order = self.backend.market("orders", {"id": str(lease["order"])})["orders"][0]
            try:
                reported = self.backend.get_blob(c["digest"])
            except LedgerError as exc:
                if exc.code is not errors.BLOB_NOT_FOUND:
                    raise
                reported = b""  # reported work that was never uploaded is work nobody can check: it fails
            answer = digest(reported)
            if not reported:
                ok, why = False, "the reported digest names no blob in the store"
            elif order["kind"] == "train" and self.trainer is not None and c.get("root"):
                verdict = self.trainer.spot_check(order, c)
                ok, why, answer = verdict.passed, verdict.why, verdict.digest
            elif order["kind"] == "train" and self.trainer is not None:
                ok, why = self.trainer.verify(order, reported, c["id"])
            elif order["kind"] == "serve" and self.server is not None:
                cannot = self.server.why_not(order.get("model"))
                if cannot:  # the adapter's files are not here: the check times out (docs/market.md)
                    if c["id"] not in self.not_verifying:
                        self.say(f"check {c['id']} of lease {c['lease']}: not answered, {cannot}")
                    self.not_verifying.add(c["id"])
                    continue
                ok, why = self.server.verify(reported, bytes.fromhex(c["digest"]) + c["id"].to_bytes(8, "big"),
                                             order.get("model"))
            else:
                continue  # cannot re-run this kind here: the check times out (docs/market.md says whose fault)
            self.send(p.CHECK_RESULT, p.CHECK_RESULT_CODEC.encode(p.CheckResult(c["id"], int(ok), answer)))
            self.say(f"check {c['id']} of lease {c['lease']}: {'passed' if ok else 'FAILED'} ({why})")
            sent += 1
        return sent


def not_bidding(backend: MarketBackend, catalog: Catalog) -> list[dict[str, Any]]:
    """The serve orders taking bids that a server with `catalog` cannot serve, and why."""
    out = []
    for o in backend.market("orders", {"status": "bidding"})["orders"]:
        why = why_not(catalog, o.get("model")) if o["kind"] == "serve" else ""
        if why:
            out.append({"order": o["id"], "model": o.get("model"), "why": why})
    return out


def status(backend: MarketBackend, address: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """The provider, its leases (with what they paid and owe), its checks, and its earnings in all; with the
    catalog of its server, the serve orders taking bids that it cannot serve and why (`not_bidding`)."""
    prov = backend.market("providers", {"address": address})["providers"][0]
    leases = [x for x in backend.market("leases", {"party": address})["leases"] if x["provider"] == address]
    checks = backend.market("checks", {"verifier": address})["checks"]
    return {"height": backend.status()["height"], "provider": prov, "leases": leases, "checks": checks,
            "earned": sum(x["paid"] for x in leases), "owed": sum(x["owed"] for x in leases if x["status"] == "active"),
            "active_leases": sum(x["status"] == "active" for x in leases),
            "not_bidding": not_bidding(backend, catalog) if catalog is not None else []}
