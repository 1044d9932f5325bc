"""The Datanet ledger module (number 2): community datasets with stake, gates, votes and snapshots.

A curator creates a Datanet (topic, schema hash, licence, stake per record, quorum, voting window,
fee split) and becomes its owner and first gatekeeper. Contributors post batches of record hashes
under a Merkle root and escrow `stake_per_record` for each. Gatekeepers (the off-ledger quality
gates) reject records at once, sending their stake to the Datanet's validator pool. Registered
validators vote, weighted by bonded stake x reputation. At the end of each record's window the
module's end_block decides it (rules.py: expired / accepted / rejected, exact splits, slashing,
reputation), and the owner freezes versions: Merkle roots over the accepted hashes.

Transactions: 0x0201 create_datanet, 0x0202 add_gatekeeper, 0x0203 register_validator,
0x0204 contribute, 0x0205 gate_verdict, 0x0206 vote, 0x0207 snapshot, 0x0208 retract. Docs: docs/datanets.md.
"""

from __future__ import annotations

from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.chain.state import Journal
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.datanet import payloads as p
from ailedger.datanet import rules, txs
from ailedger.datanet.state import (
    MAX_VOTES_CODEC,
    Status,
    due_groups,
    due_key,
    get_config,
    get_counters,
    get_record_state,
    put_counters,
)

NUMBER = 2
_REP = (0, 10**12, "fixed point (1e6 = one outcome)")

PARAMS = [
    ParamSpec("datanet_min_stake_per_record", 10_000, 0, MAX_AMOUNT, "micro-units",
              "Least stake a Datanet may ask per contributed record."),
    ParamSpec("datanet_max_votes_per_record", 32, 1, MAX_VOTES_CODEC, "votes",
              "Most validator votes one record may receive; also the highest quorum a Datanet may set."),
    ParamSpec("datanet_min_window_blocks", 10, 1, 10**9, "blocks", "Shortest voting window a Datanet may set.",
              at_most="datanet_max_window_blocks"),
    ParamSpec("datanet_max_window_blocks", 100_000, 1, 10**9, "blocks", "Longest voting window a Datanet may set."),
    ParamSpec("datanet_validator_min_stake", 1_000_000, 0, MAX_AMOUNT, "micro-units",
              "Bonded stake an account needs to register as a validator and to vote."),
    ParamSpec("datanet_max_records_per_tx", 1_000, 1, p.MAX_LIST, "records",
              "Most records one contribute, gate_verdict or vote transaction may list."),
    ParamSpec("datanet_vote_slash_bps", 1_000, 0, 100_000, "basis points of stake_per_record",
              "Slash of a vote against a record's outcome, taken from the voter's bonded stake."),
    ParamSpec("datanet_max_gatekeepers", 16, 1, 1_000, "accounts", "Most gatekeepers one Datanet may have."),
    ParamSpec("datanet_max_validators", 256, 1, 10_000, "accounts", "Most validators one Datanet may register."),
    ParamSpec("datanet_rep_contributor_weight", 1_000_000, *_REP,
              "Reputation evidence a contributor gains (accepted) or loses (rejected) per decided record."),
    ParamSpec("datanet_rep_gate_weight", 1_000_000, *_REP,
              "Reputation evidence a contributor loses per record rejected by a quality gate."),
    ParamSpec("datanet_rep_validator_weight", 1_000_000, *_REP,
              "Reputation evidence a validator gains (voted with the outcome) or loses (against) per vote."),
]


class DatanetModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="datanet",
            number=NUMBER,
            tx_types=[
                TxType(p.CREATE, "create_datanet", p.CREATE_CODEC, txs.apply_create,
                       "Open a Datanet; the sender becomes its owner and first gatekeeper."),
                TxType(p.ADD_GATEKEEPER, "add_gatekeeper", p.ADD_GATEKEEPER_CODEC, txs.apply_add_gatekeeper,
                       "Let another key post gate verdicts (owner only)."),
                TxType(p.REGISTER_VALIDATOR, "register_validator", p.NAMED_CODEC, txs.apply_register_validator,
                       "Join a Datanet's validators; needs datanet_validator_min_stake bonded."),
                TxType(p.CONTRIBUTE, "contribute", p.CONTRIBUTE_CODEC, txs.apply_contribute,
                       "Submit record hashes under their Merkle root, escrowing stake_per_record each."),
                TxType(p.GATE_VERDICT, "gate_verdict", p.GATE_VERDICT_CODEC, txs.apply_gate_verdict,
                       "Reject pending records that failed a quality gate (gatekeepers only)."),
                TxType(p.VOTE, "vote", p.VOTE_CODEC, txs.apply_vote,
                       "Accept or reject pending records (registered validators only)."),
                TxType(p.SNAPSHOT, "snapshot", p.NAMED_CODEC, txs.apply_snapshot,
                       "Freeze a version: the Merkle root over the accepted record hashes (owner only)."),
                TxType(p.RETRACT, "retract", p.RETRACT_CODEC, txs.apply_retract,
                       "Take accepted records out of paid use: the contributor withdraws its own, or the owner "
                       "takes records down for personal data, licence or harm."),
            ],
            params=list(PARAMS),
        )

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        """Decide every record whose voting window ends at this height, each exactly once."""
        key = due_key(ctx.height)
        if state.get(key) is None:
            return
        for name, hashes in list(due_groups(state, ctx.height)):
            cfg = get_config(state, name)
            if cfg is None:  # cannot happen: a queued record's Datanet exists
                continue
            counters = get_counters(state, name)
            for h in hashes:
                rec = get_record_state(state, name, h)
                if rec is not None and rec.status == Status.PENDING:
                    rules.finalise(state, ctx.height, cfg, counters, h, rec)
            put_counters(state, name, counters)
        state.delete(key)
