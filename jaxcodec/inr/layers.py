"""Building blocks shared by the NeRV-family models (Flax NNX, NHWC layout)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
    """[N, H, W, C*r*r] -> [N, H*r, W*r, C], the NHWC counterpart of torch's PixelShuffle."""
    if r == 1:
        return x
    n, h, w, c = x.shape
    x = x.reshape(n, h, w, c // (r * r), r, r)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * r, w * r, c // (r * r))


def positional_encoding(t: jax.Array, base: float, levels: int) -> jax.Array:
    """NeRV's frame-index encoding: sin/cos of t * base**k * pi, k < levels; t in [0, 1)."""
    freqs = (base ** jnp.arange(levels, dtype=jnp.float32)) * math.pi
    v = t[:, None].astype(jnp.float32) * freqs[None, :]
    return jnp.concatenate([jnp.sin(v), jnp.cos(v)], axis=-1)


class UpBlock(nnx.Module):
    """NeRV / HNeRV decoder block: conv KxK (Cin -> Cout*s^2), PixelShuffle(s), GELU; no norm.

    GELU runs before the shuffle (elementwise, so the values are the same): after it, XLA
    fused the shuffle's transpose into the convolution's backward pass, a third slower on CPU."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int, *, rngs: nnx.Rngs):
        self.stride = stride
        self.conv = nnx.Conv(cin, cout * stride * stride, (kernel, kernel), padding="SAME", rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return pixel_shuffle(jax.nn.gelu(self.conv(x), approximate=False), self.stride)


_NHWC = jax.lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))


def _conv_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", lhs_dilation=(1, 1), rhs_dilation=(1, 1),
                                        dimension_numbers=_NHWC, feature_group_count=1)


@jax.custom_vjp
def conv_few_outputs(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """A 'SAME' KxK convolution (K odd) plus bias, computed as nnx.Conv computes it, whose
    backward pass is two matmuls with the output gradient's im2col matrix. With few output
    channels (the 3-channel RGB head) that matrix is thin, and the backward pass is about
    3x faster on CPU than XLA's convolution gradients (measured at 160x320, 20 -> 3, K = 3)."""
    return _conv_same(x, kernel) + bias


def _few_fwd(x, kernel, bias):
    return conv_few_outputs(x, kernel, bias), (x, kernel)


def _few_bwd(res, g):
    x, kernel = res
    kh, kw, ci, co = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError("conv_few_outputs takes odd kernel sizes")
    ph, pw, (h, w) = kh // 2, kw // 2, x.shape[1:3]
    gp = jnp.pad(g, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    # cols[n, a, b, (i, j, o)] = g[n, a - i + ph, b - j + pw, o]: every output a kernel tap reaches from (a, b)
    cols = jnp.concatenate([gp[:, 2 * ph - i:2 * ph - i + h, 2 * pw - j:2 * pw - j + w]
                            for i in range(kh) for j in range(kw)], axis=-1)
    dx = cols @ kernel.transpose(0, 1, 3, 2).reshape(kh * kw * co, ci)
    dk = jnp.einsum("nhwc,nhwq->cq", x, cols).reshape(ci, kh, kw, co).transpose(1, 2, 0, 3)
    return dx, dk, jnp.sum(g, axis=(0, 1, 2))


conv_few_outputs.defvjp(_few_fwd, _few_bwd)


class LayerNorm2d(nnx.Module):
    """LayerNorm over channels (ConvNeXt's channels-first norm, here channels-last)."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.norm(x)


_trunc02 = nnx.initializers.truncated_normal(stddev=0.02)


class DepthwiseConv(nnx.Module):
    """A k x k depthwise convolution ('SAME' zero padding) written as a sum of shifted
    slices: XLA fuses it, forward and backward, and on CPU its gradient is about 2x
    faster than the grouped convolution's (measured at 160x80x22, k = 5)."""

    def __init__(self, dim: int, kernel: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(_trunc02(rngs.params(), (kernel, kernel, 1, dim)))
        self.bias = nnx.Param(jnp.zeros((dim,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel[...]
        kh, kw = k.shape[:2]
        h, w = x.shape[1:3]
        xp = jnp.pad(x, ((0, 0), (kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2), (0, 0)))
        out = sum(xp[:, i:i + h, j:j + w] * k[i, j, 0] for i in range(kh) for j in range(kw))
        return out + self.bias[...]


class ConvNeXtBlock(nnx.Module):
    """Depthwise k x k, LayerNorm, MLP x4 with GELU, layer scale, residual.

    HNeRV's encoder uses k = 7, layer scale 1e-6 and exact GELU; HiNeRV's stages a
    smaller kernel, a larger initial layer scale and the tanh GELU (cheaper on CPU).
    """

    def __init__(self, dim: int, kernel: int = 7, layer_scale: float = 1e-6, exact_gelu: bool = True, *,
                 rngs: nnx.Rngs):
        self.exact_gelu = exact_gelu
        self.dwconv = DepthwiseConv(dim, kernel, rngs=rngs)
        self.norm = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
        self.fc1 = nnx.Linear(dim, 4 * dim, kernel_init=_trunc02, rngs=rngs)
        self.fc2 = nnx.Linear(4 * dim, dim, kernel_init=_trunc02, rngs=rngs)
        self.gamma = nnx.Param(jnp.full((dim,), layer_scale, jnp.float32))

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """`mask` (1 inside the frame, 0 outside) zeroes what the depthwise conv reads beyond
        the frame when x is a window that overhangs it: zero padding, as on a whole frame."""
        y = self.dwconv(x if mask is None else x * mask)
        y = self.fc2(jax.nn.gelu(self.fc1(self.norm(y)), approximate=not self.exact_gelu))
        return x + self.gamma[...] * y


class ConvNeXtEncoder(nnx.Module):
    """HNeRV's frame encoder: per stage a patchify conv (kernel = stride) with LayerNorm,
    then one ConvNeXt block; the last stage's width is the embedding dimension."""

    def __init__(self, strides: tuple[int, ...], dims: tuple[int, ...], *, rngs: nnx.Rngs):
        self.down = nnx.List()
        self.norms = nnx.List()
        self.blocks = nnx.List()
        cin = 3
        for i, (s, d) in enumerate(zip(strides, dims)):
            self.norms.append(LayerNorm2d(d if i == 0 else cin, rngs=rngs))
            self.down.append(nnx.Conv(cin, d, (s, s), strides=(s, s), padding="VALID",
                                      kernel_init=_trunc02, rngs=rngs))
            self.blocks.append(ConvNeXtBlock(d, rngs=rngs))
            cin = d

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, (down, norm, block) in enumerate(zip(self.down, self.norms, self.blocks)):
            x = norm(down(x)) if i == 0 else down(norm(x))
            x = block(x)
        return x


class TimeEmbedding(nnx.Module):
    """HNeRV-Boost's frame condition: NeRV's encoding of t / T through a two-layer MLP."""

    def __init__(self, dim: int, *, base: float = 1.25, levels: int = 80, rngs: nnx.Rngs):
        self.base, self.levels = base, levels
        self.hidden = nnx.Linear(2 * levels, 2 * dim, rngs=rngs)
        self.out = nnx.Linear(2 * dim, dim, rngs=rngs)

    def __call__(self, t: jax.Array) -> jax.Array:
        pe = positional_encoding(t, self.base, self.levels)
        return jax.nn.gelu(self.out(jax.nn.gelu(self.hidden(pe), approximate=False)), approximate=False)


class FrameAffine(nnx.Module):
    """x * (1 + scale(e)) + shift(e) per channel, scale and shift from the frame condition e
    through two-layer MLPs of their own (Boost's SFT layer)."""

    def __init__(self, cond: int, width: int, *, rngs: nnx.Rngs):
        self.scale0, self.scale1 = nnx.Linear(cond, cond, rngs=rngs), nnx.Linear(cond, width, rngs=rngs)
        self.shift0, self.shift1 = nnx.Linear(cond, cond, rngs=rngs), nnx.Linear(cond, width, rngs=rngs)

    def __call__(self, x: jax.Array, e: jax.Array) -> jax.Array:
        scale = self.scale1(jax.nn.relu(self.scale0(e)))
        shift = self.shift1(jax.nn.relu(self.shift0(e)))
        return x * (1.0 + scale[:, None, None, :]) + shift[:, None, None, :]


class ConditionedBlock(nnx.Module):
    """Boost's residual conditioning after a decoder stage: x + conv(affine(gelu(conv(affine(x)))))."""

    def __init__(self, cond: int, width: int, *, rngs: nnx.Rngs):
        self.affine0 = FrameAffine(cond, width, rngs=rngs)
        self.conv0 = nnx.Conv(width, width, (3, 3), padding="SAME", rngs=rngs)
        self.affine1 = FrameAffine(cond, width, rngs=rngs)
        self.conv1 = nnx.Conv(width, width, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, x: jax.Array, e: jax.Array) -> jax.Array:
        h = jax.nn.gelu(self.conv0(self.affine0(x, e)), approximate=False)
        return x + self.conv1(self.affine1(h, e))
