"""The wire format of the Datanet transactions: type ids, payload records and their canonical codecs.

Codec maxima are hard limits of the encoding (a payload is at most 65,536 bytes); the limits that
policy may change (records per transaction, votes per record) are parameters checked by the handlers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ailedger.core.encoding import AMOUNT, B20, B32, U8, U16, U32, ListOf, Record, Text
from ailedger.datanet.state import FEE_SPLIT, MAX_DESCRIPTION, MAX_LICENCE, MAX_NAME, MAX_TOPIC, FeeSplit

CREATE, ADD_GATEKEEPER, REGISTER_VALIDATOR, CONTRIBUTE, GATE_VERDICT, VOTE, SNAPSHOT, RETRACT = range(0x0201, 0x0209)
MAX_LIST = 1_900  # codec cap of a list in one payload (65,536 B); the parameter is the real limit


@dataclass(frozen=True)
class CreateDatanet:
    name: str
    topic: str
    description: str
    schema_hash: bytes
    licence: str
    stake_per_record: int
    quorum: int
    window_blocks: int
    split: FeeSplit
    neardup_threshold_bps: int = 8_000
    pii_policy: int = 0


@dataclass(frozen=True)
class Named:
    name: str


@dataclass(frozen=True)
class AddGatekeeper:
    name: str
    address: bytes


@dataclass(frozen=True)
class Contribute:
    name: str
    records: list[bytes]
    batch_root: bytes


@dataclass(frozen=True)
class Rejection:
    record: bytes
    gate: int
    reason: int


@dataclass(frozen=True)
class GateVerdict:
    name: str
    rejections: list[Rejection]


@dataclass(frozen=True)
class Ballot:
    record: bytes
    accept: int


@dataclass(frozen=True)
class VoteBatch:
    name: str
    votes: list[Ballot]


class RetractReason:
    """Why an accepted record is taken out of paid use (plain ints: the codec writes exact ints)."""

    CONSENT_WITHDRAWN = 1  # the contributor takes their record back
    PERSONAL_DATA = 2  # the owner takes it down: personal data found after acceptance
    LICENCE = 3  # the owner takes it down: the contributor had no right to license it
    HARMFUL = 4  # the owner takes it down: false or harmful content found after acceptance


RETRACT_REASONS = {1: "consent_withdrawn", 2: "personal_data", 3: "licence", 4: "harmful"}


@dataclass(frozen=True)
class Retract:
    name: str
    records: list[bytes]
    reason: int


NAME = Text(MAX_NAME)
CREATE_CODEC = Record(CreateDatanet, {
    "name": NAME, "topic": Text(MAX_TOPIC), "description": Text(MAX_DESCRIPTION), "schema_hash": B32,
    "licence": Text(MAX_LICENCE), "stake_per_record": AMOUNT, "quorum": U16, "window_blocks": U32,
    "split": FEE_SPLIT, "neardup_threshold_bps": U16, "pii_policy": U8,
})
NAMED_CODEC = Record(Named, {"name": NAME})
ADD_GATEKEEPER_CODEC = Record(AddGatekeeper, {"name": NAME, "address": B20})
CONTRIBUTE_CODEC = Record(Contribute, {"name": NAME, "records": ListOf(B32, MAX_LIST), "batch_root": B32})
GATE_VERDICT_CODEC = Record(GateVerdict, {
    "name": NAME, "rejections": ListOf(Record(Rejection, {"record": B32, "gate": U8, "reason": U16}), MAX_LIST)})
VOTE_CODEC = Record(VoteBatch, {"name": NAME, "votes": ListOf(Record(Ballot, {"record": B32, "accept": U8}), MAX_LIST)})
RETRACT_CODEC = Record(Retract, {"name": NAME, "records": ListOf(B32, MAX_LIST), "reason": U8})
