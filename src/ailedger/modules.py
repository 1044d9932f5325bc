"""The assembled runtime: which modules make up the ledger.

This sits above every domain package so the chain layer never imports a domain: later modules
(datanets, models, market, billing, agents, governance) are added to `default_modules` here.
"""

from __future__ import annotations

from ailedger.agents.module import AgentsModule
from ailedger.billing.module import BillingModule
from ailedger.chain.accounts import AccountsModule
from ailedger.chain.module import Module
from ailedger.chain.runtime import Runtime
from ailedger.datanet.module import DatanetModule
from ailedger.governance.module import GovernanceModule
from ailedger.market.module import MarketModule
from ailedger.models.module import ModelsModule
from ailedger.reputation.module import ReputationModule
from ailedger.settlement.module import SettlementModule


def default_modules() -> list[Module]:
    return [AccountsModule(), ReputationModule(), DatanetModule(), ModelsModule(), MarketModule(),
            BillingModule(), SettlementModule(), AgentsModule(), GovernanceModule()]


def default_runtime() -> Runtime:
    return Runtime(default_modules())
