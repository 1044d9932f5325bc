"""Payable inference on the ledger: prepaid balances, API keys bound to accounts, and inference receipts."""
