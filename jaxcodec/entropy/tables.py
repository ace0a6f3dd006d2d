"""Integer probability tables: the contract between entropy models and the coder.

A table assigns every symbol of a finite alphabet an integer frequency >= 1 summing to
exactly ``2**precision``. Many tables of different alphabet sizes share one zero-padded
matrix so the coder can pick a table per symbol. Tables built from continuous
location-scale distributions cover a finite support and fold both tails into a final
*escape* symbol; values outside the support are coded as the escape plus a bypass code.

Everything here is NumPy float64 with deterministic arithmetic (see ``detmath``), so the
encoder and decoder build bit-identical tables from the same stored parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from jaxcodec.entropy import detmath

PRECISION = 16
MAX_ALPHABET = 1 << PRECISION
Distribution = Literal["laplace", "gaussian", "logistic"]
DISTRIBUTIONS: tuple[str, ...] = ("laplace", "gaussian", "logistic")
_SQRT1_2 = 0.7071067811865476


def quantize_pmf(pmf: np.ndarray, sizes: np.ndarray | None = None,
                 precision: int = PRECISION) -> np.ndarray:
    """Turn probability rows ``[..., W]`` into integer frequencies (uint32).

    Each of the first ``sizes[k]`` entries of row k gets a frequency >= 1, the rest 0,
    and every row sums to exactly ``2**precision``. Rounding errors are repaired greedily
    where they cost the fewest bits (largest or smallest ``p / f``), which keeps the
    coding cost of quantization to a few thousandths of a percent for smooth pmfs.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    if pmf.ndim == 0 or pmf.shape[-1] == 0:
        raise ValueError("pmf must have at least one symbol along its last axis")
    lead, width = pmf.shape[:-1], pmf.shape[-1]
    p = pmf.reshape(-1, width)
    sizes = np.broadcast_to(np.asarray(width if sizes is None else sizes, dtype=np.int64), lead).reshape(-1)
    total = 1 << precision
    if np.any(sizes < 1) or np.any(sizes > min(width, total)):
        raise ValueError(f"alphabet sizes must lie in [1, min(width, 2**{precision})]")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("pmf entries must be finite and non-negative")
    valid = np.arange(width)[None, :] < sizes[:, None]
    # Exact integer arithmetic from here on: a float sum's rounding depends on the order
    # NumPy's SIMD kernels add in, which can differ between machines.
    p = np.where(valid, p, 0.0)
    peak = p.max(axis=1, keepdims=True)
    scaled = np.round(p / np.where(peak > 0, peak, 1.0) * 2.0 ** 40).astype(np.int64)
    scaled = np.where(peak > 0, scaled, valid.astype(np.int64))  # all-zero rows: uniform
    mass = scaled.sum(axis=1, keepdims=True)
    freq = np.where(valid, np.maximum(1, (scaled * total + mass // 2) // mass), 0)
    p = scaled.astype(np.float64)  # repair keys below are ratios: scale-free
    for _ in range(64):
        rows_left = np.flatnonzero(freq.sum(axis=1) != total)  # balanced rows are final: skip them
        if rows_left.size == 0:
            break
        f, pr, v = freq[rows_left], p[rows_left], valid[rows_left]
        deficit = total - f.sum(axis=1)
        # Gain of one more unit is about p/f bits; loss of one unit about p/(f-1).
        grow = np.where(v, pr / np.maximum(f, 1), -np.inf)
        shrink = np.where(v & (f > 1), pr / np.maximum(f - 1, 1), np.inf)
        key = np.where(deficit[:, None] > 0, -grow, shrink)
        order = np.argsort(key, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(width)[None, :].repeat(len(rows_left), 0), axis=1)
        eligible = np.where(deficit[:, None] > 0, v, v & (f > 1))
        n_eligible = eligible.sum(axis=1)
        step = np.minimum(np.abs(deficit), n_eligible)
        hit = eligible & (rank < step[:, None])
        freq[rows_left] = f + np.sign(deficit)[:, None] * hit
    else:
        _settle(freq, p, valid, total)
    return freq.reshape(*lead, width).astype(np.uint32)


def _settle(freq: np.ndarray, p: np.ndarray, valid: np.ndarray, total: int) -> None:
    """Finish rows the greedy repair left unbalanced (peaked pmfs: one dominant symbol
    with many at the floor of 1, where the repair moves one unit per pass).

    A surplus goes to the most probable symbol; a deficit is taken from the largest
    frequencies, down to the floor of 1, largest first. Exact for every pmf; rows the
    greedy pass balanced (all smooth pmfs) are untouched, so their tables do not change.
    """
    for r in np.flatnonzero(freq.sum(axis=1) != total):
        deficit = total - int(freq[r].sum())
        if deficit > 0:
            freq[r, int(np.argmax(np.where(valid[r], p[r], -1.0)))] += deficit
            continue
        for k in np.argsort(-freq[r], kind="stable"):
            take = min(-deficit, int(freq[r, k]) - 1)
            freq[r, k] -= take
            deficit += take
            if deficit == 0:
                break


@dataclass(frozen=True, eq=False)
class CodingTables:
    """K integer tables in one zero-padded matrix, ready for the coder.

    Table k codes the values ``offsets[k] + j`` for symbol j < ``sizes[k]`` (minus one when
    ``escape`` is set: the last symbol then stands for every value outside the table).
    """

    freqs: np.ndarray  # uint32 [K, W]
    offsets: np.ndarray  # int64 [K]
    sizes: np.ndarray  # int64 [K]
    escape: bool

    def __post_init__(self) -> None:
        freqs = np.atleast_2d(np.asarray(self.freqs, dtype=np.uint32))
        k, width = freqs.shape
        offsets = np.broadcast_to(np.asarray(self.offsets, dtype=np.int64), (k,)).copy()
        sizes = np.broadcast_to(np.asarray(self.sizes, dtype=np.int64), (k,)).copy()
        object.__setattr__(self, "freqs", freqs)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "sizes", sizes)
        if width > MAX_ALPHABET or k == 0:
            raise ValueError(f"need 1 or more tables of at most {MAX_ALPHABET} symbols")
        if np.any(freqs.astype(np.int64).sum(axis=1) != MAX_ALPHABET):
            raise ValueError(f"every table must sum to 2**{PRECISION}")
        if np.any(sizes < 2) or np.any(sizes > width):
            raise ValueError("every table needs 2 or more symbols (pad with an escape)")
        inside = np.arange(width)[None, :] < sizes[:, None]
        if np.any((freqs == 0) & inside) or np.any((freqs != 0) & ~inside):
            raise ValueError("frequencies must be >= 1 inside each table and 0 beyond it")
        bound = np.int64(np.iinfo(np.int32).max) - width
        if np.any(np.abs(offsets) > bound):
            raise ValueError("table offsets must keep every table value within int32")

    @property
    def count(self) -> int:
        return int(self.freqs.shape[0])

    @property
    def width(self) -> int:
        return int(self.freqs.shape[1])

    @functools.cached_property
    def cdf(self) -> np.ndarray:
        """Exclusive cumulative frequencies, uint32 [K, W]."""
        return (np.cumsum(self.freqs, axis=1, dtype=np.uint32) - self.freqs).astype(np.uint32)

    @functools.cached_property
    def coded_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive [lo, hi] of the values each table codes without escaping."""
        last = self.sizes - 1 - (1 if self.escape else 0)
        return self.offsets, self.offsets + last

    def information_bits(self, values: np.ndarray, indexes: np.ndarray | None = None) -> float:
        """-sum log2 p under these integer tables; escapes count their bypass bits too."""
        from jaxcodec.entropy import bypass  # local: bypass is a sibling with no table deps

        values = np.asarray(values, dtype=np.int64).reshape(-1)
        idx = np.zeros(values.shape, np.int64) if indexes is None else np.asarray(indexes).reshape(-1)
        sym, esc = self.symbols_of(values, idx)
        bits = -np.log2(self.freqs[idx, sym] / MAX_ALPHABET).sum()
        if esc.any():
            bits += bypass.cost_bits(self.overflow_of(values[esc], idx[esc]))
        return float(bits)

    def symbols_of(self, values: np.ndarray, indexes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Symbol index of each value in its table, and the mask of escaped values."""
        lo, hi = self.coded_range
        rel = values - lo[indexes]
        esc = (values < lo[indexes]) | (values > hi[indexes])
        if esc.any() and not self.escape:
            bad = values[esc][0]
            raise ValueError(f"value {bad} lies outside its table and these tables have no escape")
        return np.where(esc, self.sizes[indexes] - 1, rel), esc

    def overflow_of(self, values: np.ndarray, indexes: np.ndarray) -> np.ndarray:
        """Non-negative distance of escaped values past their table edge, zigzag-folded."""
        lo, hi = self.coded_range
        below = values < lo[indexes]
        dist = np.where(below, lo[indexes] - values, values - hi[indexes]) - 1
        return (dist.astype(np.uint64) << np.uint64(1)) | below.astype(np.uint64)

    def values_from_overflow(self, overflow: np.ndarray, indexes: np.ndarray) -> np.ndarray:
        lo, hi = self.coded_range
        below = (overflow & np.uint64(1)).astype(bool)
        dist = (overflow >> np.uint64(1)).astype(np.int64) + 1
        return np.where(below, lo[indexes] - dist, hi[indexes] + dist)


def tables_from_pmf(pmf: np.ndarray, offset: int | np.ndarray = 0, escape: bool = False,
                    sizes: np.ndarray | None = None) -> CodingTables:
    """Tables from probability rows ``[K, W]`` (or one row ``[W]``); symbol j codes offset + j."""
    pmf = np.atleast_2d(np.asarray(pmf, dtype=np.float64))
    if sizes is None:
        sizes = np.full(pmf.shape[0], pmf.shape[1], dtype=np.int64)
    return CodingTables(quantize_pmf(pmf, sizes), offset, sizes, escape)


def _lower_cdf(kind: str, z: np.ndarray) -> np.ndarray:
    """Standardized CDF, accurate in the lower tail (z <= 0) where it is tiny."""
    if kind == "laplace":
        return np.where(z <= 0, 0.5 * detmath.exp(np.minimum(z, 0.0)),
                        1.0 - 0.5 * detmath.exp(-np.maximum(z, 0.0)))
    if kind == "gaussian":
        return 0.5 * detmath.erfc(-z * _SQRT1_2)
    if kind == "logistic":
        return 1.0 / (1.0 + detmath.exp(-z))
    raise ValueError(f"unknown distribution {kind!r}; choose one of {DISTRIBUTIONS}")


def _tail_width(kind: str, tail_mass: float) -> float:
    """Half-width in scale units beyond which each tail holds at most tail_mass / 2."""
    half = tail_mass / 2.0
    if kind == "laplace":
        return float(np.log(0.5 / half))
    if kind == "logistic":
        return float(np.log(1.0 / half - 1.0))
    if kind == "gaussian":  # bisection on the deterministic erfc
        lo, hi = 0.0, 40.0
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if 0.5 * float(detmath.erfc(mid * _SQRT1_2)) > half else (lo, mid)
        return hi
    raise ValueError(f"unknown distribution {kind!r}; choose one of {DISTRIBUTIONS}")


def bin_masses(kind: str, values: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Probability of the unit bin around each integer value, tail-accurate on both sides."""
    z_lo = (values - 0.5 - loc) / scale
    z_hi = (values + 0.5 - loc) / scale
    upper = values > loc  # mirror upper-tail bins into the accurate lower tail
    a = np.where(upper, -z_hi, z_lo)
    b = np.where(upper, -z_lo, z_hi)
    return np.maximum(_lower_cdf(kind, b) - _lower_cdf(kind, a), 0.0)


def tables_from_distribution(kind: Distribution, scales: np.ndarray, locs: np.ndarray | float = 0.0,
                             tail_mass: float = 2.0 ** -20, max_width: int = MAX_ALPHABET) -> CodingTables:
    """Tables for integer values under continuous location-scale densities.

    Each table covers the integers where the density holds all but ``tail_mass`` and
    folds the rest into its escape symbol. ``scales`` and ``locs`` should be values stored
    in the file (or derived from stored values), never fresh floats from an accelerator.
    """
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    locs = np.broadcast_to(np.asarray(locs, dtype=np.float64), scales.shape).copy()
    if scales.ndim != 1:
        raise ValueError("scales must be a 1-D array, one per table")
    if not (np.all(np.isfinite(scales)) and np.all(scales > 0) and np.all(np.isfinite(locs))):
        raise ValueError("scales must be finite and > 0, locs finite")
    if not 0.0 < tail_mass < 1.0:
        raise ValueError("tail_mass must lie in (0, 1)")
    half = _tail_width(kind, tail_mass) * scales
    lo = np.floor(locs - half).astype(np.int64)
    hi = np.ceil(locs + half).astype(np.int64)
    cap = (max_width - 1) // 2  # keep the widest table (plus escape) within max_width
    lo = np.maximum(lo, np.round(locs).astype(np.int64) - cap)
    hi = np.minimum(hi, np.round(locs).astype(np.int64) + cap)
    sizes = hi - lo + 2  # + escape
    width = int(sizes.max())
    values = lo[:, None] + np.arange(width)[None, :]
    inside = np.arange(width)[None, :] < (sizes - 1)[:, None]
    pmf = np.where(inside, bin_masses(kind, values, locs[:, None], scales[:, None]), 0.0)
    below = _lower_cdf(kind, (lo - 0.5 - locs) / scales)
    above = _lower_cdf(kind, (locs - hi - 0.5) / scales)
    pmf[np.arange(len(scales)), sizes - 1] = below + above
    return CodingTables(quantize_pmf(pmf, sizes), lo, sizes, escape=True)
