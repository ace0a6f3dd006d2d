"""``video-inr``: a video coded as a quantized implicit neural representation.

Encoding fits NeRV or HNeRV to the frames with the shared rate-distortion trainer
(distortion: MSE of frames rendered with straight-through quantized weights; rate: bits of
the weights, and HNeRV's per-frame embeddings, under per-tensor Laplace models), then
stores the integer weights and embeddings, entropy-coded with per-tensor tables, in a
``.jxc`` file. Decoding rebuilds the decoder from the file alone, renders frame batches
with a jitted function, and crops back to the exact original size.

File layout: the header holds the model config, each stored tensor's shape and Laplace
scale, the video geometry and how the source was preprocessed; section ``steps`` holds
the float16 quantization steps (and embedding offsets); section ``symbols`` holds one
entropy-coded stream of every integer.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcodec import container
from jaxcodec.codecs import CodecEntry, Command, Progress, decode_boundary, options_from_args, register
from jaxcodec.container import (Container, check_output_size, field_dict, field_float, field_int, field_ints,
                                field_list)
from jaxcodec.data.media import cli_type, parse_count, parse_size
from jaxcodec.data.video import Preprocess, frame_count_ok, pad_to, write_video
from jaxcodec.entropy import coder
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.inr import quant
from jaxcodec.inr.hinerv import render_patch, window_plan
from jaxcodec.inr.models import (KINDS, INRConfig, frame_input, hinerv_config, hnerv_config, make_decoder,
                                 make_encoder, nerv_config, stored_param_count)
from jaxcodec.metrics import ms_ssim
from jaxcodec.train import TrainConfig, Trainer
from jaxcodec.train.trainer import prepare_run_folder

CODEC_ID = "video-inr"
log = logging.getLogger(__name__)
PRIOR = quant.WEIGHT_PRIOR
RENDER_BATCH = 8
# (peak lr, gradient clip) per family: HNeRV's recipe; HiNeRV's is 2e-3 with clip 1, and 3e-3 beat
# 1e-3 by 0.8 dB on 32 Bunny frames at 0.1M / 30 epochs here.
FAMILY_TRAINING = {"hnerv": (1e-3, 0.0), "nerv": (1e-3, 0.0), "hinerv": (3e-3, 1.0)}
# HiNeRV's L1 + MS-SSIM loss: +1.25 dB at 0.1M / 30 epochs on Bunny (ablation), checked on bikes.mp4.
FAMILY_LOSS = {"hnerv": "mse", "nerv": "mse", "hinerv": "l1-msssim"}
# HiNeRV trains on whole frames one at a time up to RENDER_AREA pixels (on patches above it, so memory stays
# flat): at equal steps (1920) on 32 frames at 320x160, 0.1M, that beat 4 patches of a frame two at a time by
# +1.27 dB at +6% rate on Bunny and +2.04 dB at +2% on bikes.mp4, in 19-28% less time.
FAMILY_BATCH = {"hnerv": 2, "nerv": 2, "hinerv": 1}
LOSSES = ("mse", "l1-msssim")
# HNeRV embeddings trained directly (after --freeze-encoder) learn at 10x the network's rate: at 1x they lost
# 0.30 dB on 32 Bunny frames (0.1M, 40 epochs, frozen after 8), at 3x 0.17, at 10x 0.08, at 30x 0.09.
EMBED_GAIN = 10.0
# HNeRV's encoder freezes after a fifth of the epochs (32 frames at 320x160, 0.1M, 40 epochs): Bunny -0.08 dB at
# 0.5% less rate; bikes.mp4 23.43 dB where the encoder training throughout stalled at 14.97 dB.
FREEZE_ENCODER = 0.2
# lambda per family (it weighs bits per pixel against the family's distortion, for HiNeRV L1 + MS-SSIM, not MSE).
# HiNeRV on 32 frames at 320x160, 30 epochs, 0.025-0.4M: lambda 0.018 gave BD-rate -20.1% against 0.002 on Bunny
# (0.05: -20.3%, but it flattens above 0.2M: 0.4M reaches 25.01 dB where 0.018 reaches 25.69), and on bikes.mp4
# 0.1M at 0.018 sat 0.54 dB above the curve that 0.05M and 0.2M trace at 0.002 (0.05: 0.32 dB).
FAMILY_LAMBDA = {"hnerv": 0.002, "nerv": 0.002, "hinerv": 0.018}
# what files spend per stored parameter (32 Bunny frames, 30 epochs: HNeRV 3.8-5.8 at lambda 0.002, HiNeRV 7.5 at
# 25k falling to 2.3 at 0.4M at 0.018): sizes the network for --bpp, and the export's step search lands the rate
BITS_PER_PARAM = 5.5


def family_lambda(inr: str, lam: float | None = None) -> float:
    """The lambda a run trains with: `lam` (--lambda) where given, else its family's."""
    return FAMILY_LAMBDA[inr] if lam is None else lam


@dataclass(frozen=True)
class EncodeOptions:
    inr: str = "hnerv"
    params: float = 0.3e6  # stored parameters: decoder (+ HNeRV embeddings)
    epochs: int = 300
    lam: float | None = None  # loss = distortion + lam * bits per pixel; None: the family's (FAMILY_LAMBDA)
    batch_size: int | None = None  # frames (or patches) per step; None: the family's (FAMILY_BATCH)
    lr: float | None = None  # peak learning rate; None: the family's (FAMILY_TRAINING)
    seed: int = 0
    workdir: str | None = None  # checkpoints and metrics.jsonl
    resume: bool = False
    checkpoint_every: int = 0
    grad_clip: float | None = None  # global-norm clipping (0: off; None: the family's)
    prune: float = 0.0  # fraction of each kernel pruned by magnitude after fitting (HiNeRV: 0.15)
    prune_epochs: int = 0  # fine-tuning epochs with the pruning mask fixed
    prune_lr: float = 0.1  # their learning rate, relative to --lr
    bpp: float | None = None  # target rate: sizes the network (overrides params) and sets the export steps
    kbps: float | None = None  # the same target as kilobits per second of video (needs the frame rate)
    patch: tuple[int, int] | None = None  # HiNeRV: train on (width, height) patches (None: the family's)
    # peak learning rate of the log quantization steps (None: the network's): they must travel ~1-2
    # (a factor 3-6 from their 7-bit start) to where lambda puts them; at 1e-3, 30 epochs moved them 0.08
    step_lr: float | None = 1e-2
    loss: str | None = None  # "mse" or HiNeRV's "l1-msssim" (0.7 L1 + 0.3 (1 - MS-SSIM)); None: the family's
    # HNeRV: the share of the epochs after which the encoder freezes and the frame embeddings train
    # directly (its forward and backward pass are then skipped); 1: the encoder trains throughout
    freeze_encoder: float = FREEZE_ENCODER
    # NeRV/HNeRV: HNeRV-Boost's frame-conditioned decoder with a time embedding this wide (0: off)
    condition: int = 0

    def __post_init__(self) -> None:
        if self.inr not in KINDS:
            raise InputError(f"unknown network family {self.inr!r}: choose one of {', '.join(KINDS)}")
        if self.epochs < 1 or (self.batch_size is not None and self.batch_size < 1):
            raise InputError("--epochs and --batch-size must be at least 1")
        if not 0.0 <= self.prune < 1.0 or (self.prune > 0 and self.prune_epochs < 1) or self.prune_epochs < 0:
            raise InputError("--prune is a fraction in [0, 1) and needs --prune-epochs >= 1 of fine-tuning")
        if not (math.isfinite(self.params) and self.params > 0
                and (self.lam is None or (math.isfinite(self.lam) and self.lam >= 0))
                and (self.lr is None or (math.isfinite(self.lr) and self.lr > 0))
                and (self.grad_clip is None or self.grad_clip >= 0)
                and (self.step_lr is None or (math.isfinite(self.step_lr) and self.step_lr > 0))):
            raise InputError("--params and --lr must be positive, --lambda and --grad-clip non-negative")
        if not 0.0 < self.freeze_encoder <= 1.0:
            raise InputError("--freeze-encoder is a share of the epochs in (0, 1]")
        if self.resume and not self.workdir:
            raise InputError("--resume needs the --workdir that holds the checkpoints")
        if self.bpp is not None and self.kbps is not None:
            raise InputError("give the target rate once: --bpp or --kbps")
        if self.kbps is not None and not (math.isfinite(self.kbps) and self.kbps > 0):
            raise InputError("--kbps must be positive")
        if self.loss is not None and self.loss not in LOSSES:
            raise InputError(f"unknown --loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.patch is not None and self.inr != "hinerv":
            raise InputError("--patch trains HiNeRV on patches; nerv and hnerv train on whole frames")
        if self.condition and self.inr == "hinerv":
            raise InputError("--condition is for nerv and hnerv: hinerv's temporal grids already condition it")

    @property
    def rate_weight(self) -> float:
        """The lambda this run trains with: --lambda, or its family's."""
        return family_lambda(self.inr, self.lam)

    def for_video(self, frames: int, height: int, width: int, fps: float) -> EncodeOptions:
        """These options with a --kbps target as bpp, and --params set from it, for this video."""
        opts = self
        if self.kbps is not None:
            opts = dataclasses.replace(self, kbps=None, bpp=self.kbps * 1000 / (fps * height * width))
        if opts.bpp is None:
            return opts
        return dataclasses.replace(opts, params=opts.bpp * frames * height * width / BITS_PER_PARAM)

    def model_config(self, height: int, width: int, frames: int) -> INRConfig:
        make = {"hnerv": hnerv_config, "nerv": nerv_config, "hinerv": hinerv_config}[self.inr]
        extra = {"cond_dim": self.condition} if self.condition else {}
        try:
            return make(height, width, frames, self.params, **extra)
        except ValueError as exc:
            raise InputError(f"cannot size a {self.inr} model for {width}x{height}: {exc}") from None


@dataclass
class EncodeResult:
    container: Container
    reconstruction: np.ndarray  # what decode() will return, computed at encode time
    config: INRConfig
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] | None = None  # the trained parameters (a next group starts from them)
    weights: list[np.ndarray] | None = None  # the decoder's weights as decoded (a next group's reference)


# ---------------------------------------------------------------------------------------
# model plumbing


@functools.lru_cache(maxsize=8)
def _decoder_parts(cfg: INRConfig):
    """Graph, abstract leaves (shapes) and tree structure of a config's decoder."""
    graph, state = nnx.split(nnx.eval_shape(lambda: make_decoder(cfg, nnx.Rngs(0))))
    leaves, treedef = jax.tree_util.tree_flatten(state)
    return graph, leaves, treedef


def decoder_shapes(cfg: INRConfig) -> list[tuple[int, ...]]:
    """Shapes of a config's decoder tensors, in the order files store them."""
    return [tuple(x.shape) for x in _decoder_parts(cfg)[1]]


def _decode_frames(cfg: INRConfig, decoder, code, index, plan=None, offset=None) -> jax.Array:
    """The decoder's frames for codes `code` of frames `index` (of patches at `offset` with `plan`)."""
    if plan is not None:
        return decoder(code, plan, offset)
    return decoder(code, index) if cfg.cond_dim else decoder(code)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _render(cfg, graph, treedef, plan, leaves, code, index, offset):
    model = nnx.merge(graph, jax.tree_util.tree_unflatten(treedef, leaves))
    out = _decode_frames(cfg, model, code, index, plan, offset)
    return jnp.round(jnp.clip(out, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def render(cfg: INRConfig, leaves: list[np.ndarray], embeddings: np.ndarray | None,
           height: int, width: int) -> np.ndarray:
    """Frames [T, height, width, 3] uint8 from dequantized decoder weights (and codes);
    large HiNeRV frames in patches (the same on both sides of the file)."""
    graph, _, treedef = _decoder_parts(cfg)
    dev_leaves = [jnp.asarray(x) for x in leaves]
    patch = render_patch(cfg) if cfg.kind == "hinerv" else None
    plan = window_plan(cfg, patch)
    tiles, (ph, pw) = plan.tiles(), plan.patch
    plan = None if patch is None else plan  # whole frames: the decoder's own call
    out = np.empty((cfg.frames, height, width, 3), np.uint8)
    full = np.empty((RENDER_BATCH, cfg.height, cfg.width, 3), np.uint8)
    for i in range(0, cfg.frames, RENDER_BATCH):
        idx = np.arange(i, i + RENDER_BATCH) % cfg.frames  # full batches: one compiled shape
        index = jnp.asarray(idx, jnp.float32)
        code = frame_input(cfg, index) if embeddings is None else jnp.asarray(embeddings[idx])
        for y, x in tiles:
            offset = jnp.asarray(np.tile([[y, x]], (RENDER_BATCH, 1)), jnp.int32)
            full[:, y:y + ph, x:x + pw] = np.asarray(_render(cfg, graph, treedef, plan, dev_leaves, code, index,
                                                             offset))
        n = min(RENDER_BATCH, cfg.frames - i)
        out[i:i + n] = full[:n, :height, :width]
    return out


# ---------------------------------------------------------------------------------------
# training


def _make_loss(cfg: INRConfig, enc_graph, dec_graph, dec_treedef, lam: float, height: int, width: int,
               masks: list[jax.Array] | None = None, plan=None, loss: str = "mse", residual: bool = False,
               direct: bool = False):
    """The distortion (`loss`) over the batch's valid pixels (of whole frames, or of patches
    with `plan`) plus lam * bits per pixel of everything stored. `residual`: the loss takes
    the trainer's state, whose "reference" leaves the weights are coded against. `direct`
    (HNeRV): the frame codes are the trained table params["embeddings"], not the encoder's."""
    pixels = float(height * width * cfg.frames)

    def loss_fn(params, batch, key, step, refs=None):
        frames, index = batch["frames"].astype(jnp.float32) / 255.0, batch["index"]
        kw, ke = jax.random.split(key)
        leaves = jax.tree_util.tree_leaves(params["decoder"])
        if masks is not None:  # pruned weights are zero in the forward pass, the rate term and the file
            leaves = [x * m for x, m in zip(leaves, masks)]
        leaves, wbits = quant.fake_quant_tree(leaves, params["log_steps"], kw, refs)
        decoder = nnx.merge(dec_graph, jax.tree_util.tree_unflatten(dec_treedef, leaves))
        if cfg.kind == "hnerv" and direct:  # the encoder is frozen: the embeddings train themselves
            table, ebits = quant.fake_quant_embeddings(params["embeddings"], params["embed_log_step"], ke)
            code = table[index]
        elif cfg.kind == "hnerv":
            code = nnx.merge(enc_graph, params["encoder"])(frames)
            code, ebits = quant.fake_quant_embeddings(code, params["embed_log_step"], ke)
            ebits = ebits * (cfg.frames / frames.shape[0])  # this batch stands for all frames
        else:
            code, ebits = frame_input(cfg, index.astype(jnp.float32)), 0.0
        out = _decode_frames(cfg, decoder, code, index, plan, batch.get("offset"))
        valid = batch["valid"][..., None]
        mse = jnp.sum(jnp.square(out - frames) * valid) / (jnp.sum(valid) * 3)
        distortion = mse
        if loss == "l1-msssim":  # padding (odd sizes) takes the target's values: it scores as perfect
            out = out * valid + frames * (1 - valid)
            l1 = jnp.sum(jnp.abs(out - frames)) / (jnp.sum(valid) * 3)
            distortion = 0.7 * l1 + 0.3 * (1 - jnp.mean(ms_ssim(out, frames)))
        bpp = (wbits + ebits) / pixels
        return distortion + lam * bpp, {"psnr": -10 * jnp.log10(jnp.maximum(mse, 1e-12)), "bpp": bpp, "mse": mse}

    if residual:
        def against_reference(params, state, batch, key, step):
            loss, metrics = loss_fn(params, batch, key, step, state["reference"])
            return loss, (metrics, state)
        return against_reference
    return loss_fn


# One loss function object per equal configuration: the trainer's compiled step is cached by it, so the
# groups of a --gop encode (and repeated fits in one process) compile once instead of once each.
_shared_loss = functools.lru_cache(maxsize=8)(_make_loss)


@dataclass
class Fitted:
    config: INRConfig
    params: dict[str, Any]
    encoder_graph: Any  # HNeRV's encoder (not stored in files), None for NeRV
    history: list[dict[str, Any]]
    reference: list[np.ndarray] | None = None  # decoded weights the file codes the differences from
    direct_embeddings: bool = False  # HNeRV: params["embeddings"] are the codes (the encoder was frozen)


def fit(frames: np.ndarray, opts: EncodeOptions, *, config: INRConfig | None = None,
        init: dict[str, Any] | None = None, reference: list[np.ndarray] | None = None,
        devices: Sequence[jax.Device] | None = None, on_step=None, on_log=None) -> Fitted:
    """Train a model on uint8 frames [T, H, W, 3] with the shared trainer; `config`
    overrides the one `opts` sizes, `init` (a previous fit's params) replaces every
    initial parameter whose shape it matches; `reference` (decoded weights, one per decoder
    tensor, zeros where there is none) makes the rate that of the differences from it;
    `devices` (default: this process's) share each batch."""
    frame_count_ok(frames)
    t, h, w = frames.shape[:3]
    cfg = opts.model_config(h, w, t) if config is None else config
    rngs = nnx.Rngs(opts.seed)
    dec_graph, dec_state = nnx.split(make_decoder(cfg, rngs))
    dec_leaves, dec_treedef = jax.tree_util.tree_flatten(dec_state)
    params: dict[str, Any] = {"decoder": dec_state, "log_steps": quant.init_log_steps(dec_leaves)}
    enc_graph = None
    if cfg.kind == "hnerv":
        enc_graph, params["encoder"] = nnx.split(make_encoder(cfg, rngs))
        params["embed_log_step"] = quant.init_embed_log_step(cfg.code_dim)
        params["embeddings"] = jnp.zeros((t, *cfg.embedding_shape), jnp.float32)  # filled when the encoder freezes
    if init is not None:
        params = _start_from(params, init)
    if reference is not None:
        if opts.prune > 0:
            raise InputError("weights coded against a reference cannot be pruned: use --prune 0")
        if [tuple(r.shape) for r in reference] != [tuple(x.shape) for x in dec_leaves]:
            raise ValueError("the reference does not have the decoder's tensor shapes")

    padded = pad_to(frames, cfg.height, cfg.width)
    batch = FAMILY_BATCH[cfg.kind] if opts.batch_size is None else opts.batch_size
    devices = jax.local_devices() if devices is None else list(devices)
    batch = min(batch, t)
    if batch < 1 or batch % len(devices):
        raise InputError(f"batch size {batch} must be a positive multiple of the {len(devices)} devices")
    valid = np.zeros((cfg.height, cfg.width), np.float32)
    valid[:h, :w] = 1.0  # the padding to the network's size is not scored
    plan, tiles, (ph, pw) = None, np.zeros((1, 2), np.int32), (cfg.height, cfg.width)
    patch = opts.patch
    if patch is None and cfg.kind == "hinerv" and render_patch(cfg) is not None:
        patch = render_patch(cfg)[::-1]  # large frames train on the patches they render in
    if patch is not None and (patch[1] < cfg.height or patch[0] < cfg.width):  # else whole frames
        ph, pw = min(patch[1], cfg.height), min(patch[0], cfg.width)
        plan = window_plan(cfg, (ph, pw))
        tiles = plan.tiles()
    units = t * len(tiles)  # an epoch visits every patch of every frame once
    steps_per_epoch = -(-units // batch)

    def sampler(step: int) -> dict[str, np.ndarray]:
        epoch, within = divmod(step, steps_per_epoch)
        order = np.random.default_rng([opts.seed, epoch]).permutation(units)
        unit = np.resize(order, steps_per_epoch * batch)[within * batch:(within + 1) * batch]
        idx, (ys, xs) = unit // len(tiles), tiles[unit % len(tiles)].T
        rows, cols = ys[:, None] + np.arange(ph), xs[:, None] + np.arange(pw)
        return {"frames": padded[idx[:, None, None], rows[:, :, None], cols[:, None, :]],
                "valid": valid[rows[:, :, None], cols[:, None, :]],
                "index": idx.astype(np.int32), "offset": tiles[unit % len(tiles)]}

    history: list[dict[str, Any]] = []

    def log(record: dict[str, Any]) -> None:
        history.append(record)
        if on_log is not None:
            on_log(record)

    def stage(params, epochs: int, lr: float, workdir, masks=None, name: str = "fit", freeze_at: int | None = None,
              direct: bool = False):
        """Train `epochs`; HNeRV's encoder freezes after `freeze_at` epochs (its codes of every
        frame become trained parameters), or is frozen throughout with `direct`."""
        tcfg = TrainConfig(steps=epochs * steps_per_epoch, lr=lr, steps_per_epoch=steps_per_epoch,
                           warmup=0.1 if name == "fit" else 0.0, checkpoint_every=opts.checkpoint_every,
                           grad_clip=grad_clip, seed=opts.seed,
                           lr_scale=(("log_steps", step_gain), ("embed_log_step", step_gain),
                                     ("embeddings", EMBED_GAIN)))
        make = _make_loss if masks is not None else _shared_loss  # masks (arrays) cannot key a cache

        def loss_fn(direct: bool):
            return make(cfg, enc_graph, dec_graph, dec_treedef, opts.rate_weight, h, w, masks, plan, loss,
                        reference is not None, direct)

        state = None if reference is None else {"reference": [jnp.asarray(r, jnp.float32) for r in reference]}
        trainer = Trainer(loss_fn(direct), params, tcfg, sampler, state=state, devices=devices, workdir=workdir,
                          on_step=on_step, on_log=lambda r: log({**r, "stage": name}))
        try:
            if opts.resume:
                trainer.restore()
            if freeze_at is not None:
                switch = freeze_at * steps_per_epoch
                if trainer.step < switch:
                    trainer.run(more_steps=switch - trainer.step)
                if trainer.step == switch:  # (a run resumed past the switch has its embeddings)
                    codes = _codes_of(enc_graph, trainer.params["encoder"], padded)  # equal on every process
                    table = jax.make_array_from_callback(codes.shape, trainer.replicated, lambda index: codes[index])
                    trainer.params = {**trainer.params, "embeddings": table}
                trainer.set_loss(loss_fn(True))
            return trainer.run()
        finally:
            trainer.close()

    family_lr, family_clip = FAMILY_TRAINING[cfg.kind]
    loss = FAMILY_LOSS[cfg.kind] if opts.loss is None else opts.loss
    lr = family_lr if opts.lr is None else opts.lr
    step_gain = 1.0 if opts.step_lr is None else opts.step_lr / lr  # kept in the pruning stage's lower lr
    grad_clip = family_clip if opts.grad_clip is None else opts.grad_clip
    freeze_at = max(1, round(opts.freeze_encoder * opts.epochs))
    if cfg.kind != "hnerv" or freeze_at >= opts.epochs:  # (a short run keeps its encoder to the end)
        freeze_at = None
    params = stage(params, opts.epochs, lr, opts.workdir, freeze_at=freeze_at)
    direct = freeze_at is not None
    if opts.prune > 0:  # HiNeRV's stage 2: prune by magnitude, then fine-tune with the mask fixed
        masks = prune_masks(params["decoder"], opts.prune)
        workdir = None if opts.workdir is None else Path(opts.workdir) / "prune"
        params = stage(params, opts.prune_epochs, lr * opts.prune_lr, workdir, masks, "prune", direct=direct)
        leaves = [x * m for x, m in zip(jax.tree_util.tree_leaves(params["decoder"]), masks)]
        params = {**params, "decoder": jax.tree_util.tree_unflatten(dec_treedef, leaves)}
    return Fitted(cfg, params, enc_graph, history, reference, direct)


def _start_from(params: dict[str, Any], init: dict[str, Any]) -> dict[str, Any]:
    """`params` with every leaf that `init` has in the same place and shape taken from it."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    old, old_def = jax.tree_util.tree_flatten(init)
    if old_def != treedef:
        return params
    return jax.tree_util.tree_unflatten(treedef, [o if np.shape(o) == np.shape(x) else x
                                                  for x, o in zip(leaves, old)])


def prune_masks(decoder_state: Any, fraction: float) -> list[jax.Array]:
    """1 for kept, 0 for pruned entries of every decoder leaf: in each conv / linear
    kernel the `fraction` of smallest magnitude goes; biases, norms and grids stay."""
    masks = []
    for path, x in jax.tree_util.tree_flatten_with_path(decoder_state)[0]:
        if "kernel" in jax.tree_util.keystr(path) and x.ndim >= 2:
            threshold = jnp.quantile(jnp.abs(x), fraction)
            masks.append((jnp.abs(x) > threshold).astype(x.dtype))
        else:
            masks.append(jnp.ones_like(x))
    return masks


@functools.partial(jax.jit, static_argnums=0)
def _encode_frames(graph, state, frames):
    return nnx.merge(graph, state)(frames.astype(jnp.float32) / 255.0)


def _codes_of(graph, state, padded: np.ndarray) -> np.ndarray:
    out = [np.asarray(_encode_frames(graph, state, jnp.asarray(padded[i:i + 8]))) for i in range(0, len(padded), 8)]
    return np.concatenate(out)


def embeddings_of(fitted: Fitted, padded: np.ndarray) -> np.ndarray:
    """HNeRV embeddings of every frame, [T, h, w, C] float32: the trained table where the
    encoder was frozen, else the encoder's output."""
    if fitted.direct_embeddings:
        return np.asarray(fitted.params["embeddings"], np.float32)
    return _codes_of(fitted.encoder_graph, fitted.params["encoder"], padded)


# ---------------------------------------------------------------------------------------
# quantize and store


def _short(scale: Any) -> float:
    """A prior's scale to 4 significant digits: the coder uses exactly what the header stores,
    and 30 tensors' scales cost ~200 header bytes instead of ~600 (a group's, in --gop files)."""
    return float(f"{float(scale):.4g}")


def build_container(fitted: Fitted, frames: np.ndarray, fps: float,
                    source: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                    step_scale: float = 1.0, embeddings: np.ndarray | None = None, render_frames: bool = True
                    ) -> tuple[Container, np.ndarray | None, list[np.ndarray] | None]:
    """Quantize the trained model, code it, and render what the decoder will render; also
    the decoder's weights as it will decode them.

    `step_scale` multiplies every learned quantization step (rate control at export).
    """
    cfg, params = fitted.config, fitted.params
    t, h, w = frames.shape[:3]
    log_k = float(np.log(step_scale))
    leaves = [np.asarray(x, np.float32) for x in jax.tree_util.tree_leaves(params["decoder"])]
    refs = fitted.reference or [None] * len(leaves)
    steps16 = [quant.steps_f16(x, np.asarray(s) + log_k) for x, s in zip(leaves, params["log_steps"])]
    qs = [quant.quantize(x, s, r) for x, s, r in zip(leaves, steps16, refs)]
    scales = [_short(quant.laplace_scale_of(q)) for q in qs]
    values = [q.reshape(-1) for q in qs]
    rows = [np.full(q.size, i, np.int32) for i, q in enumerate(qs)]
    step_bytes = [s.astype("<f2").tobytes() for s in steps16]
    tensors = [{"shape": list(x.shape), "scale": s} for x, s in zip(leaves, scales)]
    embed_q = embed_info = None
    if cfg.kind == "hnerv":
        emb = embeddings_of(fitted, pad_to(frames, cfg.height, cfg.width)) if embeddings is None else embeddings
        loc16 = emb.mean(axis=(0, 1, 2)).astype(np.float16)
        estep16 = quant.steps_f16(emb - loc16.astype(np.float32), np.asarray(params["embed_log_step"]) + log_k)
        embed_q = quant.quantize(emb, estep16, loc16)
        escales = [_short(v) for v in quant.laplace_scale_of(embed_q, axis=(0, 1, 2))]
        values.append(embed_q.reshape(-1))
        rows.append(np.tile(np.arange(cfg.code_dim, dtype=np.int32) + len(qs), embed_q.size // cfg.code_dim))
        step_bytes += [estep16.astype("<f2").tobytes(), loc16.astype("<f2").tobytes()]
        embed_info = {"scales": escales}
        scales = scales + escales
    tables = PRIOR.tables(np.asarray(scales, np.float32).astype(np.float64))
    symbols = coder.encode(np.concatenate(values), tables, np.concatenate(rows))
    header = {"model": cfg.to_json(), "tensors": tensors, "embed": embed_info,
              "video": {"frames": t, "height": h, "width": w, "fps": fps},
              "source": source or {}, "encoder": extra or {}}
    c = Container(CODEC_ID, header, {"steps": b"".join(step_bytes), "symbols": symbols})
    if not render_frames:
        return c, None, None
    deq = [quant.dequantize(q, s, r) for q, s, r in zip(qs, steps16, refs)]
    emb_deq = None if embed_q is None else quant.dequantize(embed_q, estep16, loc16)
    return c, render(cfg, deq, emb_deq, h, w), deq


def encode(frames: np.ndarray, opts: EncodeOptions, fps: float = 25.0, source: dict[str, Any] | None = None,
           *, config: INRConfig | None = None, init: dict[str, Any] | None = None,
           reference: list[np.ndarray] | None = None, devices: Sequence[jax.Device] | None = None,
           payload_only: bool = False, on_step=None, on_log=None) -> EncodeResult:
    """Fit (and prune) a network to the frames, then quantize and code it; with
    `opts.bpp`, the network is sized for that rate and the export lands the file on it
    (with `payload_only`, its sections: a group of a --gop file, whose header is shared)
    (`config`, `init`, `reference`, `devices`: see `fit`; the file then holds the
    differences from the reference, which its decoder must be given)."""
    t, h, w = frames.shape[:3]
    opts = opts.for_video(t, h, w, fps)
    t0 = time.perf_counter()
    fitted = fit(frames, opts, config=config, init=init, reference=reference, devices=devices, on_step=on_step,
                 on_log=on_log)
    seconds = time.perf_counter() - t0
    extra = {"model": opts.inr, "params": stored_param_count(fitted.config), "epochs": opts.epochs,
             "prune": opts.prune, "prune_epochs": opts.prune_epochs, "patch": opts.patch,
             "lambda": opts.rate_weight, "seed": opts.seed}  # no timings: equal input and options, equal bytes
    step_scale, emb = 1.0, None
    if opts.bpp is not None:
        if fitted.config.kind == "hnerv":
            emb = embeddings_of(fitted, pad_to(frames, fitted.config.height, fitted.config.width))
        step_scale = _step_scale_for(opts.bpp * t * h * w / 8, fitted, frames, fps, source, extra, emb,
                                     payload_only)
        if step_scale in (2.0 ** -3, 2.0 ** 4):
            log.warning("--bpp %g is out of reach of a %s of %d parameters at this size: the file misses it",
                        opts.bpp, opts.inr, stored_param_count(fitted.config))
        extra = {**extra, "target_bpp": opts.bpp, "step_scale": round(step_scale, 5)}
    c, recon, weights = build_container(fitted, frames, fps, source, extra, step_scale, emb)
    return EncodeResult(c, recon, fitted.config, seconds, fitted.history, fitted.params, weights)


def _step_scale_for(target_bytes: float, fitted: Fitted, frames, fps, source, extra, emb,
                    payload_only: bool = False) -> float:
    """A common multiplier of every quantization step that puts the file (or its sections)
    at the target size: bisection in log-scale on the real coded size (no training, a few
    codings)."""
    def size(k: float) -> int:
        c = build_container(fitted, frames, fps, source, extra, k, emb, False)[0]
        return sum(len(v) for v in c.sections.values()) if payload_only else len(container.pack(c))

    lo, hi = -3.0, 4.0  # log2 of the multiplier: 1/8 .. 16
    if size(2.0 ** lo) <= target_bytes:
        return 2.0 ** lo
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if size(2.0 ** mid) <= target_bytes else (mid, hi)
        if hi - lo < 0.01:
            break
    return 2.0 ** hi


# ---------------------------------------------------------------------------------------
# decode

MAX_FPS = 1000.0
STEP_RANGE = (2.0 ** -14, 65504.0)  # float16 steps as quant.steps_f16 clips them
SCALE_RANGE = (0.01, 4096.0)  # Laplace scales in bins: floored at 0.05; ~25 at 7 bits, ~200 at 10


def parse_header(c: Container) -> tuple[INRConfig, dict]:
    """Header fields, each type- and range-checked, and the output size bounded."""
    if c.codec != CODEC_ID:
        raise BitstreamError(f"this is a '{c.codec}' file, not a {CODEC_ID} video")
    h, w = c.header, CODEC_ID
    cfg = INRConfig.from_json(field_dict(h, "model", w))
    video = field_dict(h, "video", w)
    t = field_int(video, "frames", 1, cfg.frames, w)
    height = field_int(video, "height", 1, cfg.height, w)
    width = field_int(video, "width", 1, cfg.width, w)
    fps = field_float(video, "fps", 1e-3, MAX_FPS, w)
    if cfg.frames != t:
        raise BitstreamError(f"{w} header: the video has {t} frames, the model {cfg.frames}")
    tensors = field_list(h, "tensors", 1, 4096, w)
    shapes = [field_ints(x, "shape", 1, 8, 1, 1 << 24, w) for x in tensors]
    scales = [field_float(x, "scale", *SCALE_RANGE, w) for x in tensors]
    escales = []
    if cfg.kind == "hnerv":
        escales = [field_float({"scales": v}, "scales", *SCALE_RANGE, w)
                   for v in field_list(field_dict(h, "embed", w), "scales", cfg.code_dim, cfg.code_dim, w)]
    file_bytes = sum(len(v) for v in c.sections.values())
    check_output_size(3.0 * cfg.frames * cfg.height * cfg.width, file_bytes, "frames")
    return cfg, {"t": t, "height": height, "width": width, "shapes": shapes, "scales": scales,
                 "escales": escales, "fps": fps}


@decode_boundary(CODEC_ID)
def decode(c: Container) -> tuple[np.ndarray, float]:
    """Frames [T, H, W, 3] uint8 and fps, from the file alone (a --gop file: every group)."""
    if _gop().is_gop(c):
        return _gop().decode(c)[:2]
    cfg, info, leaves, emb = decode_weights(c)
    return render(cfg, leaves, emb, info["height"], info["width"]), info["fps"]


@dataclass
class StoredNetwork:
    """A file's network as integers: what the entropy coder carried, before dequantization."""

    config: INRConfig
    info: dict
    integers: list[np.ndarray]  # one per decoder tensor, in its shape
    steps: list[np.ndarray]  # float16 steps per tensor (one per output channel, or one)
    embed_integers: np.ndarray | None  # HNeRV: [frames, h, w, code_dim]
    embed_step: np.ndarray | None
    embed_loc: np.ndarray | None


@decode_boundary(CODEC_ID)
def stored_network(c: Container) -> StoredNetwork:
    """Entropy-decode a file's weights (and HNeRV's embeddings) to their integers, with
    every check a hostile file needs before anything is allocated."""
    cfg, info = parse_header(c)
    _, abstract, _ = _decoder_parts(cfg)
    shapes = info["shapes"]
    if [tuple(x.shape) for x in abstract] != [tuple(s) for s in shapes]:
        raise BitstreamError("stored tensor shapes do not match the model config")
    nsteps = [quant.channel_axis_size(s) for s in shapes]
    ecount = 2 * cfg.code_dim if cfg.kind == "hnerv" else 0
    raw = c.section("steps")
    if len(raw) != 2 * (sum(nsteps) + ecount):
        raise BitstreamError("steps section has the wrong length")
    steps = np.frombuffer(raw, "<f2").astype(np.float16)
    positive = steps[:len(steps) - cfg.code_dim] if cfg.kind == "hnerv" else steps  # embedding offsets may be < 0
    lo, hi = STEP_RANGE
    if not (np.all(np.isfinite(steps)) and np.all(positive >= lo) and np.all(positive <= hi)):
        raise BitstreamError(f"steps section holds values outside the range an encoder stores ({lo:g} to {hi:g})")
    sizes = [math.prod(s) for s in shapes]
    n_emb = cfg.frames * math.prod(cfg.embedding_shape) if cfg.kind == "hnerv" else 0
    check_output_size(8.0 * (sum(sizes) + n_emb), len(c.section("symbols")) + len(raw), "weights")
    rows = [np.full(n, i, np.int32) for i, n in enumerate(sizes)]
    if cfg.kind == "hnerv":
        rows.append(np.tile(np.arange(cfg.code_dim, dtype=np.int32) + len(shapes), n_emb // cfg.code_dim))
    tables = PRIOR.tables(np.asarray(info["scales"] + info["escales"], np.float32).astype(np.float64))
    values = coder.decode(c.section("symbols"), tables, np.concatenate(rows), dtype=np.int64)
    ints, tensor_steps, pos, spos = [], [], 0, 0
    for shape, n, k in zip(shapes, sizes, nsteps):
        ints.append(values[pos:pos + n].reshape(shape))
        tensor_steps.append(steps[spos:spos + k])
        pos, spos = pos + n, spos + k
    if cfg.kind != "hnerv":
        return StoredNetwork(cfg, info, ints, tensor_steps, None, None, None)
    return StoredNetwork(cfg, info, ints, tensor_steps, values[pos:].reshape(cfg.frames, *cfg.embedding_shape),
                         steps[spos:spos + cfg.code_dim], steps[spos + cfg.code_dim:])


@decode_boundary(CODEC_ID)
def decode_weights(c: Container, reference: list[np.ndarray] | None = None
                   ) -> tuple[INRConfig, dict, list[np.ndarray], np.ndarray | None]:
    """The network as the file stores it: config, header info, dequantized decoder
    leaves and (HNeRV) the dequantized embeddings; `reference`: the weights a group's
    file codes the differences from (see `encode`)."""
    net = stored_network(c)
    refs = [None] * len(net.integers) if reference is None else reference
    leaves = [quant.dequantize(q, s, r) for q, s, r in zip(net.integers, net.steps, refs)]
    emb = None if net.embed_integers is None else quant.dequantize(net.embed_integers, net.embed_step, net.embed_loc)
    return net.config, net.info, leaves, emb


def _gop():
    """The group-of-pictures layer (imported here: it builds on this module)."""
    from jaxcodec.codecs import video_gop

    return video_gop


@decode_boundary(CODEC_ID)
def describe(c: Container) -> dict[str, Any]:
    if _gop().is_gop(c):
        return _gop().describe(c)
    cfg, info = parse_header(c)
    size = len(container.pack(c))
    pixels = info["t"] * info["height"] * info["width"]
    enc = c.header.get("encoder")
    enc = enc if isinstance(enc, dict) else {}
    return {"video": f"{info['t']} frames of {info['width']}x{info['height']} at {info['fps']:g} fps",
            "model": model_summary(cfg),
            "bits per pixel": round(8 * size / pixels, 5),
            "trained": f"{enc.get('epochs', '?')} epochs, lambda {enc.get('lambda', '?')}" if enc else "unknown"}


def model_summary(cfg: INRConfig) -> str:
    return (f"{cfg.kind}, {stored_param_count(cfg):,} stored parameters, fc_dim {cfg.fc_dim}, "
            f"strides {'x'.join(map(str, cfg.strides))}")


def fingerprint(frames: np.ndarray) -> dict[str, Any]:
    """What identifies the coded frames: geometry and a hash of the first, middle and last."""
    t = len(frames)
    digest = hashlib.sha256()
    for i in sorted({0, t // 2, t - 1}):
        digest.update(np.ascontiguousarray(frames[i]).tobytes())
    return {"frames": t, "height": int(frames.shape[1]), "width": int(frames.shape[2]),
            "sha256": digest.hexdigest()[:32]}


def evaluate(c: Container, source: Path, args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Decode and compare with the source video, preprocessed as recorded at encoding."""
    from jaxcodec.data.video import read_video
    from jaxcodec.metrics import frame_metrics

    src = c.header.get("source")
    src = src if isinstance(src, dict) else {}
    try:
        pre = Preprocess.from_json(src.get("preprocess") or {})
    except (TypeError, ValueError) as exc:
        raise BitstreamError(f"{CODEC_ID} header field 'source.preprocess' is invalid: {exc}") from None
    reference, _ = read_video(source, pre)
    recorded = src.get("fingerprint")
    if recorded is not None and recorded != fingerprint(reference):
        raise InputError(f"{source} is not the video this file was made from (its frames differ from the "
                         "fingerprint recorded at encoding)")
    t0 = time.perf_counter()
    decoded, fps = decode(c)
    seconds = time.perf_counter() - t0
    if reference.shape != decoded.shape:
        raise InputError(f"{source} gives frames {reference.shape}, the file decodes to {decoded.shape}: "
                         "is this the video that was encoded?")
    size = len(container.pack(c))
    return {**frame_metrics(reference, decoded), "bpp": 8 * size / decoded[..., 0].size, "bytes": size,
            "kbps": 8 * size / 1000 / (decoded.shape[0] / fps), "decode_fps": decoded.shape[0] / seconds}


# ---------------------------------------------------------------------------------------
# command line


def _add_encode_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--start", type=cli_type(int, lo=0), default=0, help="video: first frame")
    g.add_argument("--frames", type=cli_type(int, lo=1), default=None, help="video: number of frames (default: all)")
    g.add_argument("--crop", type=cli_type(parse_size), default=None, metavar="WxH",
                   help="video: center crop before resizing")
    g.add_argument("--size", type=cli_type(parse_size), default=None, metavar="WxH",
                   help="video: resize (area average when shrinking)")
    g.add_argument("--inr", choices=list(KINDS), default="hnerv",
                   help="video: network family: hnerv (per-frame embeddings), nerv (frame index), hinerv "
                        "(hierarchical grids + ConvNeXt; default: hnerv)")
    g.add_argument("--params", type=cli_type(parse_count), default=0.3e6,
                   help="video: stored parameters (decoder + HNeRV embeddings), e.g. 0.3M; sets the rate "
                        "(default: 0.3M)")
    g.add_argument("--bpp", type=cli_type(float, lo=1e-4), default=None,
                   help="video: target rate in bits per pixel of the whole file; sizes the network for it "
                        "(instead of --params) and lands the file at or just under it (with --gop, each group's "
                        "sections; the header they share comes on top)")
    g.add_argument("--epochs", type=cli_type(int, lo=1), default=300, help="video: training epochs (default: 300, "
                                                                         "as the HNeRV paper)")
    g.add_argument("--lambda", dest="lam", type=cli_type(float, lo=0), default=None,
                   help="video: rate weight, loss = distortion + lambda * bits per pixel; larger gives smaller files "
                        f"(default: {FAMILY_LAMBDA['hnerv']:g}; hinerv {FAMILY_LAMBDA['hinerv']:g}, against its "
                        "L1 + MS-SSIM loss)")
    g.add_argument("--batch-size", type=cli_type(int, lo=1), default=None,
                   help="video: frames (or --patch patches) per step (default: 2; hinerv 1)")
    g.add_argument("--lr", type=cli_type(float, lo=1e-12), default=None,
                   help="video: peak learning rate, warm-up then cosine (default: 0.001; hinerv 0.003)")
    g.add_argument("--grad-clip", type=cli_type(float, lo=0), default=None,
                   help="video: clip gradients to this global norm, 0 for off (default: off; hinerv 1.0)")
    g.add_argument("--prune", type=cli_type(float, lo=0), default=0.0,
                   help="video: after fitting, prune this fraction of each kernel by magnitude (HiNeRV: 0.15), "
                        "then fine-tune for --prune-epochs with the mask fixed (default: 0, off)")
    g.add_argument("--prune-epochs", type=cli_type(int, lo=0), default=0,
                   help="video: fine-tuning epochs after pruning (HiNeRV: 60 after 300)")
    g.add_argument("--loss", choices=list(LOSSES), default=None,
                   help="video: distortion to train on: mse, or HiNeRV's l1-msssim (0.7 L1 + 0.3 (1 - MS-SSIM)); "
                        "lambda weighs the rate against it (default: mse; hinerv l1-msssim)")
    g.add_argument("--freeze-encoder", type=cli_type(float, lo=0), default=FREEZE_ENCODER, metavar="SHARE",
                   help="video, hnerv: freeze the frame encoder after this share of the epochs and train the frame "
                        "embeddings directly from there, which skips the encoder's forward and backward passes "
                        f"(default: {FREEZE_ENCODER:g}; 1: the encoder trains throughout, as in the HNeRV paper)")
    g.add_argument("--patch", type=cli_type(parse_size), default=None, metavar="WxH",
                   help="video, hinerv: train on patches of this size that tile each frame (HiNeRV's patch-wise "
                        "training): memory per step stays flat at any frame size (default: whole frames up to "
                        "320x240 pixels, which trained better per second here; larger frames the patches they "
                        "decode in)")
    g.add_argument("--condition", type=cli_type(int, lo=0), default=0, metavar="C",
                   help="video, nerv/hnerv: HNeRV-Boost's conditional decoder: the frame index, through a "
                        "C-wide time embedding, modulates a residual block after every stage, within the same "
                        "--params (Boost uses 32; default: 0, off)")
    g.add_argument("--seed", type=int, default=0, help="video: random seed (default: 0)")
    g.add_argument("--gop", type=cli_type(int, lo=1), default=None, metavar="N",
                   help="video: code groups of N frames, one network each, streaming the input (memory stays "
                        "flat for long videos; decode --start/--frames reads only the groups it needs)")
    g.add_argument("--chains", type=cli_type(int, lo=1), default=1, metavar="K",
                   help="video, --gop: split the groups into K chains, each starting from scratch; chains are "
                        "fitted at once on the local devices and shared among processes (--coordinator) "
                        "(default: 1, every group starts from its predecessor)")
    g.add_argument("--residual", action="store_true",
                   help="video, --gop: code each later group of a chain as the differences from its predecessor's "
                        "decoded weights, trained for the rate of those differences (NIRVANA); decoding a group then "
                        "needs its chain's earlier groups' weights, and a damaged group loses the rest of its chain")
    g.add_argument("--gop-epochs", type=cli_type(int, lo=1), default=None, metavar="E",
                   help="video, --gop: epochs for every group after the first, which starts from its "
                        "predecessor's weights (default: --epochs)")
    g.add_argument("--workdir", default=None, help="video: folder for checkpoints and metrics.jsonl; with it, "
                                                  "Ctrl-C saves a checkpoint that --resume continues from")
    g.add_argument("--checkpoint-every", type=cli_type(int, lo=0), default=0,
                   help="video: steps between checkpoints (default: 0, at the end only)")
    g.add_argument("--resume", action="store_true", help="video: continue from the last checkpoint in --workdir")


def _encode_command(args: argparse.Namespace, progress: Progress) -> str:
    from jaxcodec.data.video import read_video
    from jaxcodec.metrics import frame_metrics

    opts = options_from_args(EncodeOptions, args)
    pre = options_from_args(Preprocess, args)
    if opts.workdir:
        prepare_run_folder(opts.workdir, opts.resume, args.overwrite)
    src, out = Path(args.input), Path(args.output)
    if args.gop is not None:
        return _encode_groups(args, opts, pre, progress)
    if args.chains > 1 or args.residual:
        raise InputError("--chains and --residual work on groups of pictures: add --gop N")
    if jax.process_count() > 1:
        raise InputError("processes share a video as chains of groups: add --gop N --chains K")
    frames, fps = read_video(src, pre)
    t, h, w = frames.shape[:3]
    opts = opts.for_video(t, h, w, fps)
    cfg = opts.model_config(h, w, t)
    stored = stored_param_count(cfg)
    progress.note(f"{src}: {t} frames of {w}x{h} at {fps:g} fps; {cfg.kind} with {stored:,} stored parameters, "
                  f"{opts.epochs} epochs")
    if stored > 1.5 * opts.params:
        progress.note(f"note: asked for {opts.params:,.0f} parameters; {stored:,} is the smallest {cfg.kind} "
                      f"this frame size allows (its embeddings and fixed layers), so the file will be larger")
    result = encode(frames, opts, fps, {"name": src.name, "preprocess": pre.to_json(),
                                        "fingerprint": fingerprint(frames)},
                    on_step=progress.step, on_log=progress.log)
    size = container.write(out, result.container)
    m = frame_metrics(frames, result.reconstruction)
    return (f"wrote {out}: {size:,} bytes, {8 * size / (t * h * w):.4f} bpp, PSNR {m['psnr']:.2f} dB, "
            f"MS-SSIM {m['ms_ssim']:.4f}, trained in {result.train_seconds:.1f} s")


def _encode_groups(args: argparse.Namespace, opts: EncodeOptions, pre: Preprocess, progress: Progress) -> str:
    """--gop: stream the video group by group, one network each, in --chains independent
    chains shared among the local devices and the processes (see video_gop)."""
    from jaxcodec.data.video import count_frames, stream_video

    src, out, gop = Path(args.input), Path(args.output), args.gop
    if args.chains == 1:
        fps, groups = stream_video(src, gop, pre)
        chains, per_chain = [lambda: groups], _gop().MAX_SECTIONS // 2
    else:
        total, fps = count_frames(src, pre)
        per_chain = -(-(-(-total // gop)) // args.chains)  # groups in each chain but the last
        span = per_chain * gop

        def chain(c: int):
            part = dataclasses.replace(pre, start=pre.start + c * span, frames=min(span, total - c * span))
            return lambda: stream_video(src, gop, part)[1]

        chains = [chain(c) for c in range(-(-total // span))]
    progress.note(f"{src}: groups of {gop} frames at {fps:g} fps in {len(chains)} chain(s) over "
                  f"{len(jax.devices())} device(s) and {jax.process_count()} process(es); {opts.inr}, "
                  f"{opts.epochs} epochs for each chain's first group, {args.gop_epochs or opts.epochs} for "
                  "each later one")

    def done(g) -> None:
        progress.note(f"frames {g.start}..{g.start + g.frames - 1}: {g.bytes:,} bytes, PSNR {g.psnr:.2f} dB, "
                      f"{g.train_seconds:.1f} s")

    result = _gop().encode_chains(chains, per_chain, opts, gop, fps, {"name": src.name, "preprocess": pre.to_json()},
                                  later_epochs=args.gop_epochs, residual=args.residual, on_group=done,
                                  on_step=progress.step,
                                  on_log=progress.log)
    c = result.container
    size = container.write(out, c) if jax.process_index() == 0 else len(container.pack(c))
    h, w = c.header["video"]["height"], c.header["video"]["width"]
    return (f"{'wrote' if jax.process_index() == 0 else f'process {jax.process_index()}: process 0 wrote'} "
            f"{out}: {size:,} bytes in {len(result.groups)} groups, {8 * size / (result.frames * h * w):.4f} "
            f"bpp, PSNR {result.psnr:.2f} dB, MS-SSIM {result.ms_ssim:.4f}")


def _add_decode_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--lossless", action="store_true",
                   help="video: lossless RGB H.264 (mp4/mkv) instead of crf 12 4:4:4")
    g.add_argument("--start", type=cli_type(int, lo=0), default=0,
                   help="video: first frame to decode (a --gop file decodes only the groups that hold the range)")
    g.add_argument("--frames", type=cli_type(int, lo=1), default=None, help="video: frames to decode (default: "
                                                                             "to the end)")
    g.add_argument("--skip-damaged", action="store_true",
                   help="video, --gop files: decode every intact group, write black frames for damaged ones and "
                        "say which frames were lost")


def _decode_to(c: Container, output: Path, args: argparse.Namespace) -> str:
    start, count = getattr(args, "start", 0), getattr(args, "frames", None)
    lost = []
    if _gop().is_gop(c):
        frames, fps, lost = _gop().decode(c, start, count, getattr(args, "skip_damaged", False))
    else:
        frames, fps = decode(c)
        if start >= len(frames):
            raise InputError(f"--start {start} is past the video's last frame ({len(frames) - 1})")
        frames = frames[start:None if count is None else start + count]
    message = "wrote " + write_video(output, frames, fps, lossless=getattr(args, "lossless", False),
                                     overwrite=getattr(args, "overwrite", False))
    if lost:
        message += "; lost to damage (black): " + ", ".join(f"frames {s}..{s + n - 1}" for s, n in lost)
    return message


register(CodecEntry(CODEC_ID, "video as a quantized NeRV / HNeRV / HiNeRV network", describe, _decode_to, evaluate,
                    media="video", encode=Command(_add_encode_args, _encode_command),
                    add_decode_args=_add_decode_args))
