"""Integer tables: exact sums, frequencies >= 1, low quantization cost, bit-identical builds."""

import hashlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcodec.entropy import detmath
from jaxcodec.entropy.tables import (
    MAX_ALPHABET,
    CodingTables,
    bin_masses,
    quantize_pmf,
    tables_from_distribution,
    tables_from_pmf,
)


def test_detmath_matches_libm():
    x = np.linspace(-740, 700, 20001)
    np.testing.assert_allclose(detmath.exp(x), np.exp(x), rtol=2e-15)
    z = np.linspace(-6, 8, 2001)
    ref = np.array([math.erfc(v) for v in z])
    np.testing.assert_allclose(detmath.erfc(z), ref, rtol=1.3e-7, atol=1e-300)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**32 - 1),
       st.sampled_from(["uniform", "peaked", "sparse", "one-hot", "two-spikes", "tiny-tail"]))
def test_quantize_pmf_exact_sum_and_floor(width, seed, kind):
    rng = np.random.default_rng(seed)
    pmf = rng.random(width)
    if kind == "peaked":
        pmf = pmf ** 40
    elif kind == "sparse":
        pmf[rng.random(width) < 0.9] = 0.0
    elif kind == "one-hot":  # one dominant symbol: every other one sits at the floor
        pmf = np.zeros(width)
        pmf[rng.integers(width)] = 1.0
    elif kind == "two-spikes":
        pmf = np.full(width, 1e-300)
        pmf[rng.integers(width, size=2)] = [0.7, 0.3]
    elif kind == "tiny-tail":
        pmf = np.geomspace(1.0, 1e-30, width)
    freqs = quantize_pmf(pmf)
    assert freqs.dtype == np.uint32
    assert freqs.astype(np.int64).sum() == MAX_ALPHABET
    assert freqs.min() >= 1


def test_quantize_pmf_degenerate_cases():
    """Peaked statistics (a model trained a few steps) used to stop the repair loop."""
    for width in (2, 100, 1024, MAX_ALPHABET):
        p = np.zeros(width)
        p[0] = 1.0
        f = quantize_pmf(p)
        assert f.sum() == MAX_ALPHABET and f.min() == 1 and f[0] == MAX_ALPHABET - (width - 1)
    rows = np.zeros((3, 1024))
    rows[0, 5] = rows[1, -1] = 1.0
    rows[2] = 1.0
    f = quantize_pmf(rows)
    assert (f.sum(axis=1) == MAX_ALPHABET).all() and f.min() == 1 and f[0, 5] > 60000 and f[1, -1] > 60000


def test_quantize_pmf_rows_with_padding():
    pmf = np.ones((3, 10))
    freqs = quantize_pmf(pmf, sizes=np.array([2, 5, 10]))
    assert (freqs.sum(axis=1) == MAX_ALPHABET).all()
    assert (freqs[0, 2:] == 0).all() and (freqs[1, 5:] == 0).all() and (freqs[2] > 0).all()


def test_quantize_pmf_full_alphabet_and_bad_input():
    freqs = quantize_pmf(np.ones(MAX_ALPHABET))
    assert (freqs == 1).all()
    with pytest.raises(ValueError):
        quantize_pmf(np.ones(MAX_ALPHABET + 1))
    with pytest.raises(ValueError):
        quantize_pmf(np.array([0.5, -0.1, 0.6]))
    with pytest.raises(ValueError):
        quantize_pmf(np.array([np.nan, 1.0]))


def test_quantization_cost_is_tiny_for_a_smooth_pmf():
    pmf = bin_masses("laplace", np.arange(-128, 128, dtype=np.float64), 0.0, 10.0)
    pmf /= pmf.sum()
    q = quantize_pmf(pmf) / MAX_ALPHABET
    entropy = -(pmf * np.log2(pmf)).sum()
    cross = -(pmf * np.log2(q)).sum()
    assert cross / entropy - 1 < 3e-4  # 16-bit tables: 0.01-0.03 % of the entropy is typical


@pytest.mark.parametrize("kind", ["laplace", "gaussian", "logistic"])
def test_distribution_tables_cover_support_and_escape(kind):
    scales = np.array([0.05, 0.11, 1.0, 7.5, 300.0])
    t = tables_from_distribution(kind, scales, locs=np.array([0.0, 0.3, -2.0, 10.0, 0.0]))
    assert t.escape and t.count == 5
    lo, hi = t.coded_range
    assert np.all(lo <= np.round([0.0, 0.3, -2.0, 10.0, 0.0]))
    assert np.all(hi >= np.round([0.0, 0.3, -2.0, 10.0, 0.0]))
    # the escape carries the (tiny) tail mass but never probability zero
    esc = t.freqs[np.arange(5), t.sizes - 1]
    assert np.all(esc >= 1) and np.all(esc < 64)


def test_bin_masses_agree_with_erf():
    values = np.arange(-20, 21, dtype=np.float64)
    ours = bin_masses("gaussian", values, 0.7, 3.0)
    cdf = np.array([0.5 * math.erfc(-(v - 0.7) / (3.0 * math.sqrt(2))) for v in np.append(values - 0.5, 20.5)])
    np.testing.assert_allclose(ours, np.diff(cdf), rtol=1e-6, atol=1e-12)


def test_table_build_is_bit_identical_golden():
    """The same stored parameters must give the same integers on every machine.

    The digest was computed once when the table code was written; a change here means
    files written elsewhere would no longer decode.
    """
    scales = np.exp(np.linspace(np.log(0.11), np.log(256.0), 64))
    digest = hashlib.sha256()
    for kind in ("laplace", "gaussian", "logistic"):
        t = tables_from_distribution(kind, scales, locs=np.linspace(-3, 3, 64))
        digest.update(t.freqs.tobytes() + t.offsets.tobytes() + t.sizes.tobytes())
    assert digest.hexdigest() == GOLDEN_TABLE_DIGEST


def test_coding_tables_validation():
    with pytest.raises(ValueError, match="sum"):
        CodingTables(np.array([[1, 2]], np.uint32), 0, 2, escape=False)
    with pytest.raises(ValueError, match="2 or more"):
        CodingTables(np.array([[MAX_ALPHABET]], np.uint32), 0, 1, escape=False)
    t = tables_from_pmf(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="no escape"):
        t.symbols_of(np.array([3]), np.array([0]))


GOLDEN_TABLE_DIGEST = "b62c8230e7a1a90ab7db109c46e26f3d6c48b30bdc4a94326298e1d129fb78b3"
