"""Encoder-side latent refinement: spend encode time to close the amortisation gap.

The analysis transform predicts a latent ``y`` for any image in one pass; a latent that
is better for *this* image under the model's own rate-distortion loss usually exists
(Campos et al. 2019; Yang et al. 2020). Refinement runs gradient steps on ``y`` alone,
with the synthesis, the entropy tables and the hyper latent fixed, so the decoder and the
file format do not change: a refined file is an ordinary file.

The loss is the coded one, relaxed: rounding ``y - mean`` is replaced by stochastic
Gumbel annealing (Yang et al. 2020), a random soft choice between floor and ceiling that
sharpens as a temperature falls, so early steps can move a value across a bin edge and
late steps optimise what will be coded (plain straight-through rounding gained at most
3% here and was unstable). The means and tables of the checkerboard's second half
depend on the first half's symbols; they are refreshed (exactly, by the caller's
``parameters``) between chunks of steps, and the best latent seen, by its exact coded
loss, is kept, so refinement never makes a file worse by the model's own measure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcodec.entropy.models import ScaleTable, bin_bits

ParameterFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # y -> (mean, table index)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _steps(kind: str, g_s: nnx.GraphDef, n, state, inv_gain, lam, lr, x, y, m, v, count, total, key, mu, scale):
    """n Adam steps on y; returns the new y and moments, and the coded loss of the y it
    started from. One compile per image shape: n and the step counts are traced."""
    pixels = x.shape[0] * x.shape[1]
    synth = nnx.merge(g_s, state)

    def loss(y, sym):
        x_hat = synth(((sym + mu) * inv_gain)[None])[0]
        return lam * 255.0 ** 2 * jnp.mean((x - x_hat) ** 2) + jnp.sum(bin_bits(kind, sym, scale)) / pixels

    def soft_round(y, t, key):
        # stochastic Gumbel annealing (Yang et al. 2020): a relaxed draw of floor or ceil,
        # sharper as the temperature falls, so the end of the run optimises what is coded
        u = y - mu
        lo = jnp.floor(u)
        r = u - lo
        tau = jnp.maximum(0.5 * jnp.exp(-5.0 * t / total), 0.02)
        eps = 1e-5
        logits = jnp.stack([-jnp.arctanh(jnp.clip(r, 0, 1 - eps)), -jnp.arctanh(jnp.clip(1 - r, 0, 1 - eps))], -1)
        p = jax.nn.softmax((logits / tau + jax.random.gumbel(key, logits.shape)), -1)
        return lo + p[..., 1]

    def step(i, carry):
        y, m, v = carry
        t = count + i
        g = jax.grad(lambda y: loss(y, soft_round(y, t, jax.random.fold_in(key, t))))(y)
        t = t + 1
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        y = y - lr * (m / (1 - 0.9 ** t)) / (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        return y, m, v

    start = loss(y, jnp.round(y - mu))
    return (*jax.lax.fori_loop(0, n, step, (y, m, v)), start)


def refine_latent(table: ScaleTable, g_s: nnx.GraphDef, state, inv_gain: np.ndarray, lam: float, x: np.ndarray,
                  y: np.ndarray, parameters: ParameterFn, iterations: int, *, chunk: int = 10,
                  lr: float = 0.02, on_step: Callable[[int, int], None] | None = None) -> np.ndarray:
    """A latent [h, w, M] with a lower coded rate-distortion loss than ``y`` (or ``y`` itself).

    ``x`` is the padded image in [0, 1]; ``parameters(y)`` gives the exact mean and table
    index of every element given y's anchor symbols. ``lr`` is in bins (y's unit): the
    learning rate decays linearly to a tenth over the iterations. ``on_step(done, total)``
    is called after every chunk (a progress bar).
    """
    scales = table.scales().astype(np.float32)
    xj, inv = jnp.asarray(x, jnp.float32), jnp.asarray(inv_gain, jnp.float32)
    cur = jnp.asarray(y, jnp.float32)
    m, v = jnp.zeros_like(cur), jnp.zeros_like(cur)
    best, best_loss, done = np.asarray(y, np.float32), np.inf, 0
    key = jax.random.key(0)
    while done <= iterations:
        mu, idx = parameters(np.asarray(cur, np.float64))
        n = min(chunk, iterations - done)
        rate = lr * (1 - 0.9 * done / max(iterations, 1))
        new, m, v, start = _steps(table.kind, g_s, jnp.int32(n), state, inv, jnp.float32(lam),
                                  jnp.float32(rate), xj, cur, m, v, jnp.int32(done), jnp.float32(iterations), key,
                                  jnp.asarray(mu, jnp.float32), jnp.asarray(scales[idx]))
        start = float(start)  # the loss of `cur` under its own exact parameters
        if start < best_loss:
            best, best_loss = np.asarray(cur, np.float32), start
        if n == 0:
            break
        cur, done = new, done + n
        if on_step is not None:
            on_step(done, iterations)
    return best
