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

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcodec import container
from jaxcodec.codecs import CodecEntry, register
from jaxcodec.container import Container
from jaxcodec.data.video import Preprocess, frame_count_ok, pad_to, write_video
from jaxcodec.entropy import coder
from jaxcodec.entropy.models import ContinuousPrior
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.inr import quant
from jaxcodec.inr.layers import ConvNeXtEncoder, positional_encoding
from jaxcodec.inr.models import INRConfig, INRDecoder, hnerv_config, nerv_config, stored_param_count
from jaxcodec.train import TrainConfig, Trainer

CODEC_ID = "video-inr"
PRIOR = ContinuousPrior("laplace")
RENDER_BATCH = 8


@dataclass(frozen=True)
class EncodeOptions:
    model: str = "hnerv"
    params: float = 0.3e6  # stored parameters: decoder (+ HNeRV embeddings)
    epochs: int = 300
    lam: float = 0.002  # loss = MSE + lam * bits per pixel
    batch_size: int = 2
    lr: float = 1e-3
    seed: int = 0
    workdir: str | None = None  # checkpoints and metrics.jsonl
    resume: bool = False
    checkpoint_every: int = 0

    def model_config(self, height: int, width: int, frames: int) -> INRConfig:
        if self.model == "hnerv":
            return hnerv_config(height, width, frames, self.params)
        if self.model == "nerv":
            return nerv_config(height, width, frames, self.params)
        raise InputError(f"unknown model {self.model!r}: choose hnerv or nerv")


@dataclass
class EncodeResult:
    container: Container
    reconstruction: np.ndarray  # what decode() will return, computed at encode time
    config: INRConfig
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# model plumbing


@functools.lru_cache(maxsize=8)
def _decoder_parts(cfg: INRConfig):
    """Graph, abstract leaves (shapes) and tree structure of a config's decoder."""
    graph, state = nnx.split(nnx.eval_shape(lambda: INRDecoder(cfg, rngs=nnx.Rngs(0))))
    leaves, treedef = jax.tree_util.tree_flatten(state)
    return graph, leaves, treedef


def _code(cfg: INRConfig, index: jax.Array) -> jax.Array:
    """NeRV's frame code: the positional encoding of t / T as a 1x1 'image'."""
    pe = positional_encoding(index / cfg.frames, cfg.pe_base, cfg.pe_levels)
    return pe[:, None, None, :]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _render(graph, treedef, leaves, code):
    out = nnx.merge(graph, jax.tree_util.tree_unflatten(treedef, leaves))(code)
    return jnp.round(jnp.clip(out, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def render(cfg: INRConfig, leaves: list[np.ndarray], embeddings: np.ndarray | None,
           height: int, width: int) -> np.ndarray:
    """Frames [T, height, width, 3] uint8 from dequantized decoder weights (and codes)."""
    graph, _, treedef = _decoder_parts(cfg)
    dev_leaves = [jnp.asarray(x) for x in leaves]
    out = np.empty((cfg.frames, height, width, 3), np.uint8)
    for i in range(0, cfg.frames, RENDER_BATCH):
        idx = np.arange(i, i + RENDER_BATCH) % cfg.frames  # full batches: one compiled shape
        code = _code(cfg, jnp.asarray(idx, jnp.float32)) if embeddings is None else jnp.asarray(embeddings[idx])
        frames = np.asarray(_render(graph, treedef, dev_leaves, code))
        n = min(RENDER_BATCH, cfg.frames - i)
        out[i:i + n] = frames[:n, :height, :width]
    return out


# ---------------------------------------------------------------------------------------
# training


def _make_loss(cfg: INRConfig, enc_graph, dec_graph, dec_treedef, lam: float, height: int, width: int):
    valid = np.zeros((cfg.height, cfg.width, 1), np.float32)
    valid[:height, :width] = 1.0
    pixels = float(height * width * cfg.frames)

    def loss_fn(params, batch, key, step):
        frames, index = batch["frames"].astype(jnp.float32) / 255.0, batch["index"]
        kw, ke = jax.random.split(key)
        leaves, wbits = quant.fake_quant_tree(jax.tree_util.tree_leaves(params["decoder"]), params["log_steps"], kw)
        decoder = nnx.merge(dec_graph, jax.tree_util.tree_unflatten(dec_treedef, leaves))
        if cfg.kind == "hnerv":
            code = nnx.merge(enc_graph, params["encoder"])(frames)
            code, ebits = quant.fake_quant_embeddings(code, params["embed_log_step"], ke)
            ebits = ebits * (cfg.frames / frames.shape[0])  # this batch stands for all frames
        else:
            code, ebits = _code(cfg, index.astype(jnp.float32)), 0.0
        out = decoder(code)
        mse = jnp.sum(jnp.square(out - frames) * valid) / (frames.shape[0] * height * width * 3)
        bpp = (wbits + ebits) / pixels
        return mse + lam * bpp, {"psnr": -10 * jnp.log10(jnp.maximum(mse, 1e-12)), "bpp": bpp, "mse": mse}

    return loss_fn


@dataclass
class Fitted:
    config: INRConfig
    params: dict[str, Any]
    encoder_graph: Any  # HNeRV's encoder (not stored in files), None for NeRV
    history: list[dict[str, Any]]


def fit(frames: np.ndarray, opts: EncodeOptions, *, on_step=None, on_log=None) -> Fitted:
    """Train a model on uint8 frames [T, H, W, 3] with the shared trainer."""
    frame_count_ok(frames)
    t, h, w = frames.shape[:3]
    cfg = opts.model_config(h, w, t)
    rngs = nnx.Rngs(opts.seed)
    dec_graph, dec_state = nnx.split(INRDecoder(cfg, rngs=rngs))
    dec_leaves, dec_treedef = jax.tree_util.tree_flatten(dec_state)
    params: dict[str, Any] = {"decoder": dec_state, "log_steps": quant.init_log_steps(dec_leaves)}
    enc_graph = None
    if cfg.kind == "hnerv":
        dims = (cfg.enc_dim,) * (len(cfg.enc_strides) - 1) + (cfg.code_dim,)
        enc_graph, params["encoder"] = nnx.split(ConvNeXtEncoder(cfg.enc_strides, dims, rngs=rngs))
        params["embed_log_step"] = quant.init_embed_log_step(cfg.code_dim)

    padded = pad_to(frames, cfg.height, cfg.width)
    batch, devices = min(opts.batch_size, t), len(jax.local_devices())
    if batch < 1 or batch % devices:
        raise InputError(f"batch size {batch} must be a positive multiple of the {devices} devices")
    steps_per_epoch = -(-t // batch)

    def sampler(step: int) -> dict[str, np.ndarray]:
        epoch, within = divmod(step, steps_per_epoch)
        order = np.random.default_rng([opts.seed, epoch]).permutation(t)
        idx = np.resize(order, steps_per_epoch * batch)[within * batch:(within + 1) * batch]
        return {"frames": padded[idx], "index": idx.astype(np.int32)}

    history: list[dict[str, Any]] = []

    def log(record: dict[str, Any]) -> None:
        history.append(record)
        if on_log is not None:
            on_log(record)

    tcfg = TrainConfig(steps=opts.epochs * steps_per_epoch, lr=opts.lr, steps_per_epoch=steps_per_epoch,
                       checkpoint_every=opts.checkpoint_every, seed=opts.seed)
    trainer = Trainer(_make_loss(cfg, enc_graph, dec_graph, dec_treedef, opts.lam, h, w), params, tcfg, sampler,
                      workdir=opts.workdir, on_step=on_step, on_log=log)
    try:
        params = trainer.run(resume=opts.resume)
    finally:
        trainer.close()
    return Fitted(cfg, params, enc_graph, history)


@functools.partial(jax.jit, static_argnums=0)
def _encode_frames(graph, state, frames):
    return nnx.merge(graph, state)(frames.astype(jnp.float32) / 255.0)


def embeddings_of(fitted: Fitted, padded: np.ndarray) -> np.ndarray:
    """HNeRV embeddings of every frame, [T, h, w, C] float32."""
    out = [np.asarray(_encode_frames(fitted.encoder_graph, fitted.params["encoder"], jnp.asarray(padded[i:i + 8])))
           for i in range(0, len(padded), 8)]
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------
# quantize and store


def build_container(fitted: Fitted, frames: np.ndarray, fps: float,
                    source: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
                    ) -> tuple[Container, np.ndarray]:
    """Quantize the trained model, code it, and render what the decoder will render."""
    cfg, params = fitted.config, fitted.params
    t, h, w = frames.shape[:3]
    leaves = [np.asarray(x, np.float32) for x in jax.tree_util.tree_leaves(params["decoder"])]
    steps16 = [quant.steps_f16(x, s) for x, s in zip(leaves, params["log_steps"])]
    qs = [quant.quantize(x, s) for x, s in zip(leaves, steps16)]
    scales = [float(quant.laplace_scale_of(q)) for q in qs]
    values = [q.reshape(-1) for q in qs]
    rows = [np.full(q.size, i, np.int32) for i, q in enumerate(qs)]
    step_bytes = [s.astype("<f2").tobytes() for s in steps16]
    tensors = [{"shape": list(x.shape), "scale": s} for x, s in zip(leaves, scales)]
    embed_q = embed_info = None
    if cfg.kind == "hnerv":
        emb = embeddings_of(fitted, pad_to(frames, cfg.height, cfg.width))
        loc16 = emb.mean(axis=(0, 1, 2)).astype(np.float16)
        estep16 = quant.steps_f16(emb - loc16.astype(np.float32), params["embed_log_step"])
        embed_q = quant.quantize(emb, estep16, loc16)
        escales = [float(v) for v in quant.laplace_scale_of(embed_q, axis=(0, 1, 2))]
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
    deq = [quant.dequantize(q, s) for q, s in zip(qs, steps16)]
    emb_deq = None if embed_q is None else quant.dequantize(embed_q, estep16, loc16)
    return c, render(cfg, deq, emb_deq, h, w)


def encode(frames: np.ndarray, opts: EncodeOptions, fps: float = 25.0, source: dict[str, Any] | None = None,
           *, on_step=None, on_log=None) -> EncodeResult:
    t0 = time.perf_counter()
    fitted = fit(frames, opts, on_step=on_step, on_log=on_log)
    seconds = time.perf_counter() - t0
    extra = {"model": opts.model, "params": stored_param_count(fitted.config), "epochs": opts.epochs,
             "lambda": opts.lam, "seed": opts.seed, "train_seconds": round(seconds, 2)}
    c, recon = build_container(fitted, frames, fps, source, extra)
    return EncodeResult(c, recon, fitted.config, seconds, fitted.history)


# ---------------------------------------------------------------------------------------
# decode


def _parse(c: Container) -> tuple[INRConfig, dict]:
    h = c.header
    try:
        cfg = INRConfig.from_json(h["model"])
        video = h["video"]
        t, height, width = int(video["frames"]), int(video["height"]), int(video["width"])
        if cfg.frames != t or not (0 < height <= cfg.height and 0 < width <= cfg.width):
            raise ValueError("video geometry disagrees with the model")
        tensors = h["tensors"]
        shapes = [tuple(int(v) for v in x["shape"]) for x in tensors]
        scales = [float(x["scale"]) for x in tensors]
        escales = [float(v) for v in h["embed"]["scales"]] if cfg.kind == "hnerv" else []
    except (KeyError, TypeError, ValueError) as exc:
        raise BitstreamError(f"video-inr header is invalid: {exc}") from None
    return cfg, {"t": t, "height": height, "width": width, "shapes": shapes, "scales": scales,
                 "escales": escales, "fps": float(video.get("fps", 25.0))}


def decode(c: Container) -> tuple[np.ndarray, float]:
    """Frames [T, H, W, 3] uint8 and fps, from the file alone."""
    if c.codec != CODEC_ID:
        raise BitstreamError(f"this is a '{c.codec}' file, not a {CODEC_ID} video")
    cfg, info = _parse(c)
    _, abstract, _ = _decoder_parts(cfg)
    shapes = info["shapes"]
    if [tuple(x.shape) for x in abstract] != shapes:
        raise BitstreamError("stored tensor shapes do not match the model config")
    nsteps = [quant.channel_axis_size(s) for s in shapes]
    ecount = 2 * cfg.code_dim if cfg.kind == "hnerv" else 0
    raw = c.section("steps")
    if len(raw) != 2 * (sum(nsteps) + ecount):
        raise BitstreamError("steps section has the wrong length")
    steps = np.frombuffer(raw, "<f2").astype(np.float16)
    if not np.all(np.isfinite(steps)):
        raise BitstreamError("steps section holds non-finite values")
    scales = info["scales"] + info["escales"]
    if not all(np.isfinite(s) and s > 0 for s in scales):
        raise BitstreamError("tensor scales must be finite and positive")
    sizes = [int(np.prod(s)) for s in shapes]
    rows = [np.full(n, i, np.int32) for i, n in enumerate(sizes)]
    if cfg.kind == "hnerv":
        n_emb = cfg.frames * int(np.prod(cfg.embedding_shape))
        rows.append(np.tile(np.arange(cfg.code_dim, dtype=np.int32) + len(shapes), n_emb // cfg.code_dim))
    tables = PRIOR.tables(np.asarray(scales, np.float32).astype(np.float64))
    values = coder.decode(c.section("symbols"), tables, np.concatenate(rows), dtype=np.int64)
    leaves, pos, spos = [], 0, 0
    for shape, n, k in zip(shapes, sizes, nsteps):
        leaves.append(quant.dequantize(values[pos:pos + n].reshape(shape), steps[spos:spos + k]))
        pos, spos = pos + n, spos + k
    emb = None
    if cfg.kind == "hnerv":
        estep, loc = steps[spos:spos + cfg.code_dim], steps[spos + cfg.code_dim:]
        emb = quant.dequantize(values[pos:].reshape(cfg.frames, *cfg.embedding_shape), estep, loc)
    return render(cfg, leaves, emb, info["height"], info["width"]), info["fps"]


def describe(c: Container) -> dict[str, Any]:
    cfg, info = _parse(c)
    size = len(container.pack(c))
    pixels = info["t"] * info["height"] * info["width"]
    enc = c.header.get("encoder", {})
    return {"video": f"{info['t']} frames of {info['width']}x{info['height']} at {info['fps']:g} fps",
            "model": f"{cfg.kind}, {stored_param_count(cfg):,} stored parameters, fc_dim {cfg.fc_dim}, "
                     f"strides {'x'.join(map(str, cfg.strides))}",
            "bits per pixel": round(8 * size / pixels, 5),
            "trained": f"{enc.get('epochs', '?')} epochs, lambda {enc.get('lambda', '?')}, "
                       f"{enc.get('train_seconds', '?')} s" if enc else "unknown"}


def _decode_to(c: Container, output: Path, lossless: bool = False, **_: Any) -> str:
    frames, fps = decode(c)
    return "wrote " + write_video(output, frames, fps, lossless=lossless)


def evaluate(c: Container, source: Path, **_: Any) -> dict[str, Any]:
    """Decode and compare with the source video, preprocessed as recorded at encoding."""
    from jaxcodec.data.video import read_video
    from jaxcodec.metrics import frame_metrics

    pre = Preprocess.from_json(c.header.get("source", {}).get("preprocess", {}))
    reference, _ = read_video(source, pre)
    t0 = time.perf_counter()
    decoded, _ = decode(c)
    seconds = time.perf_counter() - t0
    if reference.shape != decoded.shape:
        raise InputError(f"{source} gives frames {reference.shape}, the file decodes to {decoded.shape}: "
                         "is this the video that was encoded?")
    size = len(container.pack(c))
    return {**frame_metrics(reference, decoded), "bpp": 8 * size / decoded[..., 0].size, "bytes": size,
            "decode_fps": decoded.shape[0] / seconds}


register(CodecEntry(CODEC_ID, "video as a quantized NeRV/HNeRV network", describe, _decode_to, evaluate))
