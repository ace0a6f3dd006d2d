"""Bypass code for escaped values: any uint64 round-trips, fully vectorized.

Layout: one 7-bit length n = bit_length(u) per value (all lengths first), then for each
value its n - 1 bits below the implicit leading one, MSB first; zero-padded to a byte.
Putting all lengths first lets the decoder find every payload with one cumsum instead of
parsing the stream serially. Cost: 7 + max(n - 1, 0) bits per value.
"""

from __future__ import annotations

import numpy as np

from jaxcodec.errors import BitstreamError

LENGTH_BITS = 7


def bit_length(u: np.ndarray) -> np.ndarray:
    """Exact bit length of each uint64 (0 for 0), without float rounding."""
    v = np.asarray(u, dtype=np.uint64).copy()
    n = np.zeros(v.shape, np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= np.uint64(1 << s)
        n += s * big
        v = np.where(big, v >> np.uint64(s), v)
    return n + (v > 0)


def cost_bits(u: np.ndarray) -> int:
    n = bit_length(u)
    return int(LENGTH_BITS * n.size + np.maximum(n - 1, 0).sum())


def _pack_fields(values: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Concatenate the low `widths[i]` bits of each value, MSB first, as a bit array."""
    total = int(widths.sum())
    if total == 0:
        return np.zeros(0, np.uint8)
    owner = np.repeat(np.arange(len(values)), widths)
    start = np.cumsum(widths) - widths
    shift = (widths[owner] - 1 - (np.arange(total) - start[owner])).astype(np.uint64)
    return ((values[owner] >> shift) & np.uint64(1)).astype(np.uint8)


def encode(u: np.ndarray) -> bytes:
    u = np.asarray(u, dtype=np.uint64).reshape(-1)
    n = bit_length(u)
    lengths = _pack_fields(n.astype(np.uint64), np.full(n.shape, LENGTH_BITS))
    body_width = np.maximum(n - 1, 0)
    body = _pack_fields(u & ((np.uint64(1) << body_width.astype(np.uint64)) - np.uint64(1)), body_width)
    return np.packbits(np.concatenate([lengths, body])).tobytes()


def _read_fields(bits: np.ndarray, offset: int, widths: np.ndarray) -> np.ndarray:
    total = int(widths.sum())
    if offset + total > bits.size:
        raise BitstreamError("escape (bypass) data is truncated")
    out = np.zeros(widths.shape, np.uint64)
    if total == 0:
        return out
    owner = np.repeat(np.arange(len(widths)), widths)
    start = np.cumsum(widths) - widths
    shift = (widths[owner] - 1 - (np.arange(total) - start[owner])).astype(np.uint64)
    np.bitwise_or.at(out, owner, bits[offset:offset + total].astype(np.uint64) << shift)
    return out


def decode(data: bytes, count: int) -> np.ndarray:
    """Read `count` values; raises BitstreamError when the data cannot hold them."""
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    n = _read_fields(bits, 0, np.full(count, LENGTH_BITS)).astype(np.int64)
    if np.any(n > 64):
        raise BitstreamError("escape (bypass) data is corrupt: bit length above 64")
    body_width = np.maximum(n - 1, 0)
    body = _read_fields(bits, LENGTH_BITS * count, body_width)
    lead = np.where(n > 0, np.uint64(1) << np.maximum(n - 1, 0).astype(np.uint64), np.uint64(0))
    return lead | body
