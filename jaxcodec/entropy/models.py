"""Entropy models: the differentiable rate used in training and the tables used for coding.

Each model gives, for the same parameters, (a) ``bits``: -log2 of the probability of a
value's unit bin, as a differentiable JAX function (values may carry additive uniform
noise during training), and (b) ``tables``: integer CodingTables built by
``jaxcodec.entropy.tables`` from *stored* parameters, so encoder and decoder agree.

- ``ContinuousPrior``: Laplace / Gaussian / logistic with a scale (and location) per
  group of values, e.g. one per weight tensor.

The conditional (hyperprior) and categorical members of the family come with the image
codec; the audio codec's code prior lives in ``jaxcodec.audio.prior``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.entropy.tables import DISTRIBUTIONS, CodingTables, tables_from_distribution

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
