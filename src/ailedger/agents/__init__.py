"""Agents: registered agents (a model, a policy, tools, a price, a bonded operator), tasks paid from escrow,
sampled verification by bonded verifiers, slashing, suspension, and pay and routing by verified reliability.

Rules: docs/agents.md. The off-ledger half (tools, checkers, running an agent on the serving engine)
lives in `ailedger.agentrun`.
"""
