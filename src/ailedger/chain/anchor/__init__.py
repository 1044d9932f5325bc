"""Anchoring: the ledger's block hashes and roots posted to an EVM contract, and proofs that lean on them.

Why an EVM chain: a ledger operator can rewrite its own database; it cannot rewrite a public chain.
Every N blocks the anchorer posts (height, block hash, state root, receipts root) to `LedgerAnchor`
(evm/LedgerAnchor.sol). From then on `verify` catches any later change to the local data, and a
receipt or an account is provable to someone who holds nothing but the EVM chain.

Rooms: `record` (what one anchor holds and when one is due), `artifact` (the compiled contract),
`evmkey` (the anchorer's key), `contract` (web3.py calls, imported lazily so plain ledger use never
pays for web3), `poster` (the `anchor start` loop), `audit` (replay and compare), `proof` and
`checkproof` (build a proof document; check one against the EVM chain alone). This package imports
only ailedger.core and ailedger.chain; the CLI hands it the runtime to replay with.
"""
