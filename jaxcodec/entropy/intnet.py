"""Integer networks (Ballé, Johnston and Minnen 2019): entropy parameters that every
machine computes alike.

A hyperprior predicts each latent's mean and scale with a network. If that network runs
in floating point, two machines (or a CPU and a GPU) can disagree in the last bit, pick
another table for a symbol, and the decoder fails. Here every layer has 8-bit integer
weights (times a float scale per output channel) and takes integer-valued inputs:
coded symbols, or activations quantized to multiples of ``ACT_UNIT``. Its sums are then
sums of integers below 2**53, which float64 adds exactly in any order (BLAS or not), and
the per-channel scale and bias are single IEEE operations, correctly rounded everywhere.

Training runs the same layers in float32 with straight-through rounding of weights and
activations (``apply``); coding runs ``apply_exact`` on exported integers in NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

ACT_UNIT = 1.0 / 16  # activations are integers times this, in [0, ACT_MAX * ACT_UNIT]
ACT_MAX = 1023
WEIGHT_MAX = 127
INPUT_MAX = 1023  # integer inputs (symbols) are clipped to +-this, which bounds every sum
BLOCK_BYTES = 32 << 20  # im2col works on blocks of rows of about this size


@dataclass(frozen=True)
class IntLayer:
    """A convolution (``kernel`` x ``kernel``, zero 'same' padding) with integer weights.

    ``symbols``: the input is coded integers (clipped to +-INPUT_MAX) rather than
    activations in units of ACT_UNIT. ``relu``: the output is a quantized ReLU in units of
    ACT_UNIT, else the float pre-activation. ``up``: sub-pixel upsampling by this factor
    (the convolution makes up**2 x cout channels, then depth-to-space).
    """

    cin: int
    cout: int
    kernel: int = 1
    relu: bool = True
    up: int = 1
    symbols: bool = False

    @property
    def width(self) -> int:
        return self.cout * self.up * self.up

    @property
    def input_unit(self) -> float:
        return 1.0 if self.symbols else ACT_UNIT

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        fan_in = self.kernel * self.kernel * self.cin
        w = jax.random.normal(key, (self.kernel, self.kernel, self.cin, self.width)) * np.sqrt(2.0 / fan_in)
        if self.symbols:  # symbols are ~10x larger than activations: start with the same output range
            w = w * 0.1
        return {"w": w.astype(jnp.float32), "b": jnp.zeros((self.width,), jnp.float32)}


def _round_ste(x: jax.Array) -> jax.Array:
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def weight_scale(w):
    """Per output channel: the largest |weight| maps to WEIGHT_MAX (works on jnp and np)."""
    xp = jnp if isinstance(w, jax.Array) else np
    return xp.maximum(xp.max(xp.abs(w), axis=(0, 1, 2)), 1e-8) / WEIGHT_MAX


def _depth_to_space(x, up: int):
    if up == 1:
        return x
    *lead, h, w, c = x.shape
    c //= up * up
    x = x.reshape(*lead, h, w, up, up, c)
    n = len(lead)
    x = x.transpose(*range(n), n, n + 2, n + 1, n + 3, n + 4)
    return x.reshape(*lead, h * up, w * up, c)


def apply(layer: IntLayer, p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """Training forward of [B, H, W, cin] integer-valued inputs, as the integers will run."""
    if layer.symbols:
        x = jnp.clip(x, -INPUT_MAX, INPUT_MAX)
    s = jax.lax.stop_gradient(weight_scale(p["w"]))
    w = _round_ste(p["w"] / s) * s
    y = jax.lax.conv_general_dilated(x * layer.input_unit, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["b"]
    if layer.relu:
        y = jnp.clip(_round_ste(y / ACT_UNIT), 0, ACT_MAX)
    return _depth_to_space(y, layer.up)


def export(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stored form: int8 weights, float32 scale and bias per output channel."""
    w = np.asarray(p["w"], np.float32)
    s = weight_scale(w).astype(np.float32)
    return {"w": np.clip(np.round(w / s), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8), "s": s,
            "b": np.asarray(p["b"], np.float32)}


def apply_exact(layer: IntLayer, q: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Coding-time forward of one [H, W, cin] input from exported integers: the same
    result on every IEEE-754 machine (see the module docstring)."""
    x = np.asarray(x, np.float64)
    if layer.symbols:
        x = np.clip(x, -INPUT_MAX, INPUT_MAX)
    h, w, cin = x.shape
    k, r = layer.kernel, layer.kernel // 2
    xp = np.pad(x, ((r, r), (r, r), (0, 0)))
    weights = q["w"].astype(np.float64).reshape(k * k * cin, layer.width)
    acc = np.empty((h * w, layer.width), np.float64)
    rows = max(1, (BLOCK_BYTES // 8) // max(1, w * k * k * cin))  # output rows per im2col block
    for top in range(0, h, rows):  # exact integer sums: the order of BLAS's adds is free
        n = min(rows, h - top)
        patches = np.stack([xp[top + dy:top + dy + n, dx:dx + w] for dy in range(k) for dx in range(k)], axis=2)
        acc[top * w:(top + n) * w] = patches.reshape(n * w, k * k * cin) @ weights
    scale = q["s"].astype(np.float64) * layer.input_unit  # a power-of-two factor: exact
    y = (acc * scale + q["b"].astype(np.float64)).reshape(h, w, layer.width)
    if layer.relu:
        y = np.clip(np.round(y / ACT_UNIT), 0, ACT_MAX)
    return _depth_to_space(y, layer.up)
