"""Running agents off the ledger: the registered tools, the deterministic checkers verifiers run, and the
runner that executes an agent on the serving engine.

`tools`, `checkers`, `arith` and `units` import no model code, so the economy simulation and a verifier
can call them without torch; only `runner` loads the serving engine.
"""
