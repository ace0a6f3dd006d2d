"""A HiNeRV-class decoder (Kwan et al., NeurIPS 2023) in Flax NNX: hierarchical grid
encodings feeding ConvNeXt stages.

- Base encoding: multi-resolution *temporal* feature grids ``[T_l, h0, w0, grid_dim]``
  (one per level, T_l frames apart), linearly interpolated at the frame's time and
  concatenated, then a 1x1 stem to ``fc_dim`` channels and ConvNeXt blocks.
- Each upsampling stage: bilinear upsampling by its scale, a 1x1 projection to the stage
  width, plus a *local* grid encoding: a learned grid ``[local_frames, s, s, width]``
  indexed by the pixel's position inside its s x s cell and interpolated in time, added
  to every cell; then ConvNeXt blocks (depthwise k x k, LayerNorm, MLP x4, layer scale).
- Head: a 1x1 conv to RGB, ``tanh * 0.5 + 0.5`` as the NeRV family.

Every grid is a stored parameter: quantized and entropy-coded with the network, and
counted by ``--params``. The input is the frame index; nothing per frame is stored.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxcodec.inr.layers import ConvNeXtBlock


def _temporal_lerp(grid: jax.Array, t: jax.Array, frames: int) -> jax.Array:
    """Grid [T_g, ...] linearly interpolated at frame indices t [N] of a T-frame video."""
    tg = grid.shape[0]
    pos = t / max(frames - 1, 1) * (tg - 1)
    lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, tg - 1)
    hi = jnp.minimum(lo + 1, tg - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (grid.ndim - 1))
    return grid[lo] * (1 - w) + grid[hi] * w


def _block(dim: int, kernel: int, rngs: nnx.Rngs) -> ConvNeXtBlock:
    """HiNeRV's ConvNeXt block: layer scale 0.1 and the tanh GELU."""
    return ConvNeXtBlock(dim, kernel, layer_scale=0.1, exact_gelu=False, rngs=rngs)


class HiNeRVDecoder(nnx.Module):
    """Frame indices [N] (float) -> RGB frames [N, height, width, 3] in [0, 1]."""

    def __init__(self, cfg, *, rngs: nnx.Rngs):
        self.cfg = cfg
        h0, w0 = cfg.fc_hw
        init = nnx.initializers.uniform(scale=2e-2)  # grids start small, as HiNeRV's
        self.grids = nnx.List([nnx.Param(init(rngs.params(), (tg, h0, w0, cfg.grid_dim)) - 1e-2)
                               for tg in cfg.grid_frames])
        self.stem = nnx.Linear(cfg.grid_dim * len(cfg.grid_frames), cfg.fc_dim, rngs=rngs)
        self.base = nnx.List([_block(cfg.fc_dim, cfg.kernels[0], rngs) for _ in range(cfg.depths[0])])
        self.proj, self.local, self.stages = nnx.List(), nnx.List(), nnx.List()
        cin = cfg.fc_dim
        for i, (s, w) in enumerate(zip(cfg.strides, cfg.widths)):
            self.proj.append(nnx.Linear(cin, w, rngs=rngs))
            self.local.append(nnx.Param(init(rngs.params(), (cfg.local_frames, s, s, w)) - 1e-2))
            self.stages.append(nnx.List([_block(w, cfg.kernels[i], rngs) for _ in range(cfg.depths[i + 1])]))
            cin = w
        self.head = nnx.Linear(cin, 3, rngs=rngs)

    def __call__(self, t: jax.Array) -> jax.Array:
        cfg = self.cfg
        t = t.reshape(-1).astype(jnp.float32)
        x = jnp.concatenate([_temporal_lerp(g[...], t, cfg.frames) for g in self.grids], axis=-1)
        x = self.stem(x)
        for block in self.base:
            x = block(x)
        for s, proj, local, blocks in zip(cfg.strides, self.proj, self.local, self.stages):
            n, h, w, c = x.shape
            x = proj(jax.image.resize(x, (n, h * s, w * s, c), method="linear"))
            enc = _temporal_lerp(local[...], t, cfg.frames)  # [N, s, s, width]
            x = x + jnp.tile(enc, (1, h, w, 1))
            for block in blocks:
                x = block(x)
        return jnp.tanh(self.head(x)) * 0.5 + 0.5


def grid_frames(frames: int, levels: int = 3, finest: int = 4) -> tuple[int, ...]:
    """Temporal sizes of the base grids: one sample every `finest` frames at the finest
    level, halving the rate per coarser level (HiNeRV's multi-resolution temporal grids)."""
    out = []
    for level in range(levels):
        out.append(max(2, math.ceil(frames / (finest * 2 ** (levels - 1 - level)))))
    return tuple(sorted(set(out)))
