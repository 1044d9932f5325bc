"""ailedger: an open ledger for the inputs of AI.

Layers, imported only downwards: interfaces (cli, api) -> engines -> domain -> chain -> core.
"""

__version__ = "0.1.0"
