"""Encode integer arrays to bytes with integer tables, and back.

    data = encode(values, tables)              # one table for every value (fast path)
    data = encode(values, tables, indexes)     # table indexes[i] for values[i]
    values = decode(data, tables, count=n)     # or decode(data, tables, indexes)

Stream layout (all little-endian)::

    u8      0x10 | log2(lanes)          high nibble: stream version 1
    uvarint number of 32-bit words
    u64     final state of each lane
    u32     words, in the order the decoder reads them
    bytes   bypass code of escaped values (see bypass.py), to the end

The value count is not stored: the container records array shapes, and decoding with
the wrong count or tables is detected by the end-of-stream state check.
"""

from __future__ import annotations

import weakref

import numpy as np

from jaxcodec.entropy import bypass, rans
from jaxcodec.entropy.tables import CodingTables
from jaxcodec.errors import BitstreamError

STREAM_VERSION = 1
_kernel_cache: weakref.WeakKeyDictionary[CodingTables, rans.KernelTables] = weakref.WeakKeyDictionary()


def _kernel_tables(tables: CodingTables) -> rans.KernelTables:
    kt = _kernel_cache.get(tables)
    if kt is None:
        kt = _kernel_cache[tables] = rans.KernelTables(tables)
    return kt


def _check_indexes(indexes: np.ndarray | None, n: int, tables: CodingTables) -> np.ndarray | None:
    if indexes is None:
        if tables.count != 1:
            raise ValueError(f"these tables hold {tables.count} tables: pass `indexes` to pick one per value")
        return None
    rows = np.asarray(indexes)
    if not np.issubdtype(rows.dtype, np.integer):
        raise TypeError(f"indexes must be integers, got {rows.dtype}")
    rows = rows.reshape(-1)
    if rows.size != n:
        raise ValueError(f"got {rows.size} table indexes for {n} values")
    if n and (rows.min() < 0 or rows.max() >= tables.count):
        raise ValueError(f"table indexes must lie in [0, {tables.count})")
    return rows


def _value_count(indexes: np.ndarray | None, count: int | None) -> int:
    """How many values a decode asks for: one per table index, or `count` with one table."""
    if indexes is None and count is None:
        raise ValueError("pass `indexes` or `count` to say how many values to decode")
    n = int(np.asarray(indexes).size if indexes is not None else count)
    if count is not None and count != n:
        raise ValueError("count disagrees with the number of indexes")
    return n


def _uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise BitstreamError("entropy-coded stream header is truncated or corrupt")
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        shift += 7
        if not b & 0x80:
            return value, pos


def encode(values: np.ndarray, tables: CodingTables, indexes: np.ndarray | None = None) -> bytes:
    """Entropy-code integer `values` (any shape; read in C order)."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"values must be integers, got {values.dtype}")
    values = values.reshape(-1)
    if values.dtype == np.uint64:
        if values.size and values.max() > np.iinfo(np.int64).max:
            raise ValueError("values must fit in int64")
        values = values.astype(np.int64)
    n = values.size
    rows = _check_indexes(indexes, n, tables)
    if n == 0:
        return b""
    lanes = rans.lanes_for(n)
    states, pieces, escaped = rans.encode(values, rows, _kernel_tables(tables), lanes)
    tail = b""
    if escaped.size:
        esc_rows = np.zeros(escaped.size, np.int64) if rows is None else rows[escaped]
        tables.symbols_of(values[escaped].astype(np.int64), esc_rows)  # raises without an escape symbol
        tail = bypass.encode(tables.overflow_of(values[escaped].astype(np.int64), esc_rows))
    head = bytes([(STREAM_VERSION << 4) | (lanes.bit_length() - 1)]) + _uvarint(sum(p.size for p in pieces))
    words = [p.astype("<u4", copy=False) for p in pieces]  # no-op on little-endian hosts
    return b"".join([head, states.astype("<u8", copy=False), *words, tail])


def _parse(data: bytes, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A stream of n > 0 values: lane states, words, and where the bypass tail begins."""
    if not data:
        raise BitstreamError("entropy-coded stream is empty")
    version, lanes_log2 = data[0] >> 4, data[0] & 0x0F
    if version != STREAM_VERSION:
        raise BitstreamError(f"unknown entropy-coded stream version {version}")
    lanes = 1 << lanes_log2
    if lanes != rans.lanes_for(n):
        raise BitstreamError(f"stream has {lanes} lanes where {n} values need {rans.lanes_for(n)}")
    nwords, pos = _read_uvarint(data, 1)
    end = pos + 8 * lanes + 4 * nwords
    if end > len(data):
        raise BitstreamError(f"entropy-coded stream is truncated: {len(data)} bytes, need at least {end}")
    states = np.frombuffer(data, "<u8", lanes, pos).astype(np.uint64)
    if np.any(states < rans.STATE_LOW):
        raise BitstreamError("entropy-coded stream is corrupt: invalid coder state")
    return states, np.frombuffer(data, "<u4", nwords, pos + 8 * lanes), end


def decode(data: bytes, tables: CodingTables, indexes: np.ndarray | None = None, *,
           count: int | None = None, dtype: type = np.int32) -> np.ndarray:
    """Decode a stream written by `encode` back to a 1-D array.

    Give `indexes` (one table per value, as at encoding) or `count` (with one table).
    Raises BitstreamError when the data is truncated, corrupt or coded with other tables.
    """
    n = _value_count(indexes, count)
    rows = _check_indexes(indexes, n, tables)
    dtype = np.dtype(dtype)
    if dtype not in (np.int32, np.int64):
        raise ValueError("dtype must be int32 or int64")
    data = bytes(data)
    if n == 0:
        if data:
            raise BitstreamError("stream holds data but zero values were expected")
        return np.zeros(0, dtype)
    states, words, end = _parse(data, n)
    out = np.empty(n, dtype)
    escaped = rans.decode(states, words, n, rows, _kernel_tables(tables), out)
    tail = data[end:]
    if escaped.size:
        overflow = bypass.decode(tail, escaped.size)
        if len(tail) != -(-bypass.cost_bits(overflow) // 8):
            raise BitstreamError("escape (bypass) data has the wrong length")
        esc_rows = np.zeros(escaped.size, np.int64) if rows is None else rows[escaped]
        values = tables.values_from_overflow(overflow, esc_rows)
        if dtype == np.int32 and (values.min() < -2**31 or values.max() >= 2**31):
            raise ValueError("decoded values exceed int32: call decode(..., dtype=np.int64)")
        out[escaped] = values
    elif tail:
        raise BitstreamError("entropy-coded stream has trailing bytes")
    return out


def join(parts: list[bytes]) -> bytes:
    """Streams decoded one after another (e.g. each with tables the previous ones give),
    each behind its length as a uvarint."""
    return b"".join(_uvarint(len(p)) + p for p in parts)


def split(data: bytes, count: int) -> list[bytes]:
    """The `count` streams `join` wrote; raises BitstreamError if the bytes disagree."""
    parts, pos = [], 0
    for _ in range(count):
        n, pos = _read_uvarint(data, pos)
        if pos + n > len(data):
            raise BitstreamError("entropy-coded streams are truncated")
        parts.append(bytes(data[pos:pos + n]))
        pos += n
    if pos != len(data):
        raise BitstreamError("entropy-coded streams have trailing bytes")
    return parts


class StreamReader:
    """Reads the n values of one stream in consecutive segments, each with its own tables,
    where a segment's tables depend on the values before it (e.g. a codebook's context is
    the codebooks decoded before it). The writer codes all segments in one `encode` call,
    their tables stacked; one stream costs one header and one flush, not one per segment.
    Tables with an escape symbol are not supported here.
    """

    def __init__(self, data: bytes, n: int):
        data = bytes(data)
        if n < 1:
            raise ValueError("a stream read in segments holds at least one value")
        states, words, end = _parse(data, n)
        if end != len(data):
            raise BitstreamError("entropy-coded stream has trailing bytes")
        self._decoder = rans.Decoder(states, words, n)

    def read(self, tables: CodingTables, indexes: np.ndarray | None = None, *, count: int | None = None
             ) -> np.ndarray:
        """The next values (int64): one per entry of `indexes`, or `count` with one table."""
        if tables.escape:
            raise ValueError("StreamReader reads tables without an escape symbol")
        n = _value_count(indexes, count)
        rows = _check_indexes(indexes, n, tables)
        if self._decoder.done + n > self._decoder.n:
            raise BitstreamError("entropy-coded stream holds fewer values than its segments ask for")
        out = np.empty(n, np.int64)
        self._decoder.read(n, rows, _kernel_tables(tables), out)
        return out

    def finish(self) -> None:
        """Raise BitstreamError unless the stream ended exactly where the segments did."""
        self._decoder.finish()
