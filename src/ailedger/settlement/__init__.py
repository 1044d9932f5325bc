"""Settlement: every block's receipts split exactly between contributors, model owners, providers and validators."""
