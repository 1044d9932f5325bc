"""The `ailedger` command line: keys, chains, nodes, transactions, proofs, benchmarks and the demo.

Modules by concept: `main` (root app, global options, error handling), `output` (tables, JSON,
errors), `backend` (node over HTTP or a data directory), `keys`, `chain` (init, verify, node run),
`tx`, `query` (account, block, params, status, proof verify), `bench`, `demo`.
"""
