"""Entropy models: the differentiable rate used in training and the tables used for coding.

Each model gives, from the same parameters, (a) ``bits``: -log2 of the probability of a
value's unit bin as a differentiable JAX function (values may carry additive uniform
noise during training), and (b) ``tables``: integer CodingTables for the coder, built in
float64 NumPy with deterministic arithmetic (``detmath``) from *stored* parameters, so
every machine derives the same integers. Training bits and file bits cannot drift apart.

- ``Conditional``: a Laplace / Gaussian / logistic density with a scale (and mean) per
  element or per group; ``ScaleTable`` quantizes scales to a shared ladder of tables
  (CompressAI's GaussianConditional). The video codec's per-tensor weight prior is one.
- ``FactorizedDensity``: Ballé et al. (2018)'s non-parametric density, one per channel
  (the hyperprior's "entropy bottleneck").
- ``Categorical``: a distribution over K symbols (the audio codec's code priors).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.entropy import detmath
from jaxcodec.entropy.tables import (DISTRIBUTIONS, MAX_ALPHABET, CodingTables, quantize_pmf,
                                     tables_from_distribution, tables_from_pmf)

LIKELIHOOD_BOUND = 1e-9
TAIL_MASS = 2.0 ** -20  # probability left to the escape symbol of a table
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


# ---------------------------------------------------------------------------------------
# conditional (location-scale) densities


@dataclass(frozen=True)
class Conditional:
    """A location-scale density per element or group of integer values (units of bins).

    ``scale_bound`` floors the scale in ``bits`` (CompressAI's lower bound), so a network
    predicting scales cannot claim more certainty than the tables can express.
    """

    kind: str = "gaussian"
    scale_bound: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {self.kind!r}; choose one of {DISTRIBUTIONS}")

    def bits(self, x: jax.Array, scale: jax.Array, loc: jax.Array | float = 0.0) -> jax.Array:
        if self.scale_bound > 0:
            scale = jnp.maximum(scale, self.scale_bound)
        return bin_bits(self.kind, x, scale, loc)

    def tables(self, scales: np.ndarray, locs: np.ndarray | float = 0.0) -> CodingTables:
        """One table per stored scale (and location): values coded as round(x), exact."""
        return tables_from_distribution(self.kind, np.asarray(scales, np.float64), locs, TAIL_MASS)


@dataclass(frozen=True)
class ScaleTable:
    """A ladder of ``count`` log-spaced scales from ``lo`` to ``hi``: predicted scales are
    quantized to an index into it, and each index has its own table (zero mean: values are
    coded as round(y - mean)). The ladder is a fixed function of three numbers, so encoder
    and decoder build the same tables without storing them.
    """

    lo: float = 0.11
    hi: float = 256.0
    count: int = 64
    kind: str = "gaussian"

    @property
    def log_step(self) -> float:
        return float(np.log(self.hi / self.lo) / (self.count - 1))

    def scales(self) -> np.ndarray:
        step = float(detmath.log(np.float64(self.hi)) - detmath.log(np.float64(self.lo))) / (self.count - 1)
        return detmath.exp(detmath.log(np.float64(self.lo)) + step * np.arange(self.count, dtype=np.float64))

    def scale_at(self, t: jax.Array) -> jax.Array:
        """Continuous index t (trained) -> scale; index k gives ``scales()[k]``."""
        return self.lo * jnp.exp(jnp.clip(t, 0.0, self.count - 1.0) * self.log_step)

    def index(self, t: np.ndarray) -> np.ndarray:
        """Continuous index (deterministic host values) -> table index."""
        return np.clip(np.round(np.asarray(t, np.float64)), 0, self.count - 1).astype(np.int64)

    def index_of_scale(self, scale: np.ndarray) -> np.ndarray:
        """The smallest table scale not below each scale (CompressAI's build_indexes)."""
        return np.minimum(np.searchsorted(self.scales(), np.asarray(scale, np.float64)), self.count - 1)

    def bits(self, x: jax.Array, t: jax.Array, loc: jax.Array | float = 0.0) -> jax.Array:
        return bin_bits(self.kind, x, self.scale_at(t), loc)

    def tables(self) -> CodingTables:
        return tables_from_distribution(self.kind, self.scales(), 0.0, TAIL_MASS)


# ---------------------------------------------------------------------------------------
# factorized non-parametric density (Ballé et al. 2018, appendix 6.1)


@dataclass(frozen=True)
class FactorizedDensity:
    """A learned univariate density per channel: its CDF is a sigmoid of a small monotone
    network of the value, (1 -> filters... -> 1) with positive matrices and tanh
    'factors'. Values are [..., channels]; parameters come from ``init``."""

    channels: int
    filters: tuple[int, ...] = (3, 3, 3)
    init_scale: float = 10.0
    search: int = 1024  # tables cover at most [-search, search]; beyond, the escape

    @property
    def _dims(self) -> tuple[int, ...]:
        return (1, *self.filters, 1)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        dims, c = self._dims, self.channels
        scale = self.init_scale ** (1 / (len(dims) - 1))
        keys = jax.random.split(key, len(dims))
        params = {}
        for k in range(len(dims) - 1):
            raw = np.log(np.expm1(1 / scale / dims[k + 1]))
            params[f"matrix{k}"] = jnp.full((c, dims[k + 1], dims[k]), raw, jnp.float32)
            params[f"bias{k}"] = jax.random.uniform(keys[k], (c, dims[k + 1], 1), minval=-0.5, maxval=0.5)
            if k < len(dims) - 2:
                params[f"factor{k}"] = jnp.zeros((c, dims[k + 1], 1), jnp.float32)
        return params

    def _logits(self, params, x, xp):
        """The network before the sigmoid, for x [C, 1, n]; xp is jnp or the
        deterministic NumPy namespace below."""
        h = x
        for k in range(len(self._dims) - 1):
            h = xp.matmul(xp.softplus(params[f"matrix{k}"]), h) + params[f"bias{k}"]
            if f"factor{k}" in params:
                h = h + xp.tanh(params[f"factor{k}"]) * xp.tanh(h)
        return h

    def bits(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        """-log2 P(unit bin around x) per element of x [..., C]."""
        shape = x.shape
        v = jnp.moveaxis(x, -1, 0).reshape(self.channels, 1, -1)
        lower = self._logits(params, v - 0.5, _JNP)
        upper = self._logits(params, v + 0.5, _JNP)
        sign = jax.lax.stop_gradient(-jnp.sign(lower + upper))  # evaluate in the accurate tail
        lik = jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))
        bits = -jnp.log(jnp.maximum(lik, LIKELIHOOD_BOUND)) * _LOG2E
        return jnp.moveaxis(bits.reshape(self.channels, *shape[:-1]), 0, -1)

    def tables(self, params: dict[str, np.ndarray]) -> CodingTables:
        """Table c codes channel c: the integers where its density holds all but
        TAIL_MASS, and an escape for the rest. Deterministic from the stored params."""
        p = {k: np.asarray(v, np.float64) for k, v in params.items()}
        grid = np.arange(-self.search, self.search + 1, dtype=np.float64)
        c = self.channels
        up = self._logits(p, np.broadcast_to(grid + 0.5, (c, 1, grid.size)), _DET)[:, 0]  # logit CDF(v + 1/2)
        below = detmath.sigmoid(up)  # P(X < v + 1/2)
        above = detmath.sigmoid(-up)  # P(X > v + 1/2)
        half = TAIL_MASS / 2
        lo_i = np.argmax(below > half, axis=1)  # first v whose bin reaches past the lower tail
        hi_i = grid.size - 1 - np.argmax((above > half)[:, ::-1], axis=1)  # last v with mass above it
        hi_i = np.maximum(np.minimum(hi_i + 1, grid.size - 1), lo_i + 1)
        lo_i = np.minimum(lo_i, hi_i)
        sizes = hi_i - lo_i + 2  # + escape
        width = int(sizes.max())
        if width > MAX_ALPHABET:
            raise ValueError("factorized density too wide for a table")
        cols = lo_i[:, None] + np.arange(width)[None, :]
        inside = np.arange(width)[None, :] < (sizes - 1)[:, None]
        cols = np.minimum(cols, grid.size - 1)
        # bin of v: (v - 1/2, v + 1/2): masses from the CDF at both edges, in the accurate tail
        low_edge = self._logits(p, np.broadcast_to(grid - 0.5, (c, 1, grid.size)), _DET)[:, 0]
        u, lw = np.take_along_axis(up, cols, 1), np.take_along_axis(low_edge, cols, 1)
        sign = -np.sign(u + lw)
        mass = np.abs(detmath.sigmoid(sign * u) - detmath.sigmoid(sign * lw))
        pmf = np.where(inside, mass, 0.0)
        rows = np.arange(c)
        tail = detmath.sigmoid(low_edge[rows, lo_i]) + detmath.sigmoid(-up[rows, hi_i])
        pmf[rows, sizes - 1] = tail
        return CodingTables(quantize_pmf(pmf, sizes), grid[lo_i].astype(np.int64), sizes, escape=True)


class _JNP:
    matmul, softplus, tanh = staticmethod(jnp.matmul), staticmethod(jax.nn.softplus), staticmethod(jnp.tanh)


class _DET:
    """Deterministic float64 NumPy: matmul of the tiny (<= 3 x 3) per-channel matrices is
    written as sums in a fixed order, so no BLAS kernel chooses the rounding."""

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = a[:, :, 0:1] * b[:, 0:1, :]
        for j in range(1, a.shape[2]):
            out = out + a[:, :, j:j + 1] * b[:, j:j + 1, :]
        return out

    softplus, tanh = staticmethod(detmath.softplus), staticmethod(detmath.tanh)


# ---------------------------------------------------------------------------------------
# categorical


@dataclass(frozen=True)
class Categorical:
    """A distribution over K symbols: bits from logits (training), tables from stored
    non-negative weights such as counts (coding)."""

    def bits(self, logits: jax.Array, x: jax.Array) -> jax.Array:
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, x[..., None], axis=-1)[..., 0] * _LOG2E

    def tables(self, weights: np.ndarray) -> CodingTables:
        return tables_from_pmf(np.asarray(weights, np.float64))
