"""Where a search query leads: one box for addresses, heights, hashes and names.

Why one box that guesses: a reader pastes whatever they hold (an address from a wallet, a receipt
id from an API answer, a hash from a log) and should not have to know its kind first. Each guess is
one keyed lookup, tried in a fixed order, so a search costs the same on any length of chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from ailedger.billing.state import receipt_key
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.datanet import views as datanet_views
from ailedger.governance.state import proposal_count
from ailedger.models import views as model_views
from ailedger.web import gov_pages
from ailedger.web.history import History
from ailedger.web.source import BlockSource

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
MAX_QUERY = 200


def find(query: str, state: Reader, store: BlockSource, history: History,
         param_names: Mapping[str, object] | None = None) -> str:
    """The page URL for `query`, or not_found saying what was tried."""
    q = query.strip()
    if not q:
        raise LedgerError(errors.BAD_REQUEST, "type an address, a block height, a hash or a name to search for")
    if len(q) > MAX_QUERY:
        raise LedgerError(errors.BAD_REQUEST, f"a search is at most {MAX_QUERY} characters")
    if q.isdigit():
        height = int(q)
        if height <= store.height():
            return f"/blocks/{height}"
        raise LedgerError(errors.NOT_FOUND, f"no block at height {height} yet (the chain is at {store.height()})")
    if q.lower().startswith("al1"):
        return f"/accounts/{encode_address(decode_address(q.lower()))}"
    if _HEX64.fullmatch(q):
        return _by_hash(bytes.fromhex(q), state, store, history)
    governed = gov_pages.search(q, param_names or {}, proposal_count(state))
    if governed is not None:
        return governed
    if datanet_views.get_datanet(state, q) is not None:
        return f"/datanets/{quote(q, safe='')}"
    try:
        adapter = model_views.resolve(state, q, allow_retired=True)
    except LedgerError:
        pass
    else:
        return f"/models/{quote(adapter.ref, safe='')}"
    raise LedgerError(errors.NOT_FOUND, f"nothing is called {q!r}: not an address, height, hash, proposal, parameter, "
                                         "Datanet or model")


def _by_hash(h: bytes, state: Reader, store: BlockSource, history: History) -> str:
    """A 32-byte hash: a transaction, a receipt, a block or a record, in that order."""
    if store.find_tx(h) is not None:
        return f"/txs/{h.hex()}"
    if state.get(receipt_key(h)):
        return f"/answers/{h.hex()}"
    try:
        return f"/blocks/{store.block_height(h)}"
    except LedgerError:
        pass
    datanet = history.record_datanet(h)
    if datanet is not None:
        return f"/datanets/{quote(datanet, safe='')}/records/{h.hex()}"
    raise LedgerError(errors.NOT_FOUND, f"no transaction, receipt, block or record has the hash {h.hex()}")
