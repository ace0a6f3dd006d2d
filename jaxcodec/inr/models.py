"""NeRV and HNeRV in Flax NNX, sized by a parameter budget as in the HNeRV paper.

Both share one decoder: a 1x1 "stem" conv with GELU from the frame code to an
``fc_h x fc_w x fc_dim`` grid, upsampling blocks (conv KxK, PixelShuffle, GELU) and a 3x3
head with ``tanh * 0.5 + 0.5``.

- NeRV: the frame code is a sinusoidal encoding of the frame index t/T (base 1.25, 80
  levels), the stem is a linear map to a grid 80x smaller than the frame (8x16 for
  640x1280, as in the paper); blocks use K=3 and halve widths.
- HNeRV: a ConvNeXt encoder turns each frame into a tiny embedding (16 x 2 x 4 for 640x1280);
  the stem is 1x1; kernels grow (1, 3, 5, 5, 5) and widths shrink by 1.2 per block (floor 12)
  so parameters spread evenly. The embeddings are stored in the file, the encoder is not.

``fc_dim`` is solved from the parameter budget with the HNeRV code's quadratic, which
reproduces its Bunny widths (c2 = 32 / 48 / 68 / 97 for 0.35 / 0.75 / 1.5 / 3M).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcodec import container as cf
from jaxcodec.errors import BitstreamError
from jaxcodec.inr.layers import (ConditionedBlock, ConvNeXtEncoder, TimeEmbedding, UpBlock, conv_few_outputs,
                                 positional_encoding)

KINDS = ("hnerv", "nerv", "hinerv")


@dataclass(frozen=True)
class INRConfig:
    """Everything needed to rebuild a model; stored in the .jxc header as JSON."""

    kind: str
    height: int  # padded frame size the network renders
    width: int
    frames: int
    fc_dim: int
    fc_hw: tuple[int, int]
    strides: tuple[int, ...]
    kernels: tuple[int, ...]
    widths: tuple[int, ...]  # output width of each block
    code_dim: int  # HNeRV embedding channels, or NeRV's 2 * pe_levels
    enc_strides: tuple[int, ...] = ()
    enc_dim: int = 64
    pe_base: float = 1.25
    pe_levels: int = 80
    grid_frames: tuple[int, ...] = ()  # HiNeRV: temporal sizes of the base grids
    grid_dim: int = 0  # HiNeRV: channels of each base grid
    local_frames: int = 0  # HiNeRV: temporal size of each stage's local grid
    depths: tuple[int, ...] = ()  # HiNeRV: ConvNeXt blocks at the base and after each upsampling
    cond_dim: int = 0  # NeRV/HNeRV: width of HNeRV-Boost's frame condition (0: an unconditioned decoder)

    def to_json(self) -> dict:
        d = asdict(self)
        if not self.cond_dim:  # files of unconditioned models stay byte for byte what they were
            del d["cond_dim"]
        return d

    @staticmethod
    def from_json(d: dict) -> INRConfig:
        """A config read from a file: every field type- and range-checked (BitstreamError)."""
        w = "video-inr model"
        if not isinstance(d, dict) or not set(d) <= {f.name for f in dataclasses.fields(INRConfig)}:
            raise BitstreamError(f"{w} config has unknown or missing fields")
        blocks = len(cf.field_list(d, "strides", 1, 12, w))
        cfg = INRConfig(
            kind=cf.field_str(d, "kind", w, KINDS),
            height=cf.field_int(d, "height", 1, 1 << 14, w), width=cf.field_int(d, "width", 1, 1 << 14, w),
            frames=cf.field_int(d, "frames", 1, 1 << 20, w), fc_dim=cf.field_int(d, "fc_dim", 1, 4096, w),
            fc_hw=cf.field_ints(d, "fc_hw", 2, 2, 1, 4096, w),
            strides=cf.field_ints(d, "strides", blocks, blocks, 1, 16, w),
            kernels=cf.field_ints(d, "kernels", blocks, blocks, 1, 15, w),
            widths=cf.field_ints(d, "widths", blocks, blocks, 1, 4096, w),
            code_dim=cf.field_int(d, "code_dim", 1, 4096, w),
            enc_strides=cf.field_ints(d, "enc_strides", 0, 12, 1, 64, w) if "enc_strides" in d else (),
            enc_dim=cf.field_int(d, "enc_dim", 1, 4096, w) if "enc_dim" in d else 64,
            pe_base=cf.field_float(d, "pe_base", 1.0, 16.0, w) if "pe_base" in d else 1.25,
            pe_levels=cf.field_int(d, "pe_levels", 1, 256, w) if "pe_levels" in d else 80,
            grid_frames=cf.field_ints(d, "grid_frames", 0, 8, 1, 1 << 16, w) if "grid_frames" in d else (),
            grid_dim=cf.field_int(d, "grid_dim", 0, 1024, w) if "grid_dim" in d else 0,
            local_frames=cf.field_int(d, "local_frames", 0, 1 << 16, w) if "local_frames" in d else 0,
            depths=cf.field_ints(d, "depths", 0, 13, 0, 16, w) if "depths" in d else (),
            cond_dim=cf.field_int(d, "cond_dim", 1, 1024, w) if "cond_dim" in d else 0)
        try:
            cfg.validate()
        except ValueError as exc:
            raise BitstreamError(f"{w} config is inconsistent: {exc}") from None
        return cfg

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}")
        if len(self.strides) != len(self.kernels) or len(self.strides) != len(self.widths):
            raise ValueError("strides, kernels and widths must have one entry per block")
        up = int(np.prod(self.strides))
        if (self.fc_hw[0] * up, self.fc_hw[1] * up) != (self.height, self.width):
            raise ValueError("fc_hw times the strides must give the frame size")
        if self.kind == "nerv" and self.code_dim != 2 * self.pe_levels:
            raise ValueError("NeRV's code_dim must be twice pe_levels")
        if self.kind == "hnerv" and int(np.prod(self.enc_strides)) * self.fc_hw[0] != self.height:
            raise ValueError("encoder strides must reduce the frame to the embedding size")
        if self.kind == "hinerv" and not (self.grid_frames and self.grid_dim >= 1 and self.local_frames >= 1
                                          and len(self.depths) == len(self.strides) + 1):
            raise ValueError("HiNeRV needs base grids, local grids and a depth per stage (plus the base)")
        if self.cond_dim and self.kind == "hinerv":
            raise ValueError("the frame-conditioned decoder is for nerv and hnerv")

    @property
    def embedding_shape(self) -> tuple[int, int, int]:
        """Per-frame stored code [h, w, c] (HNeRV only)."""
        return (self.fc_hw[0], self.fc_hw[1], self.code_dim)


# ---------------------------------------------------------------------------------------
# sizing


def _strides_for(total: int, stages: int) -> tuple[int, ...] | None:
    """Split `total` into `stages` strides <= 5, largest first (320 -> 5,4,4,2,2)."""
    primes, n = [], total
    for p in (5, 3, 2):
        while n % p == 0:
            primes.append(p)
            n //= p
    if n != 1:
        return None
    twos = [p for p in primes if p == 2]
    rest = [p for p in primes if p != 2]
    while len(rest) + len(twos) > stages and len(twos) >= 2:
        twos = twos[2:]
        rest.append(4)
    strides = sorted(rest + twos, reverse=True)
    if len(strides) > stages:
        return None
    return tuple(strides + [1] * (stages - len(strides)))


def choose_grid(height: int, width: int, short_cells: int, stages: int) -> tuple[tuple[int, ...], int, int]:
    """Strides and padded size so the short side spans `short_cells` cells of the code grid.

    Among upsampling factors made of `stages` strides <= 5, prefers the short side closest
    to `short_cells` cells, then the smallest padded frame, then the largest factor.
    Returns (strides, padded_h, padded_w).
    """
    short = min(height, width)
    products = {int(np.prod(c)) for c in itertools.product(range(1, 6), repeat=stages)}
    best = None
    for total in sorted(products):
        strides = _strides_for(total, stages)
        if strides is None:
            continue
        cells = math.ceil(short / total)
        ph, pw = math.ceil(height / total) * total, math.ceil(width / total) * total
        key = (abs(cells - short_cells), ph * pw, -total)
        if best is None or key < best[0]:
            best = (key, strides, ph, pw)
    return best[1], best[2], best[3]


def _widths(fc_dim: int, n: int, reduce: float, lower: int) -> tuple[int, ...]:
    out, ngf = [], fc_dim
    for _ in range(n):
        ngf = int(max(round(ngf / reduce), lower))
        out.append(ngf)
    return tuple(out)


def _solve_fc_dim(budget: float, strides, kernels, reduce: float, b: float) -> int:
    """HNeRV's quadratic a*c^2 + b*c = budget for the stem width c (all stages unsaturated)."""
    r = 1.0 / reduce
    a = r * sum(r ** (2 * i) * s ** 2 * k ** 2 for i, (s, k) in enumerate(zip(strides, kernels)))
    c = (-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a)
    return max(int(c), 1)


def _largest_width(build, budget: float, fixed: int = 0) -> INRConfig:
    """The config of the largest base width whose decoder (plus `fixed` stored values)
    fits the budget: for layouts the quadratic does not describe."""
    lo, hi = 4, 2048
    smallest = decoder_param_count(build(lo)) + fixed
    if smallest > budget:
        raise ValueError(f"a budget of {budget:.0f} parameters cannot hold even its narrowest layout "
                         f"({smallest}); raise --params (or narrow --condition)")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if decoder_param_count(build(mid)) + fixed <= budget:
            lo = mid
        else:
            hi = mid - 1
    return build(lo)


def hnerv_config(height: int, width: int, frames: int, params: float, *, embed_dim: int = 16,
                 enc_dim: int = 64, reduce: float = 1.2, lower_width: int = 12,
                 ks: tuple[int, int] = (1, 5), strides: tuple[int, ...] | None = None,
                 cond_dim: int = 0) -> INRConfig:
    """HNeRV sized so decoder + stored embeddings hold about `params` parameters
    (`cond_dim` > 0: HNeRV-Boost's frame-conditioned decoder, sized the same way)."""
    if strides is None:
        strides, ph, pw = choose_grid(height, width, short_cells=2, stages=5)
    else:
        total = int(np.prod(strides))
        ph, pw = math.ceil(height / total) * total, math.ceil(width / total) * total
    total = int(np.prod(strides))
    fc_hw = (ph // total, pw // total)
    kernels = tuple(min(ks[0] + 2 * i, ks[1]) for i in range(len(strides)))
    embed_params = embed_dim * fc_hw[0] * fc_hw[1] * frames
    if params <= embed_params:
        raise ValueError(f"a budget of {params:.0f} parameters cannot even hold the {embed_params} "
                         f"embedding values of {frames} frames; raise --params")

    def build(fc_dim: int) -> INRConfig:
        return INRConfig("hnerv", ph, pw, frames, fc_dim, fc_hw, tuple(strides), kernels,
                         _widths(fc_dim, len(strides), reduce, lower_width), embed_dim,
                         enc_strides=tuple(strides), enc_dim=enc_dim, cond_dim=cond_dim)

    if cond_dim:
        cfg = _largest_width(build, params, embed_params)
    else:
        cfg = build(_solve_fc_dim(params - embed_params, strides, kernels, reduce, b=embed_dim * 9))
    cfg.validate()
    return cfg


def nerv_config(height: int, width: int, frames: int, params: float, *, pe_levels: int = 80,
                pe_base: float = 1.25, reduce: float = 2.0, lower_width: int = 12,
                kernel: int = 3, cond_dim: int = 0) -> INRConfig:
    """NeRV (as HNeRV's baseline) sized to about `params` decoder parameters."""
    # The paper's 8x16 grid for 640x1280 is an 80x upsampling; keep that ratio at any size.
    strides, ph, pw = choose_grid(height, width, short_cells=max(1, round(min(height, width) / 80)), stages=4)
    total = int(np.prod(strides))
    fc_hw = (ph // total, pw // total)
    kernels = (kernel,) * len(strides)
    code_dim = 2 * pe_levels

    def build(fc_dim: int) -> INRConfig:
        return INRConfig("nerv", ph, pw, frames, fc_dim, fc_hw, tuple(strides), kernels,
                         _widths(fc_dim, len(strides), reduce, lower_width), code_dim,
                         pe_base=pe_base, pe_levels=pe_levels, cond_dim=cond_dim)

    if cond_dim:
        cfg = _largest_width(build, params)
    else:
        cfg = build(_solve_fc_dim(params, strides, kernels, reduce, b=code_dim * fc_hw[0] * fc_hw[1]))
    cfg.validate()
    return cfg


def hinerv_config(height: int, width: int, frames: int, params: float, *, reduce: float = 1.6,
                  lower_width: int = 12, depths: tuple[int, ...] = (0, 3, 3, 3, 1), kernel: int = 5,
                  grid_share: float = 0.25) -> INRConfig:
    """A HiNeRV-class model sized so grids + network hold about `params` parameters.

    Upsampling 5, 2, 2, 2 (HiNeRV's Bunny scales) from a base grid 1/40 of the frame
    (fewer stages for small frames); about `grid_share` of the budget goes to the
    temporal grids, the rest to the ConvNeXt stages, whose base width is solved for.
    """
    from jaxcodec.inr.hinerv import grid_frames

    strides, ph, pw = choose_grid(height, width, short_cells=max(1, round(min(height, width) / 40)), stages=4)
    strides = tuple(s for s in strides if s > 1) or (1,)
    total = int(np.prod(strides))
    fc_hw = (ph // total, pw // total)
    depths = tuple(depths[:len(strides) + 1])
    base_frames = grid_frames(frames)
    local_frames = max(2, math.ceil(frames / 8))

    def build(fc_dim: int, grid_dim: int) -> INRConfig:
        widths = _widths(fc_dim, len(strides), reduce, lower_width)
        return INRConfig("hinerv", ph, pw, frames, fc_dim, fc_hw, strides, (kernel,) * len(strides), widths,
                         code_dim=1, grid_frames=base_frames, grid_dim=grid_dim, local_frames=local_frames,
                         depths=depths)

    cells = fc_hw[0] * fc_hw[1] * sum(base_frames)
    grid_dim = int(min(64, max(2, round(grid_share * params / 2 / cells))))  # half the grid share: base grids
    cfg = _largest_width(lambda fc_dim: build(fc_dim, grid_dim), params)
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------
# modules


class INRDecoder(nnx.Module):
    """Frame code [N, h, w, code_dim] (HNeRV) or [N, 1, 1, code_dim] (NeRV) -> RGB in [0, 1].

    With ``cfg.cond_dim`` (HNeRV-Boost's conditional decoder) the frame index also enters:
    its time embedding modulates a residual block after the stem and after every stage."""

    def __init__(self, cfg: INRConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        cells = 1 if cfg.kind == "hnerv" else cfg.fc_hw[0] * cfg.fc_hw[1]
        self.stem = nnx.Conv(cfg.code_dim, cfg.fc_dim * cells, (1, 1), rngs=rngs)
        self.blocks = nnx.List()
        cin = cfg.fc_dim
        for s, k, w in zip(cfg.strides, cfg.kernels, cfg.widths):
            self.blocks.append(UpBlock(cin, w, s, k, rngs=rngs))
            cin = w
        self.head = nnx.Conv(cin, 3, (3, 3), padding="SAME", rngs=rngs)
        if cfg.cond_dim:
            self.time = TimeEmbedding(cfg.cond_dim, base=cfg.pe_base, levels=cfg.pe_levels, rngs=rngs)
            self.conditioned = nnx.List([ConditionedBlock(cfg.cond_dim, w, rngs=rngs)
                                         for w in (cfg.fc_dim, *cfg.widths)])

    def __call__(self, code: jax.Array, index: jax.Array | None = None) -> jax.Array:
        """`index`: the frames' indices [N] (only a conditioned decoder uses them)."""
        x = jax.nn.gelu(self.stem(code), approximate=False)
        if self.cfg.kind == "nerv":
            x = x.reshape(x.shape[0], self.cfg.fc_hw[0], self.cfg.fc_hw[1], self.cfg.fc_dim)
        if self.cfg.cond_dim:
            if index is None:
                raise ValueError("a frame-conditioned decoder needs the frame indices")
            e = self.time(index.astype(jnp.float32) / self.cfg.frames)
            x = self.conditioned[0](x, e)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if self.cfg.cond_dim:
                x = self.conditioned[i + 1](x, e)
        head = conv_few_outputs(x, self.head.kernel[...], self.head.bias[...])  # = self.head(x), faster gradients
        return jnp.tanh(head) * 0.5 + 0.5


def make_encoder(cfg: INRConfig, rngs: nnx.Rngs) -> ConvNeXtEncoder:
    """HNeRV's frame encoder (used while fitting; never stored in files)."""
    dims = (cfg.enc_dim,) * (len(cfg.enc_strides) - 1) + (cfg.code_dim,)
    return ConvNeXtEncoder(cfg.enc_strides, dims, rngs=rngs)


def make_decoder(cfg: INRConfig, rngs: nnx.Rngs) -> nnx.Module:
    """The stored network of any family (what a file holds, and all a decoder needs)."""
    if cfg.kind == "hinerv":
        from jaxcodec.inr.hinerv import HiNeRVDecoder

        return HiNeRVDecoder(cfg, rngs=rngs)
    return INRDecoder(cfg, rngs=rngs)


def frame_input(cfg: INRConfig, index: jax.Array) -> jax.Array:
    """What the decoder of an index-driven family (NeRV, HiNeRV) takes for frames `index`."""
    return index.astype(jnp.float32) if cfg.kind == "hinerv" else nerv_code(cfg, index)


def nerv_code(cfg: INRConfig, index: jax.Array) -> jax.Array:
    """NeRV's frame code [N, 1, 1, code_dim]: the positional encoding of t / T as a 1x1 'image'."""
    pe = positional_encoding(index / cfg.frames, cfg.pe_base, cfg.pe_levels)
    return pe[:, None, None, :]


def decoder_param_count(cfg: INRConfig) -> int:
    """Stored decoder parameters (grids, stem, blocks, head), without HNeRV's encoder."""
    if cfg.kind != "hinerv":
        return _inr_decoder_param_count(cfg)
    _, state = nnx.split(nnx.eval_shape(lambda: make_decoder(cfg, nnx.Rngs(0))))
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(state)))


def _inr_decoder_param_count(cfg: INRConfig) -> int:
    """INRDecoder's parameters by formula: sizing searches call this many times, and
    building the module abstractly costs about half a second (a test checks it against that)."""
    conv = lambda cin, cout, k: k * k * cin * cout + cout  # noqa: E731
    cells = 1 if cfg.kind == "hnerv" else cfg.fc_hw[0] * cfg.fc_hw[1]
    n = conv(cfg.code_dim, cfg.fc_dim * cells, 1)
    cin = cfg.fc_dim
    for s, k, w in zip(cfg.strides, cfg.kernels, cfg.widths):
        n, cin = n + conv(cin, w * s * s, k), w
    n += conv(cin, 3, 3)
    c = cfg.cond_dim
    if c:
        n += conv(2 * cfg.pe_levels, 2 * c, 1) + conv(2 * c, c, 1)  # the time embedding
        for w in (cfg.fc_dim, *cfg.widths):  # a conditioned block: two affines (4 MLPs), two 3x3 convs
            n += 4 * conv(c, c, 1) + 4 * conv(c, w, 1) + 2 * conv(w, w, 3)
    return n


def stored_param_count(cfg: INRConfig) -> int:
    """What the paper's model size counts: decoder plus the embeddings of every frame."""
    embed = cfg.frames * int(np.prod(cfg.embedding_shape)) if cfg.kind == "hnerv" else 0
    return decoder_param_count(cfg) + embed


__all__ = ["INRConfig", "INRDecoder", "KINDS", "choose_grid", "decoder_param_count", "frame_input",
           "hinerv_config", "hnerv_config", "make_decoder", "make_encoder", "nerv_code", "nerv_config",
           "stored_param_count", "field"]
