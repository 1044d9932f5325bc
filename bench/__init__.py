"""Benchmarks that measure the real code paths of ailedger; each module exposes `run(quick) -> dict`."""
