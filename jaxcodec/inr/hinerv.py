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

Patches: with a `Window` plan the decoder renders (and trains on) windows of the frame
that equal the whole-frame result (see `window_plan`), so memory per step does not grow
with the frame size; frames above RENDER_AREA pixels are decoded in patches.

Every grid is a stored parameter: quantized and entropy-coded with the network, and
counted by ``--params``. The input is the frame index; nothing per frame is stored.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcodec.inr.layers import ConvNeXtBlock


RENDER_AREA = 320 * 240  # frames larger than this render (and decode) in patches: memory stays flat


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
    """Frame indices [N] (float) -> RGB frames [N, height, width, 3] in [0, 1], or, with a
    window plan and offsets, the patch of each frame at that offset (see `window_plan`)."""

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

    def __call__(self, t: jax.Array, plan: Window | None = None, offset: jax.Array | None = None) -> jax.Array:
        """`plan` None renders whole frames; else `offset` [N, 2] (top, left, output pixels)
        places each frame's plan.patch-sized window."""
        cfg = self.cfg
        t = t.reshape(-1).astype(jnp.float32)
        n = t.shape[0]
        plan = plan or window_plan(cfg)
        offset = jnp.zeros((n, 2), jnp.int32) if offset is None else offset.astype(jnp.int32)
        starts = plan.starts(offset)  # per level: [N, 2] start of the window its blocks work on
        levels = plan.levels

        def work(x, level, blocks):  # a level's blocks on its window, cropped to what the next level reads
            (lh, lw), halo = levels[level]
            mask = None if level < plan.full else _inside(starts[level], lh + 2 * halo, lw + 2 * halo, plan.sizes[level])
            for block in blocks:
                x = block(x, mask)
            return x[:, halo:halo + lh, halo:halo + lw]

        x = jnp.concatenate([_temporal_lerp(g[...], t, cfg.frames) for g in self.grids], axis=-1)
        if not plan.full:
            x = _select(x, starts[0], levels[0], plan.sizes[0])
        x = work(self.stem(x), 0, self.base)
        for i, (s, proj, local, blocks) in enumerate(zip(cfg.strides, self.proj, self.local, self.stages)):
            enc = _temporal_lerp(local[...], t, cfg.frames)  # [N, s, s, width]: by position in the cell
            x = proj(x)  # the 1x1 projection commutes with the lerp: run it on the smaller map
            if i + 1 < plan.full:  # XLA's resize is faster than the window's interpolation matrices
                _, h, w, c = x.shape
                x = jax.image.resize(x, (n, h * s, w * s, c), method="linear") + jnp.tile(enc, (1, h, w, 1))
            else:
                (lh, lw), halo = levels[i + 1]
                prev_start = starts[i] + levels[i][1]  # where the previous level's read window starts
                pos_y = starts[i + 1][:, 0, None] + jnp.arange(lh + 2 * halo)  # [N, M] rows of this window
                pos_x = starts[i + 1][:, 1, None] + jnp.arange(lw + 2 * halo)
                ay = _upsample_matrix(pos_y, s, plan.sizes[i][0], prev_start[:, 0], x.shape[1])
                ax = _upsample_matrix(pos_x, s, plan.sizes[i][1], prev_start[:, 1], x.shape[2])
                x = jnp.einsum("nxj,nyjc->nyxc", ax, jnp.einsum("nyi,nixc->nyxc", ay, x))
                oy = jax.nn.one_hot(pos_y % s, s, dtype=x.dtype)
                ox = jax.nn.one_hot(pos_x % s, s, dtype=x.dtype)
                x = x + jnp.einsum("nyi,nxj,nijc->nyxc", oy, ox, enc)
            x = work(x, i + 1, blocks)
        return jnp.tanh(self.head(x)) * 0.5 + 0.5


@dataclasses.dataclass(frozen=True)
class Window:
    """The static shape of a render: for every level (base grid, then each stage), the
    window (rows, cols) the next level reads and the halo its blocks need around it.

    A patch is exact because every level works on its window plus a halo of
    depth * (kernel // 2) (how far its depthwise convs reach), zeroes what lies outside the
    frame before each conv (the zero padding of a whole frame), and bilinear upsampling
    indexes the previous level in frame coordinates, clamped at the frame edge."""

    patch: tuple[int, int]
    levels: tuple[tuple[tuple[int, int], int], ...]
    sizes: tuple[tuple[int, int], ...]  # each level's frame size
    strides: tuple[int, ...]
    full: int = 0  # the first `full` levels work on the whole frame (cheaper than their windows)

    @property
    def whole(self) -> bool:
        """Whole frames: every level is its frame, from (0, 0)."""
        return self.full == len(self.levels)

    def starts(self, offset: jax.Array) -> list[jax.Array]:
        """Start [N, 2] of each level's working window (its read window minus the halo)."""
        out = [jnp.zeros_like(offset)] * len(self.levels)
        o = offset
        for j in range(len(self.levels) - 1, self.full - 1, -1):
            out[j] = o - self.levels[j][1]
            if j:
                s = self.strides[j - 1]
                o = jnp.floor_divide(2 * out[j] + 1 - s, 2 * s)  # first source row of the bilinear taps
        return out

    def tiles(self) -> np.ndarray:
        """[K, 2] offsets of the patches that tile the frame (one, at (0, 0), for whole frames)."""
        return tile_offsets(*self.sizes[-1], self.patch)


def window_plan(cfg, patch: tuple[int, int] | None = None, coarse_whole: bool = True) -> Window:
    """Window shapes for rendering `patch`-sized pieces of frames (None: whole frames).
    With `coarse_whole`, leading levels whose window is larger than their frame run whole."""
    sizes = [cfg.fc_hw]
    for s in cfg.strides:
        sizes.append((sizes[-1][0] * s, sizes[-1][1] * s))
    if patch is None:
        levels = tuple((size, 0) for size in sizes)
        return Window(tuple(sizes[-1]), levels, tuple(sizes), tuple(cfg.strides), full=len(sizes))
    ph, pw = patch
    if not (1 <= ph <= cfg.height and 1 <= pw <= cfg.width):
        raise ValueError(f"patch {ph}x{pw} does not fit the {cfg.height}x{cfg.width} frame")
    levels = [None] * len(sizes)
    read = (ph, pw)
    for j in range(len(sizes) - 1, -1, -1):
        halo = cfg.depths[j] * (cfg.kernels[max(j - 1, 0)] // 2)
        levels[j] = (read, halo)
        if j:
            s = cfg.strides[j - 1]
            read = tuple(-(-(r + 2 * halo - 1) // s) + 2 for r in read)
    full = 0  # coarse levels whose window (with its halo) is larger than their whole frame run whole
    while coarse_whole and full < len(sizes) - 1 and _area(levels[full]) >= sizes[full][0] * sizes[full][1]:
        levels[full] = (sizes[full], 0)
        full += 1
    return Window((ph, pw), tuple(levels), tuple(sizes), tuple(cfg.strides), full)


def _area(level: tuple[tuple[int, int], int]) -> int:
    (h, w), halo = level
    return (h + 2 * halo) * (w + 2 * halo)


def tile_offsets(height: int, width: int, patch: tuple[int, int]) -> np.ndarray:
    """[K, 2] (top, left) of patches that tile a frame; the last row and column are moved
    back to end at the frame edge, so every patch has the same shape (they overlap there)."""
    ph, pw = patch
    ys = sorted({min(y, height - ph) for y in range(0, height, ph)})
    xs = sorted({min(x, width - pw) for x in range(0, width, pw)})
    return np.array([(y, x) for y in ys for x in xs], np.int32)


def render_patch(cfg, max_area: int = RENDER_AREA) -> tuple[int, int] | None:
    """The patch rendering uses for a frame size: None (whole frames) up to `max_area`
    pixels, else the near-square equal split into pieces of at most that area."""
    if cfg.height * cfg.width <= max_area:
        return None
    side = math.isqrt(max_area)
    ny, nx = -(-cfg.height // side), -(-cfg.width // side)
    return -(-cfg.height // ny), -(-cfg.width // nx)


def _inside(start: jax.Array, rows: int, cols: int, size: tuple[int, int]) -> jax.Array:
    """[N, rows, cols, 1]: 1 where a window starting at `start` lies inside the frame."""
    y = start[:, 0, None] + jnp.arange(rows)
    x = start[:, 1, None] + jnp.arange(cols)
    iy = ((y >= 0) & (y < size[0])).astype(jnp.float32)
    ix = ((x >= 0) & (x < size[1])).astype(jnp.float32)
    return (iy[:, :, None] * ix[:, None, :])[..., None]


def _select(x: jax.Array, start: jax.Array, level: tuple[tuple[int, int], int], size: tuple[int, int]) -> jax.Array:
    """The working window of the base level, rows and columns clamped into the frame."""
    (lh, lw), halo = level
    ys = jnp.clip(start[:, 0, None] + jnp.arange(lh + 2 * halo), 0, size[0] - 1)
    xs = jnp.clip(start[:, 1, None] + jnp.arange(lw + 2 * halo), 0, size[1] - 1)
    x = jnp.einsum("nyi,nixc->nyxc", jax.nn.one_hot(ys, x.shape[1], dtype=x.dtype), x)
    return jnp.einsum("nxj,nyjc->nyxc", jax.nn.one_hot(xs, x.shape[2], dtype=x.dtype), x)


def _upsample_matrix(pos: jax.Array, s: int, size: int, src_start: jax.Array, src_len: int) -> jax.Array:
    """[N, M, src_len] weights of bilinear upsampling by s (half-pixel centres, edges
    clamped, as jax.image.resize) for output rows `pos` [N, M], reading a source window
    of src_len rows that starts at src_start [N] in the previous level's frame."""
    num = 2 * pos + 1 - s  # source coordinate (pos + 0.5) / s - 0.5 = num / (2 s)
    i0 = jnp.floor_divide(num, 2 * s)
    frac = ((num - 2 * s * i0) / (2 * s)).astype(jnp.float32)[..., None]
    lo = jnp.clip(i0, 0, size - 1) - src_start[:, None]
    hi = jnp.clip(i0 + 1, 0, size - 1) - src_start[:, None]
    return jax.nn.one_hot(lo, src_len) * (1 - frac) + jax.nn.one_hot(hi, src_len) * frac


def grid_frames(frames: int, levels: int = 3, finest: int = 4) -> tuple[int, ...]:
    """Temporal sizes of the base grids: one sample every `finest` frames at the finest
    level, halving the rate per coarser level (HiNeRV's multi-resolution temporal grids)."""
    out = []
    for level in range(levels):
        out.append(max(2, math.ceil(frames / (finest * 2 ** (levels - 1 - level)))))
    return tuple(sorted(set(out)))
