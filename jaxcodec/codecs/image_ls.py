"""``image-ls``: learned image compression (learned synthesis) with a hyperprior and a
checkerboard context, one trained model for a ladder of qualities.

A model (``ImageModel``) is trained on a folder of photos with the shared trainer; its
float weights (float16), integer entropy-parameter network (int8 + float32 scales) and
factorized hyperprior live in one ``.npz`` (no pickle) whose content hash is the model id.
Any image size is coded: the image is padded (edge pixels repeated) to a multiple of 64
inside, and the exact size comes back. Grayscale images are coded as RGB and decoded to
one channel; an opaque alpha channel is dropped, a transparent one refused.

File sections: ``z`` (the hyper latent, one factorized table per channel), ``anchors``
and ``others`` (the symbols round(y - mean) of the checkerboard's two halves, each with a
scale-table index from the integer network). Decoding needs only the file and the model.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcodec import container, modelfile
from jaxcodec.codecs import CodecEntry, Command, Progress, decode_boundary, options_from_args, register
from jaxcodec.container import Container, check_output_size, field_int, field_str
from jaxcodec.data.images import ImageFolder, downscale, read_image, write_image
from jaxcodec.data.media import cli_type
from jaxcodec.entropy import coder, intnet
from jaxcodec.entropy.tables import CodingTables
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.image import model as im
from jaxcodec.image.model import STRIDE, ImageModelConfig
from jaxcodec.image.refine import refine_latent
from jaxcodec.train import TrainConfig, Trainer

log = logging.getLogger(__name__)
CODEC_ID = "image-ls"
MAX_SIDE = 1 << 15
DEFAULT_QUALITY = 4


# ---------------------------------------------------------------------------------------
# the trained model


@functools.lru_cache(maxsize=8)
def _structure(cfg: ImageModelConfig) -> dict[str, tuple[nnx.GraphDef, Any]]:
    """Graph definition and leaf structure of each float transform."""
    out = {}
    for name, cls in im.TRANSFORMS.items():
        g, s = nnx.split(nnx.eval_shape(lambda c=cls: c(cfg, nnx.Rngs(0))))
        out[name] = (g, jax.tree_util.tree_structure(s))
    return out


@dataclass
class ImageModel:
    """A trained codec: float transforms (float16-exact), the exported integer network,
    the hyperprior's factorized density and the per-quality gains."""

    config: ImageModelConfig
    transforms: dict[str, list[np.ndarray]]  # g_a, g_s, h_a: float16-exact float32 leaves
    entropy: dict[str, dict[str, np.ndarray]]  # intnet.export of each layer
    z_prior: dict[str, np.ndarray]  # FactorizedDensity parameters (float32)
    gain: np.ndarray  # [Q, M] multipliers (float16-exact)
    inv_gain: np.ndarray
    name: str = "model"
    info: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def model_id(self) -> str:
        h = hashlib.sha256(json.dumps(self.config.to_json(), sort_keys=True).encode())
        for k in sorted(self.transforms):
            for a in self.transforms[k]:
                h.update(np.ascontiguousarray(a, np.float16).tobytes())
        for k in sorted(self.entropy):
            for part in ("w", "s", "b"):
                h.update(np.ascontiguousarray(self.entropy[k][part]).tobytes())
        for k in sorted(self.z_prior):
            h.update(np.ascontiguousarray(self.z_prior[k], np.float32).tobytes())
        h.update(np.ascontiguousarray(self.gain, np.float16).tobytes())
        h.update(np.ascontiguousarray(self.inv_gain, np.float16).tobytes())
        return h.hexdigest()[:16]

    @functools.cached_property
    def z_tables(self) -> CodingTables:
        return self.config.z_prior().tables(self.z_prior)

    @functools.cached_property
    def y_tables(self) -> CodingTables:
        return self.config.scale_table.tables()

    def state(self, name: str) -> Any:
        g, treedef = _structure(self.config)[name]
        return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in self.transforms[name]])

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        meta = {"codec": CODEC_ID, "config": self.config.to_json(), "name": self.name, "info": self.info}
        arrays = {"gain": self.gain.astype(np.float16), "inv_gain": self.inv_gain.astype(np.float16)}
        for k, leaves in self.transforms.items():
            arrays.update({f"{k}_{i:03d}": a.astype(np.float16) for i, a in enumerate(leaves)})
        for k, layer in self.entropy.items():
            arrays.update({f"int_{k}_{part}": layer[part] for part in ("w", "s", "b")})
        arrays.update({f"zp_{k}": np.asarray(v, np.float32) for k, v in self.z_prior.items()})
        return modelfile.save(path, meta, arrays)

    @staticmethod
    def load(path: str | Path) -> ImageModel:
        meta, d = modelfile.load(path, "image")
        try:
            if meta.get("codec") != CODEC_ID:
                raise ValueError("not an image model")
            cfg = ImageModelConfig.from_json(meta["config"])
            f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
            transforms = {k: [f32(d[n]) for n in sorted(n for n in d if n.startswith(f"{k}_"))]
                          for k in im.TRANSFORMS}
            entropy = {k: {p: d[f"int_{k}_{p}"] for p in ("w", "s", "b")} for k in cfg.param_layers()}
            z_prior = {n.removeprefix("zp_"): f32(d[n]) for n in d if n.startswith("zp_")}
            model = ImageModel(cfg, transforms, entropy, z_prior, f32(d["gain"]), f32(d["inv_gain"]),
                               meta.get("name", "model"), meta.get("info", {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a jaxcodec image model: {exc}") from None
        model._check()
        return model

    def _check(self) -> None:
        cfg = self.config
        for name, (g, treedef) in _structure(cfg).items():
            if treedef.num_leaves != len(self.transforms[name]):
                raise InputError(f"model weights of {name} do not match its config")
        for k, layer in cfg.param_layers().items():
            if self.entropy[k]["w"].shape != (layer.kernel, layer.kernel, layer.cin, layer.width):
                raise InputError(f"integer layer {k} does not match the config")
        if self.gain.shape != (cfg.qualities, cfg.latent) or self.inv_gain.shape != self.gain.shape:
            raise InputError("model gains do not match its config")


def model_of(cfg: ImageModelConfig, params: dict, name: str = "model", info: dict | None = None) -> ImageModel:
    """Export trained parameters: float weights rounded to float16 (what the file stores)."""
    f16 = lambda a: np.asarray(np.asarray(a, np.float32).astype(np.float16), np.float32)  # noqa: E731
    transforms = {k: [f16(a) for a in jax.tree_util.tree_leaves(params[k])] for k in im.TRANSFORMS}
    entropy = {k: intnet.export({p: np.asarray(v) for p, v in params["entropy"][k].items()})
               for k in cfg.param_layers()}
    z_prior = {k: np.asarray(v, np.float32) for k, v in params["z_prior"].items()}
    return ImageModel(cfg, transforms, entropy, z_prior, f16(np.exp(params["gain"])),
                      f16(np.exp(params["inv_gain"])), name, info or {})


def params_of(model: ImageModel) -> dict:
    """The trainable parameters a model file came from, as far as it keeps them: the
    inverse of ``model_of`` (float16 weights, and integer weights times their scale, which
    is the weight the straight-through training forward uses). Fine-tuning starts here."""
    params: dict[str, Any] = {name: model.state(name) for name in im.TRANSFORMS}
    params["entropy"] = {k: {"w": jnp.asarray(layer["w"].astype(np.float32) * layer["s"]),
                             "b": jnp.asarray(layer["b"])} for k, layer in model.entropy.items()}
    params["z_prior"] = {k: jnp.asarray(v) for k, v in model.z_prior.items()}
    params["gain"] = jnp.log(jnp.asarray(model.gain))
    params["inv_gain"] = jnp.log(jnp.asarray(model.inv_gain))
    return params


def default_model_path() -> Path:
    return Path(__file__).resolve().parent.parent / "assets" / "photo.npz"


def resolve_model(model: str | Path | None) -> ImageModel:
    path = default_model_path() if model is None else Path(model)
    if model is None and not path.is_file():
        raise InputError("this installation ships no image model: pass --model (train one with "
                         "jaxcodec train image --data DIR -o DIR)")
    return ImageModel.load(path)


# ---------------------------------------------------------------------------------------
# the transforms, jitted


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _analyse(cfg, g_a, h_a, sa, sh, gain, x):
    y = nnx.merge(g_a, sa)(x[None]) * gain
    return y[0], nnx.merge(h_a, sh)(y)[0]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _synthesize(cfg, g_s, ss, inv_gain, y_hat):
    x = nnx.merge(g_s, ss)(y_hat[None] * inv_gain)[0]
    return jnp.clip(jnp.round(x * 255.0), 0, 255).astype(jnp.uint8)


def _padded(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.pad(image, ((0, -h % STRIDE), (0, -w % STRIDE), (0, 0)), mode="edge")


def to_rgb(image: np.ndarray, where: str = "image") -> np.ndarray:
    """uint8 [H, W, C] -> [H, W, 3]: gray repeated, an opaque alpha dropped."""
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or image.dtype != np.uint8:
        raise InputError(f"{where}: expected an 8-bit gray, RGB or RGBA image")
    if image.shape[-1] == 4:
        if np.any(image[..., 3] != 255):
            raise InputError(f"{where} has transparent pixels: image-ls codes opaque images only; flatten the "
                             "alpha channel onto a background first")
        image = image[..., :3]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def _reconstruct(model: ImageModel, y_hat: np.ndarray, quality: int, h: int, w: int, channels: int) -> np.ndarray:
    cfg = model.config
    g_s = _structure(cfg)["g_s"][0]
    out = np.asarray(_synthesize(cfg, g_s, model.state("g_s"), jnp.asarray(model.inv_gain[quality - 1]),
                                 jnp.asarray(y_hat.astype(np.float32))))[:h, :w]
    if channels == 1:  # the mean of the three channels, rounded half to even
        out = np.round(out.astype(np.float64).mean(axis=-1, keepdims=True)).astype(np.uint8)
    return out


@dataclass
class EncodedImage:
    container: Container
    reconstruction: np.ndarray  # what decode() returns, computed by the encoder
    pixels: int
    # ideal code lengths of the non-anchors with the context, and under the hyperprior
    # alone (the anchors' parameters): what the checkerboard context buys
    bits: dict[str, float] = field(default_factory=dict)


def encode(model: ImageModel, image: np.ndarray, quality: int = DEFAULT_QUALITY, refine: int = 0,
           on_step: Callable[[int, int], None] | None = None) -> EncodedImage:
    """uint8 [H, W, C] -> a .jxc container at a quality in 1..Q (Q the largest file).

    ``refine`` > 0 runs that many gradient steps on the latent for this image
    (``image.refine``): a smaller file or a better picture for more encode time; the
    decoder and the format are unchanged. ``on_step(done, total)`` follows its progress."""
    cfg = model.config
    if not 1 <= quality <= cfg.qualities:
        raise InputError(f"--quality must be 1 to {cfg.qualities} for this model, got {quality}")
    if refine < 0:
        raise InputError(f"--refine must be 0 or more steps, got {refine}")
    channels = image.shape[-1] if image.ndim == 3 else 0
    rgb = to_rgb(image)
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_SIDE:
        raise InputError(f"image is {w}x{h}: sides up to {MAX_SIDE} are supported")
    s = _structure(cfg)
    x = jnp.asarray(_padded(rgb), jnp.float32) / 255.0
    y, z = _analyse(cfg, s["g_a"][0], s["h_a"][0], model.state("g_a"), model.state("h_a"),
                    jnp.asarray(model.gain[quality - 1]), x)
    y = np.asarray(y, np.float64)
    z_hat = np.round(np.asarray(z, np.float64)).astype(np.int64)
    f = im.trunk_exact(cfg, model.entropy, z_hat)
    anchor = im.checkerboard(*y.shape[:2])
    mu_a, idx_a = im.anchor_parameters_exact(cfg, model.entropy, f)
    if refine:
        def parameters(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sym_a = np.where(anchor[..., None], np.round(y - mu_a), 0.0)
            mu_n, idx_n = im.other_parameters_exact(cfg, model.entropy, f, sym_a)
            return np.where(anchor[..., None], mu_a, mu_n), np.where(anchor[..., None], idx_a, idx_n)

        y = refine_latent(cfg.scale_table, s["g_s"][0], model.state("g_s"), model.inv_gain[quality - 1],
                          cfg.lambdas[quality - 1], np.asarray(x), y, parameters, refine,
                          on_step=on_step).astype(np.float64)
    sym_a = np.where(anchor[..., None], np.round(y - mu_a), 0.0)
    mu_n, idx_n = im.other_parameters_exact(cfg, model.entropy, f, sym_a)
    mu = np.where(anchor[..., None], mu_a, mu_n)
    sym = np.round(y - mu).astype(np.int64)
    zc = np.broadcast_to(np.arange(cfg.hyper), z_hat.shape)
    sections = {"z": coder.encode(z_hat.reshape(-1), model.z_tables, zc.reshape(-1)),
                "anchors": coder.encode(sym[anchor], model.y_tables, idx_a[anchor]),
                "others": coder.encode(sym[~anchor], model.y_tables, idx_n[~anchor])}
    header = {"model": model.model_id, "width": w, "height": h, "channels": 1 if channels == 1 else 3,
              "quality": quality}
    recon = _reconstruct(model, sym + mu, quality, h, w, header["channels"])
    info = model.y_tables.information_bits
    no_ctx = np.round(y - mu_a).astype(np.int64)[~anchor]  # the others under the hyperprior alone
    bits = {"others": info(sym[~anchor], idx_n[~anchor]), "others_without_context": info(no_ctx, idx_a[~anchor])}
    return EncodedImage(Container(CODEC_ID, header, sections), recon, h * w, bits)


def _header(c: Container) -> dict:
    if c.codec != CODEC_ID:
        raise BitstreamError(f"this is a '{c.codec}' file, not an {CODEC_ID} image")
    h, where = c.header, CODEC_ID
    out = {"id": field_str(h, "model", where, max_len=64), "width": field_int(h, "width", 1, MAX_SIDE, where),
           "height": field_int(h, "height", 1, MAX_SIDE, where), "channels": field_int(h, "channels", 1, 3, where),
           "quality": field_int(h, "quality", 1, 64, where)}
    if out["channels"] == 2:
        raise BitstreamError(f"{where} header field 'channels' must be 1 or 3")
    coded = sum(len(c.section(k)) for k in ("z", "anchors", "others"))
    check_output_size(4.0 * 3 * (out["width"] + STRIDE) * (out["height"] + STRIDE), coded, "pixels")
    return out


@decode_boundary(CODEC_ID)
def decode(model: ImageModel, c: Container) -> np.ndarray:
    """The image [H, W, C] (C = 1 or 3) from the file and its model."""
    hd = _header(c)
    if hd["id"] != model.model_id:
        raise BitstreamError(f"this file was encoded with image model {hd['id']}; the model given is "
                             f"'{model.name}' ({model.model_id}): pass the matching --model")
    cfg = model.config
    if hd["quality"] > cfg.qualities:
        raise BitstreamError(f"file asks for quality {hd['quality']}; the model has {cfg.qualities}")
    ph, pw = -(-hd["height"] // STRIDE) * STRIDE, -(-hd["width"] // STRIDE) * STRIDE
    zc = np.broadcast_to(np.arange(cfg.hyper), (ph // STRIDE, pw // STRIDE, cfg.hyper))
    z_hat = coder.decode(c.section("z"), model.z_tables, zc.reshape(-1), dtype=np.int64).reshape(zc.shape)
    f = im.trunk_exact(cfg, model.entropy, z_hat)
    anchor = im.checkerboard(ph // 16, pw // 16)
    mu_a, idx_a = im.anchor_parameters_exact(cfg, model.entropy, f)
    sym = np.zeros(mu_a.shape, np.int64)
    sym[anchor] = coder.decode(c.section("anchors"), model.y_tables, idx_a[anchor],
                               dtype=np.int64).reshape(-1, cfg.latent)
    mu_n, idx_n = im.other_parameters_exact(cfg, model.entropy, f, sym.astype(np.float64))
    sym[~anchor] = coder.decode(c.section("others"), model.y_tables, idx_n[~anchor],
                                dtype=np.int64).reshape(-1, cfg.latent)
    mu = np.where(anchor[..., None], mu_a, mu_n)
    return _reconstruct(model, sym + mu, hd["quality"], hd["height"], hd["width"], hd["channels"])


# ---------------------------------------------------------------------------------------
# measuring


def image_metrics(reference: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """PSNR and MS-SSIM of two uint8 images [H, W, C] (over all channels, peak 255)."""
    from jaxcodec.metrics import ms_ssim, psnr

    if reference.shape != decoded.shape:
        raise InputError(f"the source is {reference.shape[1]}x{reference.shape[0]}x{reference.shape[2]}; the file "
                         f"decodes to {decoded.shape[1]}x{decoded.shape[0]}x{decoded.shape[2]}")
    a = jnp.asarray(reference, jnp.float32)[None] / 255.0
    b = jnp.asarray(decoded, jnp.float32)[None] / 255.0
    return {"psnr": float(psnr(a, b)[0]), "ms_ssim": float(ms_ssim(a, b)[0])}


def evaluate(c: Container, source: Path, args: argparse.Namespace | None = None) -> dict[str, Any]:
    ref = read_image(source)
    model = resolve_model(getattr(args, "model", None))
    t0 = time.perf_counter()
    out = decode(model, c)
    seconds = time.perf_counter() - t0
    if ref.shape[-1] == 4:
        ref = to_rgb(ref, str(source))
    pixels = ref.shape[0] * ref.shape[1]
    return {**image_metrics(ref, out), "bpp": 8 * len(container.pack(c)) / pixels,
            "quality": c.header.get("quality"), "decode_s": seconds}


# ---------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 10000
    batch_size: int = 4
    crop: int = 192
    lr: float = 2e-4
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 2000  # steps between held-out evaluations (0: at the end only)
    eval_files: int = 4
    checkpoint_every: int = 500
    resume: bool = False
    more_steps: int = 0  # > 0: stop after this many steps (a chunk; continue with resume)
    init: str | None = None  # a model file to start from (fine-tuning) instead of a fresh init

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise InputError("--steps and --batch-size must be at least 1 and --lr positive")
        if self.crop < STRIDE or self.crop % STRIDE:
            raise InputError(f"--crop must be a multiple of {STRIDE}, got {self.crop}")


def _held_out_eval(cfg: ImageModelConfig, data: ImageFolder, opts: TrainOptions) -> Callable:
    """Code the first held-out images to real .jxc bytes at the lowest, a middle and the
    highest quality, read them back, decode, and measure PSNR and bits per pixel."""
    images = [downscale(x, 512) for x in data.valid[:opts.eval_files]]
    qualities = sorted({1, (cfg.qualities + 1) // 2, cfg.qualities})

    def evaluate_held_out(params: Any, state: Any) -> dict[str, float]:
        del state
        model = model_of(cfg, params)
        out: dict[str, float] = {}
        for q in qualities:
            psnrs, bits, pixels = [], 0, 0
            for x in images:
                enc = encode(model, x, q)
                raw = container.pack(enc.container)
                y = decode(model, container.unpack(raw, {CODEC_ID}))
                psnrs.append(image_metrics(x, y)["psnr"])
                bits, pixels = bits + 8 * len(raw), pixels + enc.pixels
            out[f"held_out_psnr_q{q}"] = float(np.mean(psnrs))
            out[f"held_out_bpp_q{q}"] = bits / pixels
        return out

    return evaluate_held_out


def train(data: ImageFolder, cfg: ImageModelConfig, opts: TrainOptions, workdir: str | Path, name: str = "model",
          *, on_step: Callable | None = None, on_log: Callable | None = None) -> ImageModel:
    """Train one model for every quality on a folder of photos; save workdir/model.npz.
    With ``opts.init`` the weights start from that model file (whose config must be ``cfg``)
    and only the optimizer and its schedule start afresh."""
    workdir = Path(workdir)
    defs, params = im.init_params(cfg, opts.seed)
    if opts.init is not None:
        start = ImageModel.load(opts.init)
        if start.config != cfg:
            raise InputError(f"--init {opts.init}: its config {start.config.to_json()} is not the one asked for")
        params = params_of(start)
    t0 = time.perf_counter()
    trainer = Trainer(im.make_loss(cfg, defs), params,
                      TrainConfig(steps=opts.steps, lr=opts.lr, warmup=0.02, steps_per_epoch=max(1, min(100, opts.steps // 4)),
                                  checkpoint_every=opts.checkpoint_every, eval_every=opts.eval_every,
                                  grad_clip=opts.grad_clip, seed=opts.seed),
                      data.sampler(opts.batch_size, opts.crop, cfg.qualities, opts.seed), workdir=workdir,
                      eval_fn=_held_out_eval(cfg, data, opts) if data.valid else None,
                      on_step=on_step, on_log=on_log)
    try:
        params = trainer.run(resume=opts.resume, more_steps=opts.more_steps)
        done = trainer.step
    finally:
        trainer.close()
    info = {"steps": done, **({"of_steps": opts.steps} if done < opts.steps else {}),
            "last_run_seconds": round(time.perf_counter() - t0, 1), "lr": opts.lr, "batch_size": opts.batch_size,
            "crop": opts.crop, "train_images": len(data.train), "devices": jax.devices()[0].device_kind}
    if opts.init is not None:  # a fine-tune: say what it started from, and the steps behind it all
        info["init"] = {"name": start.name, "model_id": start.model_id, "steps": start.info.get("total_steps",
                                                                                                 start.info.get("steps"))}
        if isinstance(info["init"]["steps"], int):
            info["total_steps"] = info["init"]["steps"] + done
    model = model_of(cfg, params, name, info)
    model.save(workdir)
    return model


# ---------------------------------------------------------------------------------------
# registry hooks and command line


@decode_boundary(CODEC_ID)
def describe(c: Container) -> dict[str, Any]:
    h = _header(c)
    pixels = h["width"] * h["height"]
    return {"image": f"{h['width']}x{h['height']}, {'gray' if h['channels'] == 1 else 'RGB'}",
            "model": f"{h['id']}, quality {h['quality']}",
            "bpp": round(8 * len(container.pack(c)) / pixels, 4)}


def _decode_to(c: Container, output: Path, args: argparse.Namespace) -> str:
    if output.suffix == "":
        raise InputError(f"{output}: give the decoded image a suffix (.png, .bmp or .tif)")
    out = decode(resolve_model(getattr(args, "model", None)), c)
    write_image(output, out)
    return f"wrote {out.shape[1]}x{out.shape[0]} image to {output}"


def _add_encode_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--quality", type=cli_type(int, lo=1), default=DEFAULT_QUALITY,
                   help="image: 1 (smallest file) to the model's top quality (8 for the shipped one)")
    g.add_argument("--refine", type=cli_type(int, lo=0), default=0, metavar="STEPS",
                   help="image: optimise the latent for this image for STEPS gradient steps before coding "
                        "(each step costs about two plain encodes; the decoder is unchanged). Default 0: off")


def _encode_command(args: argparse.Namespace, progress: Progress) -> str:
    model = resolve_model(args.model)
    image = read_image(args.input)
    t0 = time.perf_counter()
    progress.note(f"{args.input}: {image.shape[1]}x{image.shape[0]}, {image.shape[2]} channel(s); "
                  f"model {model.name} ({model.model_id})")
    result = encode(model, image, args.quality, refine=args.refine, on_step=progress.step)
    size = container.write(args.output, result.container)
    seconds = time.perf_counter() - t0
    return (f"wrote {args.output}: {size:,} bytes, {8 * size / result.pixels:.4f} bpp at quality {args.quality} "
            f"in {seconds:.2f} s")


def _add_train_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--steps", type=cli_type(int, lo=1), default=10000,
                   help="optimizer steps (0.7-1 s each on a 2-core CPU with the settings below)")
    g.add_argument("--batch-size", type=cli_type(int, lo=1), default=4, help="crops per step")
    g.add_argument("--crop", type=cli_type(int, lo=STRIDE), default=192,
                   help=f"side of the square training crops (a multiple of {STRIDE})")
    g.add_argument("--lr", type=cli_type(float, lo=1e-12), default=2e-4,
                   help="Adam's peak learning rate (2%% warm-up, then cosine to 0)")
    g.add_argument("--grad-clip", type=cli_type(float, lo=0), default=1.0, help="global-norm clipping (0: off)")
    g.add_argument("--seed", type=int, default=0, help="initialisation and crop sampling")
    g.add_argument("--channels", type=cli_type(int, lo=1), default=64, help="transform width N")
    g.add_argument("--latent", type=cli_type(int, lo=1), default=96, help="latent channels M")
    g.add_argument("--eval-every", type=cli_type(int, lo=0), default=2000,
                   help="steps between evaluations of held-out images, coded to real files (0: at the end)")
    g.add_argument("--eval-data", default=None, metavar="DIR",
                   help="held-out photos to evaluate on (default: 10%% of --data, chosen by name)")
    g.add_argument("--checkpoint-every", type=cli_type(int, lo=0), default=500, help="steps between checkpoints")
    g.add_argument("--chunk-steps", dest="more_steps", type=cli_type(int, lo=0), default=0,
                   help="stop after this many steps (continue later with --resume): training in chunks")
    g.add_argument("--init", default=None, metavar="MODEL",
                   help="start from this model file's weights (e.g. jaxcodec/assets/photo.npz, to fine-tune "
                        "the shipped model); its width and latent replace --channels and --latent")


def _train_command(args: argparse.Namespace, progress: Progress) -> str:
    data = ImageFolder.load(args.data, valid_folder=args.eval_data)
    progress.note(f"{args.data}: {len(data.train)} training images, {len(data.valid)} held out")
    cfg = (ImageModel.load(args.init).config if args.init is not None
           else ImageModelConfig(channels=args.channels, latent=args.latent))
    model = train(data, cfg, options_from_args(TrainOptions, args), args.output, Path(args.output).name,
                  on_step=progress.step, on_log=progress.log)
    return f"saved model {model.name} ({model.model_id}) to {Path(args.output) / 'model.npz'}"


register(CodecEntry(CODEC_ID, "still images through a learned hyperprior codec", describe, _decode_to, evaluate,
                    media="image", encode=Command(_add_encode_args, _encode_command),
                    train=Command(_add_train_args, _train_command), train_kind="image"))
