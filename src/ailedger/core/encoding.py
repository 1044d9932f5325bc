"""Canonical byte encoding: one object, exactly one byte string, and back.

Why a schema codec instead of JSON or pickle: hashes and signatures are taken over bytes, so the
bytes must be unique for a value. Rules (written up in docs/encoding.md):

* unsigned integers are fixed-width big-endian (u8, u16, u32, u64); amounts are u64 capped at 2^63-1
  so they fit SQLite's signed 64-bit integers;
* fixed byte strings (b20, b32, b64) are written raw;
* variable byte strings, UTF-8 text and lists carry a u32 length (bytes, or items) and a maximum;
* a struct is its fields in declared order, with no tags and no padding;
* decoding rejects truncation, trailing bytes, over-long fields and invalid UTF-8, each with its
  own error code, so that malformed input can never reach the state machine.
"""

from __future__ import annotations

import struct
from dataclasses import fields, is_dataclass
from typing import Any, Generic, TypeVar

from ailedger.core import errors
from ailedger.core.errors import LedgerError

T = TypeVar("T")

MAX_AMOUNT = 2**63 - 1


class Codec(Generic[T]):
    """Encodes one kind of value into a bytearray and decodes it from a buffer at an offset."""

    def write(self, value: T, out: bytearray) -> None:
        raise NotImplementedError

    def read(self, buf: bytes, pos: int) -> tuple[T, int]:
        raise NotImplementedError

    def encode(self, value: T) -> bytes:
        out = bytearray()
        self.write(value, out)
        return bytes(out)

    def decode(self, buf: bytes) -> T:
        """Decode exactly one value; anything left over is an error, never silently ignored."""
        value, pos = self.read(buf, 0)
        if pos != len(buf):
            raise LedgerError(errors.TRAILING_BYTES, f"{len(buf) - pos} extra byte(s)")
        return value


def _need(buf: bytes, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise LedgerError(errors.TRUNCATED, f"needed {n} byte(s) at offset {pos}, have {len(buf) - pos}")


class UInt(Codec[int]):
    def __init__(self, width: int, maximum: int | None = None) -> None:
        self.width = width
        self.maximum = (1 << (8 * width)) - 1 if maximum is None else maximum
        self._fmt = struct.Struct({1: ">B", 2: ">H", 4: ">I", 8: ">Q"}[width])

    def write(self, value: int, out: bytearray) -> None:
        if type(value) is not int or value < 0 or value > self.maximum:
            raise LedgerError(errors.INT_RANGE, f"{value!r} not in 0..{self.maximum}")
        out += self._fmt.pack(value)

    def read(self, buf: bytes, pos: int) -> tuple[int, int]:
        _need(buf, pos, self.width)
        (value,) = self._fmt.unpack_from(buf, pos)
        if value > self.maximum:
            raise LedgerError(errors.INT_RANGE, f"{value} exceeds {self.maximum}")
        return value, pos + self.width


class FixedBytes(Codec[bytes]):
    def __init__(self, size: int) -> None:
        self.size = size

    def write(self, value: bytes, out: bytearray) -> None:
        if not isinstance(value, bytes) or len(value) != self.size:
            raise LedgerError(errors.BAD_ENCODING, f"expected exactly {self.size} bytes")
        out += value

    def read(self, buf: bytes, pos: int) -> tuple[bytes, int]:
        _need(buf, pos, self.size)
        return bytes(buf[pos:pos + self.size]), pos + self.size


_U32 = struct.Struct(">I")


def _read_len(buf: bytes, pos: int, maximum: int, what: str) -> tuple[int, int]:
    _need(buf, pos, 4)
    (n,) = _U32.unpack_from(buf, pos)
    if n > maximum:
        raise LedgerError(errors.OVERSIZED, f"{what} of {n} exceeds the limit {maximum}")
    return n, pos + 4


class VarBytes(Codec[bytes]):
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum

    def write(self, value: bytes, out: bytearray) -> None:
        if not isinstance(value, bytes):
            raise LedgerError(errors.BAD_ENCODING, "expected bytes")
        if len(value) > self.maximum:
            raise LedgerError(errors.OVERSIZED, f"{len(value)} bytes exceed the limit {self.maximum}")
        out += _U32.pack(len(value))
        out += value

    def read(self, buf: bytes, pos: int) -> tuple[bytes, int]:
        n, pos = _read_len(buf, pos, self.maximum, "byte string")
        _need(buf, pos, n)
        return bytes(buf[pos:pos + n]), pos + n


class Text(Codec[str]):
    """UTF-8 text; the byte length counts against the maximum."""

    def __init__(self, maximum: int) -> None:
        self._raw = VarBytes(maximum)

    def write(self, value: str, out: bytearray) -> None:
        if not isinstance(value, str):
            raise LedgerError(errors.BAD_ENCODING, "expected text")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from JSON "\ud800", is not text
            raise LedgerError(errors.BAD_ENCODING, "text is not valid Unicode") from exc
        self._raw.write(raw, out)

    def read(self, buf: bytes, pos: int) -> tuple[str, int]:
        raw, pos = self._raw.read(buf, pos)
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError as exc:
            raise LedgerError(errors.BAD_ENCODING, "text is not valid UTF-8") from exc


class ListOf(Codec[list[T]]):
    def __init__(self, item: Codec[T], maximum: int) -> None:
        self.item = item
        self.maximum = maximum

    def write(self, value: list[T], out: bytearray) -> None:
        if len(value) > self.maximum:
            raise LedgerError(errors.OVERSIZED, f"{len(value)} items exceed the limit {self.maximum}")
        out += _U32.pack(len(value))
        for v in value:
            self.item.write(v, out)

    def read(self, buf: bytes, pos: int) -> tuple[list[T], int]:
        n, pos = _read_len(buf, pos, self.maximum, "list")
        items: list[T] = []
        for _ in range(n):
            v, pos = self.item.read(buf, pos)
            items.append(v)
        return items, pos


class Record(Codec[T]):
    """A dataclass encoded as its fields in declaration order; the schema is the field list."""

    def __init__(self, cls: type[T], schema: dict[str, Codec[Any]]) -> None:
        if not is_dataclass(cls):
            raise TypeError("Record needs a dataclass")
        names = [f.name for f in fields(cls)]
        if names != list(schema):
            raise TypeError(f"schema {list(schema)} does not match fields {names} of {cls.__name__}")
        self.cls = cls
        self.items = list(schema.items())

    def write(self, value: T, out: bytearray) -> None:
        for name, codec in self.items:
            codec.write(getattr(value, name), out)

    def read(self, buf: bytes, pos: int) -> tuple[T, int]:
        values = []
        for _, codec in self.items:
            v, pos = codec.read(buf, pos)
            values.append(v)
        return self.cls(*values), pos


U8 = UInt(1)
U16 = UInt(2)
U32 = UInt(4)
U64 = UInt(8)
AMOUNT = UInt(8, MAX_AMOUNT)
B20 = FixedBytes(20)
B32 = FixedBytes(32)
B64 = FixedBytes(64)
