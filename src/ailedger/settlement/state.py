"""Settlement state: earnings accounts, per-block earnings lines, vesting, block summaries and totals.

Layout (every key under `stl/`):
  stl/acct/<b20 address>            -> Earnings: balance (withdrawable), held (vesting), lifetime sums, lines
  stl/na, stl/aidx/<u64 i>          -> number of earnings accounts; the i-th address (first-credit order)
  stl/lh/<b20 address>/<u64 n>      -> u64 height of the address's n-th earnings line (heights increase)
  stl/line/<b20 address>/<u64 h>    -> Line: what block h paid the address, per (Datanet, model, role)
  stl/av/<b20 address>              -> the address's vesting entries, VEST_ENTRY each (release order)
  stl/vest/<u64 height>             -> VEST_ENTRY each (address first): vesting due at the end of that block
  stl/blk/<u64 h>                   -> BlockSummary: the receipt range block h settled and where the money went
  stl/inel/<u64 h>                  -> (u8 len | Datanet | b32 record) of records named by block h's receipts
                                       that were not accepted when it settled (so the receipts behind a line
                                       can be recomputed exactly later, whatever the records' later fate)
  stl/totals                        -> Totals: lifetime sums that the conservation check balances

Why per (address, block) lines and not per receipt: a block may settle a million receipts paying the
same thousand contributors; one line per payee per block is one write per payee, and the receipts
behind a line are recomputed from the block's receipts (stl/blk gives their range) with the same rule.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.core.encoding import AMOUNT, U8, U32, U64, ListOf, Record, Text

_U64 = struct.Struct(">Q")
MAX_NAME = 64
MAX_LINE_ENTRIES = 100_000


class Role:
    """Why an address was paid (plain ints: the codec writes exact ints)."""

    DATA = 1  # a contributor, for an accepted record a receipt's shares named
    MODEL_OWNER = 2  # the adapter's owner
    COMPUTE = 3  # the serving provider that submitted the receipt
    VALIDATOR = 4  # a validator of the adapter's Datanet, pro rata to bonded stake
    RELEASED = 5  # vesting released back to a contributor
    FORFEITED = 6  # vesting a contributor lost (amount 0; `forfeited` says how much)
    FORFEIT_SHARE = 7  # a validator's part of a contributor's forfeited vesting


ROLE_NAMES = {1: "data", 2: "model_owner", 3: "compute", 4: "validator", 5: "released", 6: "forfeited",
              7: "forfeit_share"}


@dataclass
class Earnings:
    balance: int = 0  # withdrawable now (the `withdraw` transaction moves it to the spendable balance)
    held: int = 0  # vesting: paid to this address but held back by the quality gate
    earned: int = 0  # lifetime: credited to `balance` (directly, released from vesting, or forfeit shares)
    vested: int = 0  # lifetime: put into vesting
    forfeited: int = 0  # lifetime: vesting lost
    withdrawn: int = 0  # lifetime: moved to the spendable balance
    lines: int = 0  # number of earnings lines (the length of stl/lh/<address>/)


EARNINGS = Record(Earnings, {f: AMOUNT if f != "lines" else U64 for f in Earnings.__dataclass_fields__})


@dataclass(frozen=True)
class Entry:
    datanet: str  # "" for a base-only call
    model: str  # "" for a validator's pool share and vesting events (they are per Datanet)
    version: int
    role: int
    amount: int  # credited to the earnings balance
    held: int  # put into vesting
    forfeited: int  # vesting lost (role FORFEITED)
    count: int  # receipts (or, for data, receipt shares) behind the entry; vesting entries released or lost


ENTRY = Record(Entry, {"datanet": Text(MAX_NAME), "model": Text(MAX_NAME), "version": U32, "role": U8,
                       "amount": AMOUNT, "held": AMOUNT, "forfeited": AMOUNT, "count": U64})


@dataclass
class Line:
    entries: list[Entry] = field(default_factory=list)


LINE = Record(Line, {"entries": ListOf(ENTRY, MAX_LINE_ENTRIES)})


@dataclass
class BlockSummary:
    first_seq: int  # receipts with seq in [first_seq, end_seq) were settled by this block
    end_seq: int
    receipts: int  # of which charged something (a row each)
    settled: int  # escrow paid out for them
    earned: int  # credited to earnings balances
    held: int  # put into vesting
    refunded: int  # back to callers' prepaid balances
    pooled: int  # to Datanet validator pools (no validator with stake)
    released: int  # vesting released to contributors at this block
    forfeited: int  # vesting forfeited at this block (paid to validators or pooled)


SUMMARY = Record(BlockSummary, {f: U64 if "seq" in f or f == "receipts" else AMOUNT
                                for f in BlockSummary.__dataclass_fields__})


@dataclass
class Totals:
    settled: int = 0  # escrow paid out, ever
    earned: int = 0  # credited straight to earnings balances at settlement
    held: int = 0  # put into vesting at settlement
    refunded: int = 0  # refunded to callers' prepaid balances
    pooled: int = 0  # added to Datanet validator pools (settlement and forfeits)
    released: int = 0  # vesting released to its contributor
    forfeited: int = 0  # vesting forfeited
    forfeit_paid: int = 0  # of the forfeited: credited to validators' earnings (the rest is pooled)
    withdrawn: int = 0  # earnings moved to spendable balances
    receipts: int = 0  # receipts settled that charged something


TOTALS = Record(Totals, {f: AMOUNT if f != "receipts" else U64 for f in Totals.__dataclass_fields__})

VEST_ENTRY = struct.Struct(">20sQQ")  # address, release height, amount; then u8 len | Datanet name

# -- keys -----------------------------------------------------------------------------------------

ACCOUNT_COUNT_KEY = b"stl/na"
TOTALS_KEY = b"stl/totals"


def account_key(address: bytes) -> bytes:
    return b"stl/acct/" + address


def account_index_key(i: int) -> bytes:
    return b"stl/aidx/" + _U64.pack(i)


def line_height_key(address: bytes, n: int) -> bytes:
    return b"stl/lh/" + address + b"/" + _U64.pack(n)


def line_key(address: bytes, height: int) -> bytes:
    return b"stl/line/" + address + b"/" + _U64.pack(height)


def address_vesting_key(address: bytes) -> bytes:
    return b"stl/av/" + address


def vest_key(height: int) -> bytes:
    return b"stl/vest/" + _U64.pack(height)


def summary_key(height: int) -> bytes:
    return b"stl/blk/" + _U64.pack(height)


def ineligible_key(height: int) -> bytes:
    return b"stl/inel/" + _U64.pack(height)


# -- typed get/put --------------------------------------------------------------------------------

def get_u64(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def get_earnings(state: Reader, address: bytes) -> Earnings:
    raw = state.get(account_key(address))
    return EARNINGS.decode(raw) if raw else Earnings()


def put_earnings(state: Journal, address: bytes, e: Earnings) -> None:
    """Store the account, listing its address the first time it is stored."""
    key = account_key(address)
    if state.get(key) is None:
        n = get_u64(state, ACCOUNT_COUNT_KEY)
        state.set(account_index_key(n), address)
        state.set(ACCOUNT_COUNT_KEY, _U64.pack(n + 1))
    state.set(key, EARNINGS.encode(e))


def account_addresses(state: Reader) -> list[bytes]:
    return [state.get(account_index_key(i)) or b"" for i in range(get_u64(state, ACCOUNT_COUNT_KEY))]


def get_line(state: Reader, address: bytes, height: int) -> Line | None:
    raw = state.get(line_key(address, height))
    return LINE.decode(raw) if raw else None


def line_height(state: Reader, address: bytes, n: int) -> int:
    return get_u64(state, line_height_key(address, n))


def get_totals(state: Reader) -> Totals:
    raw = state.get(TOTALS_KEY)
    return TOTALS.decode(raw) if raw else Totals()


def put_totals(state: Journal, t: Totals) -> None:
    state.set(TOTALS_KEY, TOTALS.encode(t))


def get_summary(state: Reader, height: int) -> BlockSummary | None:
    raw = state.get(summary_key(height))
    return SUMMARY.decode(raw) if raw else None


# -- vesting entries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Vesting:
    address: bytes
    release_height: int
    amount: int
    datanet: str


def pack_vesting(entries: list[Vesting]) -> bytes:
    out = bytearray()
    for v in entries:
        name = v.datanet.encode()
        out += VEST_ENTRY.pack(v.address, v.release_height, v.amount) + bytes([len(name)]) + name
    return bytes(out)


def unpack_vesting(raw: bytes | None) -> list[Vesting]:
    out = []
    pos = 0
    data = raw or b""
    while pos < len(data):
        address, release, amount = VEST_ENTRY.unpack_from(data, pos)
        pos += VEST_ENTRY.size
        n = data[pos]
        out.append(Vesting(address, release, amount, data[pos + 1:pos + 1 + n].decode()))
        pos += 1 + n
    return out


def ineligible_records(state: Reader, height: int) -> set[tuple[str, bytes]]:
    """The (Datanet, record) pairs block `height`'s receipts named that were not accepted when it settled."""
    raw = state.get(ineligible_key(height)) or b""
    out = set()
    pos = 0
    while pos < len(raw):
        n = raw[pos]
        out.add((raw[pos + 1:pos + 1 + n].decode(), raw[pos + 1 + n:pos + 33 + n]))
        pos += 33 + n
    return out


def pack_ineligible(pairs: list[tuple[str, bytes]]) -> bytes:
    return b"".join(bytes([len(d.encode())]) + d.encode() + r for d, r in pairs)
