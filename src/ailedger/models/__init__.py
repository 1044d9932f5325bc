"""Models on the ledger: registered base models and published LoRA adapters with their provenance."""
