"""Deterministic float64 special functions for building coding tables.

Encoder and decoder must derive identical integer tables on any machine. NumPy's
``exp``/``erf`` dispatch to libm or CPU-specific SIMD kernels whose last bits may differ
between machines, so the functions here use only IEEE-754 basic operations (+, -, *, /,
floor, frexp, ldexp), which are correctly rounded everywhere. Accuracy (about 1e-15 for ``exp``,
1.2e-7 relative for ``erfc``) is far finer than the 2**-16 resolution of the tables.
"""

from __future__ import annotations

import numpy as np

_INV_LN2 = 1.4426950408889634
_SQRT1_2 = 0.7071067811865476
_LN2_HI = 6.93147180369123816490e-01  # trailing zero bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
# Taylor coefficients 1/n! for exp(r), |r| <= ln(2)/2: truncation error < 1e-17.
_EXP_COEFFS = tuple(1.0 / float(np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(14))
# Numerical Recipes' erfc Chebyshev fit, fractional error < 1.2e-7 everywhere.
_ERFC_COEFFS = (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
    0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
)


def exp(x: np.ndarray) -> np.ndarray:
    """exp(x) from basic operations only; underflows to 0 below about -745."""
    x = np.clip(np.asarray(x, dtype=np.float64), -745.0, 709.0)
    k = np.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = np.full_like(r, _EXP_COEFFS[-1])
    for c in _EXP_COEFFS[-2::-1]:
        p = p * r + c
    return np.ldexp(p, k.astype(np.int32))


def log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive x from basic operations only (frexp/ldexp are exact):
    x = m * 2**k with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh((m - 1) / (m + 1))."""
    x = np.asarray(x, dtype=np.float64)
    m, k = np.frexp(x)  # m in [0.5, 1)
    low = m < _SQRT1_2
    m = np.where(low, m * 2.0, m)
    k = np.where(low, k - 1, k).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = np.full_like(s, 1.0 / 23.0)
    for n in range(21, 0, -2):  # |s| <= 0.172: the series to s**23 is exact to rounding
        p = p * s2 + 1.0 / n
    return k * _LN2_HI + (2.0 * s * p + k * _LN2_LO)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + exp(-np.asarray(x, dtype=np.float64)))


def tanh(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    t = 1.0 - 2.0 / (exp(2.0 * np.abs(x)) + 1.0)
    return np.where(x < 0, -t, t)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), without overflow for large x."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x, 0.0) + log(1.0 + exp(-np.abs(x)))


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function from basic operations only."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC_COEFFS[-1])
    for c in _ERFC_COEFFS[-2::-1]:
        poly = poly * t + c
    ans = t * exp(-z * z + poly)
    return np.where(x >= 0.0, ans, 2.0 - ans)
