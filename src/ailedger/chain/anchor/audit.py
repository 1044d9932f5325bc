"""`anchor verify`: replay the local chain and hold every anchored block to its anchor.

Why replay rather than compare stored headers: a header row proves nothing about the transactions
and state stored beside it. Replaying from genesis re-derives every root from the stored
transactions; an anchored block must then have exactly the anchored hash and roots. The first block
that fails either test is named: from there on the local data is not what was anchored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ailedger.chain.anchor.history import BrokenBlock, ChainReader, Progress, replay
from ailedger.chain.anchor.record import Anchor, covering
from ailedger.chain.runtime import Runtime
from ailedger.core import errors
from ailedger.core.errors import LedgerError


@dataclass(frozen=True)
class AnchorReport:
    ok: bool
    anchors: int  # anchors posted on the EVM chain
    anchors_checked: int  # of those, how many matched their replayed block
    blocks_replayed: int
    head_height: int
    last_anchored: int
    state_rows_checked: bool  # False when the node committed a block while we read the stored state
    first_bad_height: int | None = None
    error: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def verify_anchors(reader: ChainReader, runtime: Runtime, anchors: list[Anchor],
                   progress: Progress | None = None) -> AnchorReport:
    """Replay up to the head; stop at the first block that does not replay or differs from its anchor."""
    top = reader.height()
    by_height = {a.height: a for a in anchors}
    last = max(by_height, default=0)
    checked = 0
    replayed = 0

    def failed(height: int, code: errors.ErrorCode, detail: str) -> AnchorReport:
        return AnchorReport(False, len(anchors), checked, replayed, top, last, False, height, code.name, detail)

    previous = 0
    try:
        for header, _ in replay(reader, runtime, top, progress):
            replayed = header.height
            a = by_height.get(header.height)
            if a is None:
                continue
            if not a.matches(header):
                return failed(header.height, errors.ANCHOR_MISMATCH,
                              f"block {header.height}'s hash or roots differ from its anchor (EVM block "
                              f"{a.evm_block}); the chain was rewritten in blocks {previous + 1}..{header.height}")
            checked += 1
            previous = header.height
    except BrokenBlock as broken:
        cover = covering(anchors, broken.height)
        cause = f"{broken.cause.code.name}: {broken.cause.detail}"
        if cover is None:  # past the last anchor: plain corruption, nothing anchored is contradicted
            return failed(broken.height, broken.cause.code, cause)
        return failed(broken.height, errors.ANCHOR_MISMATCH,
                      f"block {broken.height} no longer replays ({cause}); the anchor at height {cover.height} "
                      "vouches for it")
    if last > top:
        return failed(top + 1, errors.ANCHOR_MISMATCH,
                      f"blocks up to {last} are anchored but the local chain ends at {top}")
    return _check_stored_state(reader, anchors, top, checked, last)


def _check_stored_state(reader: ChainReader, anchors: list[Anchor], top: int, checked: int, last: int) -> AnchorReport:
    """The stored state rows must hash to the replayed head's state root (unless the head moved meanwhile).

    The replay above already held block `top`'s header to the state its blocks give, so comparing
    the stored rows' root with that header's state root compares them with the replayed state.
    """
    try:
        stored_root = reader.load_state().root()
        moved = reader.height() != top
    except LedgerError as exc:
        return AnchorReport(False, len(anchors), checked, top, top, last, True, top, errors.ANCHOR_MISMATCH.name,
                            f"the stored state rows do not load: {exc.detail}")
    if moved:  # a node committed a block while we read: the rows are a later state, not comparable
        return AnchorReport(True, len(anchors), checked, top, top, last, False)
    if stored_root != reader.header(top).state_root:
        return AnchorReport(False, len(anchors), checked, top, top, last, True, top, errors.ANCHOR_MISMATCH.name,
                            f"the stored state rows differ from the state that block {top} replays to")
    return AnchorReport(True, len(anchors), checked, top, top, last, True)
