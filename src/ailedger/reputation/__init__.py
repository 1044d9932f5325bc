"""Reputation: a Beta score per account and role, decaying toward the prior, kept on the ledger.

`beta` holds the integer arithmetic (decay, score); `module` keeps the state and offers
`record_outcome` and `score_bps` to the modules above it (datanets now, the market and agents later).
"""
