"""Entropy models: the differentiable rate used in training and the tables used for coding.

Each model gives, for the same parameters, (a) ``bits``: -log2 of the probability of a
value's unit bin, as a differentiable JAX function (values may carry additive uniform
noise during training), and (b) ``tables``: integer CodingTables built by
``jaxcodec.entropy.tables`` from *stored* parameters, so encoder and decoder agree.

- ``ContinuousPrior``: Laplace / Gaussian / logistic with a scale (and location) per
  group of values, e.g. one per weight tensor.
- ``GaussianConditional``: hyperprior-style, a fixed log-spaced scale table and a scale
  per value mapped to its table (as in CompressAI).
- ``CategoricalPrior``: a pmf over a finite alphabet, fitted from counts, e.g. codebook
  indices of a vector quantizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.entropy.tables import DISTRIBUTIONS, CodingTables, tables_from_distribution, tables_from_pmf

LIKELIHOOD_BOUND = 1e-9
_LOG2E = 1.4426950408889634


def _lower_cdf(kind: str, z: jax.Array) -> jax.Array:
    """Standardized CDF, written to stay accurate (and differentiable) in the lower tail."""
    if kind == "laplace":
        return jnp.where(z <= 0, 0.5 * jnp.exp(jnp.minimum(z, 0.0)), 1.0 - 0.5 * jnp.exp(-jnp.maximum(z, 0.0)))
    if kind == "gaussian":
        return 0.5 * jax.scipy.special.erfc(-z * 0.7071067811865476)
    if kind == "logistic":
        return jax.nn.sigmoid(z)
    raise ValueError(f"unknown distribution {kind!r}; choose one of {DISTRIBUTIONS}")


def bin_bits(kind: str, x: jax.Array, scale: jax.Array, loc: jax.Array | float = 0.0) -> jax.Array:
    """-log2 P(the unit bin centred on x) under a location-scale density, elementwise."""
    d = jnp.abs(x - loc)  # all three densities are symmetric: use the accurate lower tail
    upper = _lower_cdf(kind, (0.5 - d) / scale)
    lower = _lower_cdf(kind, (-0.5 - d) / scale)
    return -jnp.log(jnp.maximum(upper - lower, LIKELIHOOD_BOUND)) * _LOG2E


def laplace_scale_mle(q: jax.Array, axis=None, floor: float = 0.05) -> jax.Array:
    """Maximum-likelihood Laplace scale of zero-mean values: their mean absolute value."""
    return jnp.maximum(jnp.mean(jnp.abs(q), axis=axis), floor)


@dataclass(frozen=True)
class ContinuousPrior:
    """A location-scale density per group of integer values (values in units of bins)."""

    kind: str = "laplace"

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {self.kind!r}; choose one of {DISTRIBUTIONS}")

    def bits(self, x: jax.Array, scale: jax.Array, loc: jax.Array | float = 0.0) -> jax.Array:
        return bin_bits(self.kind, x, scale, loc)

    def tables(self, scales: np.ndarray, locs: np.ndarray | float = 0.0) -> CodingTables:
        return tables_from_distribution(self.kind, np.asarray(scales, np.float64), locs)


@dataclass(frozen=True)
class GaussianConditional:
    """Zero-mean Gaussians whose scale comes per value from a hyper-network (or side info).

    Scales are snapped up to the nearest entry of a log-spaced table; only the table
    index is needed to code, and the table is a pure function of (lo, hi, count).
    """

    lo: float = 0.11
    hi: float = 256.0
    count: int = 64

    @property
    def scale_table(self) -> np.ndarray:
        return np.exp(np.linspace(np.log(self.lo), np.log(self.hi), self.count))

    def bits(self, x: jax.Array, scale: jax.Array) -> jax.Array:
        return bin_bits("gaussian", x, jnp.clip(scale, self.lo, self.hi))

    def indexes(self, scale: np.ndarray) -> np.ndarray:
        """Table index for each scale: the smallest table scale >= it (clipped)."""
        idx = np.searchsorted(self.scale_table, np.asarray(scale, np.float64), side="left")
        return np.clip(idx, 0, self.count - 1).astype(np.int32)

    def tables(self) -> CodingTables:
        return tables_from_distribution("gaussian", self.scale_table)


@dataclass(frozen=True)
class CategoricalPrior:
    """A pmf over symbols 0..K-1 per context (rows); counts are smoothed by `alpha`."""

    counts: np.ndarray  # [contexts, K] (or [K]) non-negative
    alpha: float = 0.5

    @property
    def pmf(self) -> np.ndarray:
        c = np.atleast_2d(np.asarray(self.counts, np.float64)) + self.alpha
        return c / c.sum(axis=1, keepdims=True)

    def bits(self, symbols: jax.Array, context: jax.Array | int = 0) -> jax.Array:
        logp = jnp.log2(jnp.asarray(self.pmf, jnp.float32))
        return -logp[context, symbols]

    def tables(self) -> CodingTables:
        return tables_from_pmf(self.pmf)
