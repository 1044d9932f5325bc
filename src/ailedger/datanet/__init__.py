"""Datanets: community datasets with quality gates, validator votes, stake, slashing and reputation.

On the ledger: the `datanet` module (its transactions, state and rules). Off the ledger: readers for
contribution files, the automatic quality gates, and the synthetic data generator.
"""
