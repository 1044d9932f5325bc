"""The wire format of the market's transactions: type ids, payload records and their canonical codecs.

0x0401..0x0404 are the plain compute jobs; 0x0405..0x040F the reverse-auction market, and 0x0410 the training
report that commits to checkpoint boundaries for segment spot checks (docs/market.md).
These dataclasses and codecs are the market's small Python API: build a payload, encode it with its
codec, sign it with `chain.tx.sign_tx` under its type id (the simulation drives the market this way).
"""

from __future__ import annotations

from dataclasses import dataclass

from ailedger.core.encoding import AMOUNT, B20, B32, U8, U32, U64, Record, Text
from ailedger.market.resources import RESOURCES, Resources

POST_JOB, CLAIM_JOB, SUBMIT_RESULT, ACCEPT_RESULT = range(0x0401, 0x0405)


@dataclass(frozen=True)
class PostJob:
    kind: int
    spec_hash: bytes
    budget: int
    deadline_blocks: int


@dataclass(frozen=True)
class JobRef:
    job_id: bytes


@dataclass(frozen=True)
class SubmitResult:
    job_id: bytes
    result_hash: bytes


POST_JOB_CODEC = Record(PostJob, {"kind": U8, "spec_hash": B32, "budget": AMOUNT, "deadline_blocks": U32})
JOB_REF_CODEC = Record(JobRef, {"job_id": B32})
SUBMIT_RESULT_CODEC = Record(SubmitResult, {"job_id": B32, "result_hash": B32})

(REGISTER_PROVIDER, POST_OFFER, WITHDRAW_OFFER, RETIRE_PROVIDER, POST_ORDER, BID, REPORT_WORK, WITHDRAW_PAY,
 CLOSE_LEASE, CHECK_RESULT, CANCEL_ORDER) = range(0x0405, 0x0410)


class Unit:
    """What an order's price is per: one block of the lease, or 1,000 served tokens."""

    BLOCK = 1
    KTOKENS = 2


UNIT_NAMES = {Unit.BLOCK: "block", Unit.KTOKENS: "1k-tokens"}


@dataclass(frozen=True)
class RegisterProvider:
    operator: bytes  # 20 bytes; providers declaring the same operator are counted together by the cap
    bond: int  # added to the provider's market bond (a top-up when already registered)


@dataclass(frozen=True)
class PostOffer:
    resources: Resources
    price_per_block: int
    price_per_ktokens: int


@dataclass(frozen=True)
class NoArgs:
    """withdraw_offer and retire_provider act on the sender's own provider record."""


@dataclass(frozen=True)
class PostOrder:
    kind: int  # state.Kind.TRAIN or state.Kind.SERVE
    spec_hash: bytes  # the job spec blob (training) or the adapter hash (serving)
    needs: Resources
    unit: int  # Unit.BLOCK or Unit.KTOKENS
    max_price: int
    budget: int
    window_blocks: int
    duration_blocks: int
    model: str = ""  # serving: the adapter version to serve (`NAME@N`, `NAME`) or a base's name; "": any base


MODEL_REF_MAX = 128  # bytes of an order's model reference


@dataclass(frozen=True)
class Bid:
    order_id: int
    price: int


@dataclass(frozen=True)
class ReportWork:
    lease_id: int
    digest: bytes  # checkpoint hash (training) or the hash of the period's request log (serving)
    tokens: int  # tokens served since the last report (per-token leases; 0 otherwise)


@dataclass(frozen=True)
class LeaseRef:
    lease_id: int


@dataclass(frozen=True)
class OrderRef:
    order_id: int


@dataclass(frozen=True)
class CheckResult:
    check_id: int
    passed: int  # 1: the re-run matched the reported work, 0: it did not
    digest: bytes  # the verifier's own result hash, for the record


REGISTER_PROVIDER_CODEC = Record(RegisterProvider, {"operator": B20, "bond": AMOUNT})
POST_OFFER_CODEC = Record(PostOffer, {"resources": RESOURCES, "price_per_block": AMOUNT,
                                      "price_per_ktokens": AMOUNT})
NO_ARGS_CODEC = Record(NoArgs, {})
POST_ORDER_CODEC = Record(PostOrder, {"kind": U8, "spec_hash": B32, "needs": RESOURCES, "unit": U8,
                                      "max_price": AMOUNT, "budget": AMOUNT, "window_blocks": U32,
                                      "duration_blocks": U32, "model": Text(MODEL_REF_MAX)})
BID_CODEC = Record(Bid, {"order_id": U64, "price": AMOUNT})
REPORT_WORK_CODEC = Record(ReportWork, {"lease_id": U64, "digest": B32, "tokens": U64})
LEASE_REF_CODEC = Record(LeaseRef, {"lease_id": U64})
ORDER_REF_CODEC = Record(OrderRef, {"order_id": U64})
CHECK_RESULT_CODEC = Record(CheckResult, {"check_id": U64, "passed": U8, "digest": B32})

REPORT_TRAINING = 0x0410


@dataclass(frozen=True)
class ReportTraining:
    """A training lease's report: report_work's digest plus a Merkle root over the run's checkpoint boundaries,
    which is what lets a spot check re-run a few segments instead of the whole training (provider/spotcheck.py)."""

    lease_id: int
    digest: bytes  # sha256 of the adapter file trained so far (as report_work's digest)
    root: bytes  # Merkle root over the boundary leaves (provider.spotcheck.Boundary.leaf)
    boundaries: int  # how many leaves the root is over
    manifest: bytes  # sha256 of the manifest blob listing the leaves (each boundary's step, params, checkpoint)


REPORT_TRAINING_CODEC = Record(ReportTraining, {"lease_id": U64, "digest": B32, "root": B32, "boundaries": U32,
                                                "manifest": B32})
