"""The compute market: jobs with escrowed budgets (train, serve, attribution), claimed and delivered by workers."""
