"""The agents ledger module (number 8): agents, tasks with escrowed fees, sampled verification, slashing,
suspension, and pay and routing by verified reliability.

Transactions: 0x0801 agent_register, 0x0802 agent_update, 0x0803 agent_retire, 0x0804 agent_reinstate,
0x0805 verifier_register, 0x0806 task_post, 0x0807 task_result, 0x0808 task_verdict. Rules and
formulas: docs/agents.md (and reliability.py).
"""

from __future__ import annotations

from ailedger.agents import payloads as p
from ailedger.agents import rules, txs
from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.chain.state import Journal
from ailedger.core.encoding import MAX_AMOUNT

NUMBER = 8

PARAMS = [
    ParamSpec("agents_min_stake", 1_000_000, 1, MAX_AMOUNT, "micro-units per active agent",
              "Bonded stake an operator keeps for each of its active agents; tasks are refused below it."),
    ParamSpec("agents_slash_bps", 2_000, 0, 100_000, "basis points of agents_min_stake",
              "Stake slashed from the operator (into the agents pool) for each verified failure."),
    ParamSpec("agents_suspend_floor_bps", 3_000, 0, 9_999, "basis points of verified score",
              "An agent whose verified score falls below this after a failure is suspended."),
    ParamSpec("agents_suspension_blocks", 100, 1, 10_000_000, "blocks",
              "Blocks a suspended agent waits before its operator may reinstate it."),
    ParamSpec("agents_verify_min_bps", 2_000, 0, 10_000, "basis points of tasks",
              "Share of a perfectly reliable agent's results drawn for verification.",
              at_most="agents_verify_max_bps"),
    ParamSpec("agents_verify_max_bps", 10_000, 0, 10_000, "basis points of tasks",
              "Share of a wholly unreliable agent's results drawn for verification."),
    ParamSpec("agents_verify_window_blocks", 20, 1, 10_000_000, "blocks",
              "Blocks after a result during which pay is held and a sampled task takes its verdict."),
    ParamSpec("agents_max_result_blocks", 1_000, 1, 10_000_000, "blocks",
              "Longest result window a task may ask for."),
    ParamSpec("agents_full_pay_score_bps", 8_000, 1, 10_000, "basis points of verified score",
              "Verified score at which an agent is paid its whole fee; below, pay scales down in proportion."),
    ParamSpec("agents_verifier_min_stake", 1_000_000, 1, MAX_AMOUNT, "micro-units",
              "Bonded stake a verifier keeps to post verdicts."),
    ParamSpec("agents_verifier_reward", 20_000, 0, MAX_AMOUNT, "micro-units per verdict",
              "Paid to the verifier of each verdict from the pool of slashed stake, as far as the pool holds it."),
]


class AgentsModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="agents",
            number=NUMBER,
            tx_types=[
                TxType(p.REGISTER, "agent_register", p.AGENT_SPEC_CODEC, txs.apply_register,
                       "Register an agent (model, policy hash, tools, task types, price); the sender operates it."),
                TxType(p.UPDATE, "agent_update", p.AGENT_SPEC_CODEC, txs.apply_update,
                       "Replace an agent's model, policy, tools, task types and price (operator only)."),
                TxType(p.RETIRE, "agent_retire", p.NAMED_CODEC, txs.apply_retire,
                       "Retire an agent for good (operator only); its taken tasks run to their end."),
                TxType(p.REINSTATE, "agent_reinstate", p.NAMED_CODEC, txs.apply_reinstate,
                       "Bring a suspended agent back after its suspension, with its stake restored."),
                TxType(p.REGISTER_VERIFIER, "verifier_register", p.REGISTER_VERIFIER_CODEC,
                       txs.apply_register_verifier, "Register as a verifier (agents_verifier_min_stake bonded)."),
                TxType(p.POST_TASK, "task_post", p.POST_TASK_CODEC, txs.apply_post_task,
                       "Post a task to an agent (or route it) with its fee in escrow and its verification spec."),
                TxType(p.SUBMIT_RESULT, "task_result", p.SUBMIT_RESULT_CODEC, txs.apply_submit_result,
                       "Submit a task's result hash within its window (the agent's operator only)."),
                TxType(p.VERDICT, "task_verdict", p.VERDICT_CODEC, txs.apply_verdict,
                       "Post a verifier's verdict on a task drawn for verification."),
            ],
            params=list(PARAMS),
        )

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        rules.end_block(state, ctx.height, ctx.seed)
