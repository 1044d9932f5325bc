"""The ledger: transactions, the deterministic state machine, blocks, stores, node and proofs."""
