"""The compute provider: a worker that bids on market orders, runs its leases on ModelFactory and the serving
engine, reports the work, and re-does other providers' work when the ledger draws it for a spot check."""
