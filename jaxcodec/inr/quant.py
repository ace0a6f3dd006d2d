"""Quantization of INR weights and embeddings, trained for rate and distortion.

Every stored tensor gets learned step sizes, one per output channel for conv kernels and
embedding channels, one per tensor for biases. A step is ``exp(log_rel) * rms``: the
channel's RMS (not differentiated, floored) times a learned relative precision. Weights
grow a lot while a network trains; relative steps follow them for free, and what is
learned, the precision, moves little (it starts near 7 bits per Gaussian weight).

- Distortion sees straight-through rounded values ``step * round(w / step)``: the network
  is trained as it will be decoded, and the precision gets the LSQ gradient.
- Rate sees ``w / step + u`` with u ~ U(-1/2, 1/2), coded under a zero-mean Laplace
  whose scale is the maximum-likelihood fit to those values (mean |q|), per tensor or
  per embedding channel: the same model the encoder fits to the final integers.

A reference (the previous group's decoded weights, NIRVANA-style residual coding) shifts
the grid: ``ref + step * round((w - ref) / step)``, and the rate is the difference's.

At the end, step sizes are rounded to float16 (that is what the file stores) and the
integers are ``round(w / step)``; decoding multiplies back with the same float16 steps.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.entropy.models import Conditional, laplace_scale_mle

WEIGHT_PRIOR = Conditional("laplace")  # gives the training bits here and the coder's tables
INIT_REL_STEP = 1.0 / 32  # about 7 bits per Gaussian weight, like an 8-bit min-max quantizer
INIT_REL_STEP_EMBED = 1.0 / 16
RMS_FLOOR = 1e-3


def _round_ste(x: jax.Array) -> jax.Array:
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def channel_axis_size(shape: tuple[int, ...]) -> int:
    """Step sizes per tensor: one per output channel (last axis) for kernels, else one."""
    return int(shape[-1]) if len(shape) >= 2 else 1


def channel_rms(w):
    """RMS per output channel (kernels) or of the whole tensor, floored; works on jnp and np."""
    xp = jnp if isinstance(w, jax.Array) else np
    flat = w.reshape(-1, w.shape[-1]) if w.ndim >= 2 else w.reshape(-1, 1)
    return xp.maximum(xp.sqrt(xp.mean(flat * flat, axis=0)), RMS_FLOOR)


def init_log_steps(leaves: list[jax.Array]) -> list[jax.Array]:
    return [jnp.full((channel_axis_size(w.shape),), np.log(INIT_REL_STEP), jnp.float32) for w in leaves]


def step_of(w, log_rel):
    return jnp.exp(log_rel) * jax.lax.stop_gradient(channel_rms(w))


def fake_quant(w: jax.Array, log_rel: jax.Array, key: jax.Array, ref: jax.Array | float = 0.0
               ) -> tuple[jax.Array, jax.Array]:
    """(STE-quantized weights for the forward pass, rate bits of the noisy proxy); with a
    reference (a previous network's decoded weights), what is coded is the difference."""
    (w_hat,), bits = fake_quant_tree([w], [log_rel], key, [ref])
    return w_hat, bits


def fake_quant_tree(leaves: list[jax.Array], log_steps: list[jax.Array], key: jax.Array,
                    refs: list[jax.Array] | None = None) -> tuple[list[jax.Array], jax.Array]:
    """fake_quant of every tensor, each under its own Laplace scale. The noise and the bits
    are computed on a few chunks of concatenated tensors: tensor by tensor, an INR's hundreds
    of small leaves made thousands of kernels (compiling its train step took twice as long);
    as one vector, they made one long kernel that a single thread runs. Independent chunks
    keep the kernels few and let the CPU's threads share them.

    The scale is held constant in the gradient: it is the maximum-likelihood fit, where the
    bits' derivative with respect to it vanishes."""
    refs = [0.0] * len(leaves) if refs is None else refs
    sizes = tuple(int(np.prod(w.shape)) for w in leaves)
    chunks = _chunks(sizes)
    out, bits = [], jnp.float32(0.0)
    for chunk, k in zip(chunks, jax.random.split(key, len(chunks))):
        noise = jax.random.uniform(k, (sum(sizes[i] for i in chunk),), minval=-0.5, maxval=0.5)
        noisy, scales, start = [], [], 0
        for i in chunk:
            w, n = leaves[i], sizes[i]
            step = step_of(w, log_steps[i])
            x = (w - refs[i]) / step
            out.append(refs[i] + _round_ste(x) * step)
            v = x.reshape(-1) + noise[start:start + n]
            noisy.append(v)
            scales.append(jnp.broadcast_to(jax.lax.stop_gradient(laplace_scale_mle(v)), (n,)))
            start += n
        bits = bits + jnp.sum(WEIGHT_PRIOR.bits(jnp.concatenate(noisy), jnp.concatenate(scales)))
    return out, bits


CHUNKS = 8  # about what a CPU's threads can run side by side; each chunk is a few kernels


@functools.lru_cache(maxsize=64)
def _chunks(sizes: tuple[int, ...]) -> list[list[int]]:
    """Consecutive leaves in up to CHUNKS groups of about equal total size."""
    target = sum(sizes) / CHUNKS
    groups: list[list[int]] = [[]]
    filled = 0
    for i, n in enumerate(sizes):
        if groups[-1] and filled + n / 2 > target * len(groups) and len(groups) < CHUNKS:
            groups.append([])
        groups[-1].append(i)
        filled += n
    return groups


def init_embed_log_step(channels: int) -> jax.Array:
    return jnp.full((channels,), np.log(INIT_REL_STEP_EMBED), jnp.float32)


def fake_quant_embeddings(e: jax.Array, log_rel: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Embeddings [N, h, w, C]: per-channel steps around the (batch) channel mean."""
    loc = jax.lax.stop_gradient(jnp.mean(e, axis=(0, 1, 2)))
    step = step_of(e - loc, log_rel)
    x = (e - loc) / step
    e_hat = loc + _round_ste(x) * step
    noisy = x + jax.random.uniform(key, x.shape, minval=-0.5, maxval=0.5)
    scale = laplace_scale_mle(noisy, axis=(0, 1, 2))
    return e_hat, jnp.sum(WEIGHT_PRIOR.bits(noisy, scale))


# ---------------------------------------------------------------------------------------
# final integer quantization (host side, NumPy)


def steps_f16(w: np.ndarray, log_rel: np.ndarray) -> np.ndarray:
    """The step sizes as stored: float16, positive and finite."""
    s = np.exp(np.asarray(log_rel, np.float64)) * channel_rms(np.asarray(w, np.float64))
    return np.clip(s, 6.2e-5, 6.0e4).astype(np.float16)


def quantize(w: np.ndarray, step16: np.ndarray, loc16: np.ndarray | None = None) -> np.ndarray:
    """Integers round((w - loc) / step): loc is a float16 offset per channel (embeddings) or
    a float32 reference tensor (a group's weights coded against its predecessor's)."""
    step = step16.astype(np.float32)
    loc = 0.0 if loc16 is None else loc16.astype(np.float32)
    return np.round((np.asarray(w, np.float32) - loc) / step).astype(np.int64)


def dequantize(q: np.ndarray, step16: np.ndarray, loc16: np.ndarray | None = None) -> np.ndarray:
    step = step16.astype(np.float32)
    loc = np.float32(0.0) if loc16 is None else loc16.astype(np.float32)
    return (q.astype(np.float32) * step + loc).astype(np.float32)


def laplace_scale_of(q: np.ndarray, axis=None) -> np.ndarray:
    """The stored per-tensor (or per-channel) Laplace scale: float32 MLE, floored."""
    return np.maximum(np.mean(np.abs(q), axis=axis), 0.05).astype(np.float32)
