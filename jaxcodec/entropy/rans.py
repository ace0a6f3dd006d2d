"""Interleaved rANS compiled with XLA: many coder lanes advance in lockstep in a lax.scan.

State x lies in [2**32, 2**64); frequencies have 16-bit precision; renormalization moves one
32-bit word, so each lane emits or consumes at most one word per symbol. With these bounds
the quotient ``x // f`` keeps >= 16 significant bits and the coding overhead over the
tables' information content is a few thousandths of a percent, plus 8 flush bytes per
lane, which is why the lane count grows with the stream length (``lanes_for``).

Symbol i sits at step ``i // lanes`` of lane ``i % lanes``. The encoder runs the steps
backwards and records, for every (step, lane), the word it pushed out and a flag; the
flagged words in (step, lane) order are exactly the order in which the decoder, running
forwards, pulls them in. A decoding step finds each lane's word by an exclusive prefix
count over the lanes that need one, done with popcounts on packed flags: XLA lowers
``cumsum`` to a tree of reduce-windows that costs several kernel launches per step.

Work goes through the kernels in chunks of 2**18 to 2**20 symbols: buffers stay cache-sized and
reused, memory stays bounded for any length, and the host compacts one chunk's words
while XLA encodes the next. Everything per symbol happens inside the loop body: extra
passes over a chunk cost more memory traffic than the arithmetic itself.

The division x // f runs as a float64 multiply by 1/f followed by an exact integer
correction, so results are identical on CPU and GPU (and far faster than a uint64 divide).
The kernels need 64-bit integers, so every call runs under ``jax.enable_x64(True)``; the
global JAX configuration is left alone.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcodec.entropy.tables import MAX_ALPHABET, PRECISION, CodingTables
from jaxcodec.errors import BitstreamError

STATE_LOW = 1 << 32
ENCODE_CHUNK = 1 << 18  # encoding is memory-bound: keep a chunk's buffers in L2
DECODE_CHUNK = 1 << 20  # decoding is bound by per-call and per-step overheads
MAX_LANES = 1024
SYMBOLS_PER_LANE = 16384
LUT_BUDGET_BYTES = 64 << 20  # above this, decode looks symbols up by binary search
LUT_MIN_USES = 256  # ... and below this many symbols per table (per-symbol tables never pay for one)
_ALIGN = 64  # XLA:CPU aliases host buffers aligned to 64 bytes instead of copying them
_SLOT_MASK = MAX_ALPHABET - 1


def lanes_for(n: int) -> int:
    """Lanes for a stream of n symbols: a power of two, about one per 16k symbols.

    Each lane costs 8 flush bytes, so short streams use one lane and long ones up to
    MAX_LANES (10M symbols: 512 lanes, 4 kB of flush). Depends on n only, so every device
    writes the same bytes.
    """
    lanes = 1
    while lanes < MAX_LANES and lanes * 2 * SYMBOLS_PER_LANE <= n:
        lanes *= 2
    return lanes


def steps_per_chunk(n: int, lanes: int, chunk_symbols: int) -> int:
    """Scan length of one kernel call: a power of two so few shapes get compiled.

    Chunking is invisible in the stream, so encoder and decoder may chunk differently.
    """
    steps = 1
    total = -(-n // lanes)
    while steps < total and steps * lanes < chunk_symbols:
        steps *= 2
    return steps


def aligned_empty(shape: int | tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialized array whose data is 64-byte aligned (zero-copy for XLA:CPU)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.empty(count * dtype.itemsize + _ALIGN, np.uint8)
    start = (-raw.ctypes.data) % _ALIGN
    return raw[start:start + count * dtype.itemsize].view(dtype).reshape(shape)


def _aligned_copy(a: np.ndarray) -> np.ndarray:
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out


class KernelTables:
    """CodingTables laid out for the kernels (host arrays, aligned for zero-copy).

    ``packed`` and ``bounds`` serve both directions; the decoder's symbol lookup (a
    2**16-entry table per coding table, or the cdf rows for binary search) is built on
    first use, so encoding never pays for it.
    """

    def __init__(self, tables: CodingTables):
        freqs, cdf = tables.freqs, tables.cdf
        if np.any(freqs >= MAX_ALPHABET):
            raise ValueError("a symbol with probability 1 cannot be coded; add an escape symbol")
        self.count, self.width = freqs.shape
        self._freqs = freqs
        packed = (freqs.astype(np.uint32) << 16) | np.where(freqs > 0, cdf, 0).astype(np.uint32)
        lo, hi = tables.coded_range
        self._packed2d = packed
        self.packed = _aligned_copy(packed.reshape(-1))  # uint32 [K*W]: freq << 16 | cdf
        # span << 32 | lo: values lo..lo+span code directly; symbol span + 1 is the escape
        # (or, for tables without one, lies outside the table)
        self.bounds = (((hi - lo) << 32) | (lo & 0xFFFFFFFF)).astype(np.int64)
        self._cdf = cdf

    def uses_lut(self, n: int) -> bool:
        """Whether decoding n symbols should build the 2**16-entry lookup of every table:
        it costs as much as binary search over about 256 symbols a table."""
        return self.count * MAX_ALPHABET * 8 <= LUT_BUDGET_BYTES and n >= LUT_MIN_USES * self.count

    @functools.cached_property
    def lut(self) -> np.ndarray:
        """uint64 [K * 2**16]: slot -> symbol << 32 | freq << 16 | cdf."""
        sym = np.repeat(np.tile(np.arange(self.width, dtype=np.int64), self.count), self._freqs.reshape(-1))
        row = np.repeat(np.arange(self.count), MAX_ALPHABET)
        return _aligned_copy((sym.astype(np.uint64) << np.uint64(32)) | self._packed2d[row, sym].astype(np.uint64))

    @functools.cached_property
    def cdf(self) -> np.ndarray:
        """uint32 [K * W] cdf rows (padding = 2**16) for binary-search decoding."""
        return _aligned_copy(np.where(self._freqs > 0, self._cdf, MAX_ALPHABET).astype(np.uint32).reshape(-1))


# ---------------------------------------------------------------------------------------
# kernels


def _gather(table: jax.Array, idx: jax.Array, row: jax.Array | None, width: int) -> jax.Array:
    return table[idx] if row is None else table[row * width + idx]


def _unpack_bounds(bounds: jax.Array, row: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    b = bounds[0] if row is None else bounds[row]
    return (b & 0xFFFFFFFF).astype(jnp.uint32).astype(jnp.int32), (b >> 32).astype(jnp.int32)


def _valid_mask(first, n, steps: int, lanes: int, partial: bool, lo=0):
    """Which (step, lane) slots hold a symbol of positions lo..n-1; None for full chunks
    (no masking cost)."""
    if not partial:
        return None
    pos = first + lax.broadcasted_iota(jnp.int64, (steps, lanes), 0) * lanes + \
        lax.broadcasted_iota(jnp.int64, (steps, lanes), 1)
    return (pos >= lo) & (pos < n)


def _exclusive_count(flags: jax.Array) -> tuple[jax.Array, jax.Array]:
    """For each lane, how many lanes before it are flagged; and the total."""
    lanes = flags.shape[0]
    blocks = -(-lanes // 32)
    padded = jnp.zeros(blocks * 32, bool).at[:lanes].set(flags) if blocks * 32 != lanes else flags
    bit = jnp.arange(32, dtype=jnp.uint32)
    packed = jnp.sum(padded.reshape(blocks, 32).astype(jnp.uint32) << bit, axis=1, dtype=jnp.uint32)
    per_block = lax.population_count(packed).astype(jnp.int32)
    blk = jnp.arange(blocks)
    before = jnp.sum(jnp.where(blk[None, :] < blk[:, None], per_block[None, :], 0), axis=1, dtype=jnp.int32)
    below = (jnp.uint32(1) << jnp.tile(bit, blocks)) - 1
    within = lax.population_count(jnp.repeat(packed, 32) & below).astype(jnp.int32)
    return (jnp.repeat(before, 32) + within)[:lanes], jnp.sum(per_block, dtype=jnp.int32)


@functools.partial(jax.jit, static_argnames=("steps", "lanes", "width", "partial"))
def _encode_chunk(x, values, rows, first, n, packed, bounds, *, steps, lanes, width, partial):
    """Encode one chunk (steps x lanes values, run backwards).

    Returns the new states, then step-major words, emit flags and escape flags.
    """
    v = values.reshape(steps, lanes)
    r = None if rows is None else rows.reshape(steps, lanes).astype(jnp.int32)
    valid = _valid_mask(first, n, steps, lanes, partial)

    def step(x, inp):
        v, r, ok = inp
        lo_r, span_r = _unpack_bounds(bounds, r)
        rel = v - lo_r
        out = rel.astype(jnp.uint64 if rel.dtype == jnp.int64 else jnp.uint32) > span_r.astype(jnp.uint32)
        sym = jnp.where(out, span_r + 1, rel.astype(jnp.int32))
        pc = _gather(packed, sym, r, width)
        f = (pc >> 16).astype(jnp.uint64)
        c = (pc & _SLOT_MASK).astype(jnp.uint64)
        emit = x >= (f << (64 - PRECISION))
        if ok is not None:
            emit, out = emit & ok, out & ok
        word = x.astype(jnp.uint32)
        x_in = jnp.where(emit, x >> 32, x)
        q = jnp.floor(x_in.astype(jnp.float64) * (1.0 / f.astype(jnp.float64))).astype(jnp.uint64)
        rem = (x_in - q * f).astype(jnp.int64)  # q is off by at most one either way
        q = jnp.where(rem < 0, q - 1, jnp.where(rem >= f.astype(jnp.int64), q + 1, q))
        x_out = (q << PRECISION) + (x_in - q * f) + c
        x = x_out if ok is None else jnp.where(ok, x_out, x)
        return x, (word, emit, out)

    x, (words, emits, escaped) = lax.scan(step, x, (v, r, valid), reverse=True)
    return x, words, emits, escaped


@functools.partial(jax.jit, static_argnames=("steps", "lanes", "width", "search_steps", "partial"))
def _decode_chunk(x, ptr, words, nwords, rows, first, n, packed, bounds, lut, cdf, lo=0, *,
                  steps, lanes, width, search_steps, partial):
    """Decode one chunk forwards (positions lo..n-1 of it); returns states, word pointer,
    values, escape flags."""
    r_all = None if rows is None else rows.reshape(steps, lanes).astype(jnp.int32)
    valid = _valid_mask(first, n, steps, lanes, partial, lo)

    def step(carry, inp):
        x, ptr = carry
        r, ok = inp
        slot = (x & _SLOT_MASK).astype(jnp.int32)
        if lut is not None:
            e = lut[slot] if r is None else lut[r * MAX_ALPHABET + slot]
            sym = (e >> 32).astype(jnp.int32)
            f = (e >> 16) & _SLOT_MASK
            c = e & _SLOT_MASK
        else:  # branchless binary search for the last cdf entry <= slot
            base = 0 if r is None else r * width
            sym = jnp.zeros_like(slot)
            for s in reversed(range(search_steps)):
                cand = sym + (1 << s)
                hit = (cand < width) & (cdf[base + jnp.minimum(cand, width - 1)] <= slot.astype(jnp.uint32))
                sym = jnp.where(hit, cand, sym)
            pc = packed[base + sym].astype(jnp.uint64)
            f, c = pc >> 16, pc & _SLOT_MASK
        x_new = f * (x >> PRECISION) + slot.astype(jnp.uint64) - c
        need = x_new < STATE_LOW
        if ok is not None:
            need = need & ok
        before, total = _exclusive_count(need)
        word = words[jnp.minimum(ptr + before, nwords)].astype(jnp.uint64)
        x_new = jnp.where(need, (x_new << 32) | word, x_new)
        x = x_new if ok is None else jnp.where(ok, x_new, x)
        return (x, ptr + total), sym

    (x, ptr), syms = lax.scan(step, (x, ptr), (r_all, valid), length=steps)
    lo_r, span_r = _unpack_bounds(bounds, r_all)
    hit = syms == span_r + 1
    return x, ptr, lo_r + syms, hit if valid is None else hit & valid


# ---------------------------------------------------------------------------------------
# host drivers


class _Stager:
    """Feeds chunks to XLA without copying when the caller's memory is already aligned.

    Otherwise chunks are copied into one of two aligned buffers, alternating, so a buffer
    is only refilled after the kernel that read it has finished (the pipeline syncs on
    chunk c's results before staging chunk c + 2).
    """

    def __init__(self, array: np.ndarray, chunk: int, dtype: np.dtype):
        self.array, self.chunk, self.dtype = array, chunk, np.dtype(dtype)
        self.buffers = [aligned_empty(chunk, self.dtype) for _ in range(2)]

    def get(self, c: int) -> jax.Array:
        part = self.array[c * self.chunk:(c + 1) * self.chunk]
        if part.size == self.chunk and part.dtype == self.dtype and part.ctypes.data % _ALIGN == 0:
            return jax.device_put(part)
        buf = self.buffers[c % 2]
        buf[:part.size] = part
        buf[part.size:] = 0
        return jax.device_put(buf)


def _kernel_dtype(a: np.ndarray) -> np.dtype:
    if a.dtype in (np.int32, np.int64):
        return a.dtype
    if np.issubdtype(a.dtype, np.integer) and np.iinfo(a.dtype).bits < 32:
        return np.dtype(np.int32)
    return np.dtype(np.int64)


def _pipeline(order, launch, collect) -> None:
    """Launch chunk kernels in order; collect each one's results on the host while the
    next one runs (JAX dispatch is asynchronous)."""
    pending = None
    for c in order:
        result = launch(c)
        if pending is not None:
            collect(*pending)
        pending = (c, result)
    if pending is not None:
        collect(*pending)


def encode(values: np.ndarray, rows: np.ndarray | None, kt: KernelTables, lanes: int
           ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Encode 1-D integer values (rows: table per value, or None for table 0).

    Returns final lane states (uint64 [lanes]), the words as a list of uint32 pieces whose
    concatenation is the decoding order (left unjoined: the caller copies them once into
    its output), and the ascending positions of the values that were escaped.
    """
    n = values.size
    steps = steps_per_chunk(n, lanes, ENCODE_CHUNK)
    chunk = steps * lanes
    nchunks = max(1, -(-n // chunk))
    pieces: list[np.ndarray] = [np.zeros(0, np.uint32)] * nchunks
    escaped: list[np.ndarray] = [np.zeros(0, np.int64)] * nchunks
    with jax.enable_x64(True):
        vals = _Stager(values, chunk, _kernel_dtype(values))
        rws = None if rows is None else _Stager(rows, chunk, np.int32)
        dev = [jax.device_put(a) for a in (kt.packed, kt.bounds)]
        x = jnp.full((lanes,), STATE_LOW, jnp.uint64)

        def launch(c: int):
            nonlocal x
            x, *result = _encode_chunk(
                x, vals.get(c), None if rws is None else rws.get(c), np.int64(c * chunk), np.int64(n),
                *dev, steps=steps, lanes=lanes, width=kt.width, partial=(c + 1) * chunk > n)
            return result

        def collect(c: int, result) -> None:
            words, emits, mask = (np.asarray(a).reshape(-1) for a in result)
            pieces[c] = np.compress(emits, words)
            escaped[c] = c * chunk + np.flatnonzero(mask)

        _pipeline(reversed(range(nchunks)), launch, collect)
        states = np.asarray(x).copy()
    return states, pieces, np.concatenate(escaped)


class Decoder:
    """Decodes a stream's n values in consecutive segments, each with its own tables: a
    segment's tables may depend on the values decoded before it (the encoder, knowing all
    values, coded the whole stream in one pass with every segment's tables).

    Symbol i sits at step i // lanes of lane i % lanes; a segment that starts or ends inside
    a step decodes only its own lanes of that step, which pull their words in the same
    (step, lane) order as one pass would, so the bytes are those of ``encode``.
    """

    def __init__(self, states: np.ndarray, words: np.ndarray, n: int):
        self.n, self.lanes, self.nwords = n, states.size, words.size
        padded = 1
        while padded < self.nwords + 1:  # bucket the length so few shapes get compiled
            padded *= 2
        word_buf = aligned_empty(padded, np.uint32)
        word_buf[:self.nwords] = words
        word_buf[self.nwords:] = 0
        with jax.enable_x64(True):
            self.words = jax.device_put(word_buf)
            self.x = jax.device_put(states.astype(np.uint64))
            self.ptr = jnp.int32(0)
        self.done = 0

    def read(self, count: int, rows: np.ndarray | None, kt: KernelTables, out: np.ndarray) -> np.ndarray:
        """Decode the next `count` values into `out` (int32 or int64) with table rows[i] of
        `kt` for the i-th; returns the positions (within the segment) of escapes."""
        lo, hi, lanes = self.done, self.done + count, self.lanes
        if hi > self.n:
            raise ValueError(f"asked for values up to {hi} of a stream of {self.n}")
        start = lo - lo % lanes  # first position of the step holding `lo`
        steps = steps_per_chunk(hi - start, lanes, DECODE_CHUNK)
        chunk = steps * lanes
        nchunks = max(1, -(-(hi - start) // chunk))
        if rows is not None and lo > start:  # slots of the step before `lo` are masked: any row will do
            rows = np.concatenate([np.zeros(lo - start, _kernel_dtype(rows)), rows.astype(_kernel_dtype(rows))])
        search_steps = max(1, int(np.ceil(np.log2(max(kt.width, 2)))))
        escaped: list[np.ndarray] = [np.zeros(0, np.int64)] * nchunks
        with jax.enable_x64(True):
            rws = None if rows is None else _Stager(rows, chunk, np.int32)
            lookup = (kt.lut, None) if kt.uses_lut(count) else (None, kt.cdf)
            dev = [None if a is None else jax.device_put(a) for a in (kt.packed, kt.bounds, *lookup)]

            def launch(c: int):
                first = start + c * chunk
                self.x, self.ptr, *result = _decode_chunk(
                    self.x, self.ptr, self.words, np.int32(self.nwords), None if rws is None else rws.get(c),
                    np.int64(first), np.int64(hi), *dev, np.int64(lo), steps=steps, lanes=lanes, width=kt.width,
                    search_steps=search_steps, partial=first < lo or first + chunk > hi)
                return result

            def collect(c: int, result) -> None:
                vals, mask = (np.asarray(a).reshape(-1) for a in result)
                first = start + c * chunk
                a, b = max(first, lo), min(first + chunk, hi)
                out[a - lo:b - lo] = vals[a - first:b - first]
                escaped[c] = a - lo + np.flatnonzero(mask[a - first:b - first])

            _pipeline(range(nchunks), launch, collect)
        self.done = hi
        return np.concatenate(escaped)

    def finish(self) -> None:
        """Raise BitstreamError unless every value was read, every word consumed and every
        lane is back in its initial state (catches corrupt or mismatched streams)."""
        with jax.enable_x64(True):
            if self.done != self.n or int(self.ptr) != self.nwords or np.any(np.asarray(self.x) != STATE_LOW):
                raise BitstreamError("entropy-coded data is corrupt or does not match these tables")


def decode(states: np.ndarray, words: np.ndarray, n: int, rows: np.ndarray | None, kt: KernelTables,
           out: np.ndarray) -> np.ndarray:
    """Decode n values into `out` (int32 or int64); returns the positions of escapes.

    Raises BitstreamError unless every lane ends in its initial state having read exactly
    all words, which catches corrupted or mismatched streams with high probability.
    """
    decoder = Decoder(states, words, n)
    escaped = decoder.read(n, rows, kt, out)
    decoder.finish()
    return escaped
