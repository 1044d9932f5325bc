"""Governance: every economic parameter changed only by an on-ledger proposal, a stake-weighted vote and a timelock."""
