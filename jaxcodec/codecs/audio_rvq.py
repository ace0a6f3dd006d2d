"""``audio-rvq``: a SEANet + residual-VQ neural audio codec with learned priors over codes.

A model (``AudioModel``) is trained on a folder of audio with the shared trainer; its
weights, RVQ codebooks and code prior live in one ``.npz`` file (float16 weights, no
pickle) whose content hash is the model id. Encoding resamples to the model rate,
encodes each channel in chunks with context (bounded memory), keeps the first
``stages`` codebooks for the requested bitrate, and entropy-codes the codes with the
prior. The file names its model: decoding with another model is an error, not noise.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
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
from jaxcodec.audio import context_prior, losses, rvq
from jaxcodec.audio.context_prior import ContextConfig, ContextPrior
from jaxcodec.audio.prior import CodePrior
from jaxcodec.audio.seanet import SEANetConfig, SEANetDecoder, SEANetEncoder
from jaxcodec.codecs import CodecEntry, Command, Progress, decode_boundary, options_from_args, register
from jaxcodec.container import Container, check_output_size, field_int, field_str
from jaxcodec.data.audio import AudioFolder, read_audio, resample, resampled_length, write_audio
from jaxcodec.data.media import cli_type
from jaxcodec.entropy import coder
from jaxcodec.entropy.tables import CodingTables
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.train import TrainConfig, Trainer

log = logging.getLogger(__name__)
CODEC_ID = "audio-rvq"
CHUNK_FRAMES = 512  # most frames coded per network call (about 10 s at 50 frames/s)
CONTEXT_FRAMES = 25  # frames of context on each side of a chunk
CONTEXT_ID_CHARS = 8  # hex digits of the context prior's hash in a file's header (kept short: prompts are small)


def _chunk_frames(frames: int) -> int:
    """Frames per network call: a power of two covering short inputs, capped for long ones
    (bounded memory); powers of two keep the number of compiled shapes small."""
    n = 32
    while n < min(frames, CHUNK_FRAMES):
        n *= 2
    return n


@dataclass(frozen=True)
class AudioModelConfig:
    seanet: SEANetConfig = SEANetConfig()
    rvq: rvq.RVQConfig = rvq.RVQConfig()
    bandwidth_stages: tuple[int, ...] = (3, 6, 12, 24)  # 1.5 / 3 / 6 / 12 kbps at 16 kHz, 50 fps

    def kbps(self, stages: int) -> float:
        """Nominal rate of `stages` levels (each `groups` codebooks wide)."""
        return stages * self.rvq.groups * self.rvq.bits_per_code * self.seanet.frame_rate / 1000

    def trained_kbps(self, channels: int = 1) -> list[float]:
        """The whole-file nominal rates the model was trained for (quantizer dropout's choices)."""
        return [channels * self.kbps(s) for s in self.bandwidth_stages]

    def stages_for(self, kbps: float, channels: int = 1) -> int:
        """Codebooks per channel that give the file `kbps` in all (nominal, before the prior):
        only rates the model was trained for, since other depths were never decoded in training."""
        for stages, rate in zip(self.bandwidth_stages, self.trained_kbps(channels)):
            if math.isclose(kbps, rate, rel_tol=1e-3):
                return stages
        rates = ", ".join(f"{r:g}" for r in self.trained_kbps(channels))
        raise InputError(f"--kbps {kbps:g} is not a rate this model was trained for; for {channels} channel(s) "
                         f"it codes at {rates} kbps")

    def to_json(self) -> dict:
        return {"seanet": self.seanet.to_json(), "rvq": self.rvq.to_json(),
                "bandwidth_stages": list(self.bandwidth_stages)}

    @staticmethod
    def from_json(d: dict) -> AudioModelConfig:
        return AudioModelConfig(SEANetConfig.from_json(d["seanet"]), rvq.RVQConfig.from_json(d["rvq"]),
                                tuple(int(s) for s in d["bandwidth_stages"]))


@functools.lru_cache(maxsize=8)
def _graphs(cfg: AudioModelConfig):
    enc_g, enc_s = nnx.split(nnx.eval_shape(lambda: SEANetEncoder(cfg.seanet, rngs=nnx.Rngs(0))))
    dec_g, dec_s = nnx.split(nnx.eval_shape(lambda: SEANetDecoder(cfg.seanet, rngs=nnx.Rngs(0))))
    return enc_g, jax.tree_util.tree_structure(enc_s), dec_g, jax.tree_util.tree_structure(dec_s)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 5))
def _encode_chunk(cfg, enc_g, enc_def, enc_leaves, codebooks, stages, wav, lookup=None):
    z = nnx.merge(enc_g, jax.tree_util.tree_unflatten(enc_def, enc_leaves))(wav)
    return rvq.encode_codes(cfg.rvq, codebooks, z, stages, lookup)


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def _decode_chunk(dec_g, dec_def, dec_leaves, codebooks, codes, groups=1):
    latent = rvq.decode_codes(codebooks, codes, groups)
    return nnx.merge(dec_g, jax.tree_util.tree_unflatten(dec_def, dec_leaves))(latent)


@dataclass
class AudioModel:
    """A trained codec: config, float16-stored weights, codebooks and code prior.
    Factorized codes (``config.rvq.code_dim > 0``) add ``lookup``: {"w_in", "w_out",
    "codes"}; ``codebooks`` are then the codes projected up (what decoding adds).
    ``context``: the optional context prior (``fit_context_prior``); ``retired``: context
    priors the model carried before, kept so that the files coded with them still decode."""

    config: AudioModelConfig
    encoder: list[np.ndarray]
    decoder: list[np.ndarray]
    codebooks: np.ndarray
    prior: CodePrior
    name: str = "model"
    info: dict[str, Any] = field(default_factory=dict)
    lookup: dict[str, np.ndarray] | None = None
    context: ContextPrior | None = None
    retired: tuple[ContextPrior, ...] = ()

    @property
    def sample_rate(self) -> int:
        return self.config.seanet.sample_rate

    @property
    def model_id(self) -> str:
        h = hashlib.sha256(json.dumps(self.config.to_json(), sort_keys=True).encode())
        lookup = self.lookup or {}
        for a in [*self.encoder, *self.decoder, self.codebooks, *(lookup[k] for k in sorted(lookup))]:
            h.update(np.ascontiguousarray(a, np.float16).tobytes())
        for a in self.prior.to_arrays().values():
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    @property
    def context_id(self) -> str | None:
        """Hash of the context prior, which files coded with it name beside the model id: a
        context prior added to a model later leaves the model id, and its older files, as they were."""
        return None if self.context is None else self.context.content_id(CONTEXT_ID_CHARS)

    def context_for(self, context_id: str) -> ContextPrior | None:
        """The context prior (current or retired) a file names, or None."""
        for ctx in (self.context, *self.retired):
            if ctx is not None and ctx.content_id(CONTEXT_ID_CHARS) == context_id:
                return ctx
        return None

    def retire_context(self, new: ContextPrior) -> None:
        """Code with `new` from now on; the current prior still decodes its files."""
        if self.context is not None:
            self.retired = (self.context, *self.retired)
        self.context = new

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """One .npz file (no pickle): weights and codebooks as float16, config as JSON."""
        meta = {"config": self.config.to_json(), "name": self.name, "info": self.info}
        arrays = {"codebooks": self.codebooks.astype(np.float16),
                  **{f"enc_{i:03d}": a.astype(np.float16) for i, a in enumerate(self.encoder)},
                  **{f"dec_{i:03d}": a.astype(np.float16) for i, a in enumerate(self.decoder)},
                  **{f"lookup_{k}": a.astype(np.float16) for k, a in (self.lookup or {}).items()},
                  **self.prior.to_arrays(), **({} if self.context is None else self.context.to_arrays()),
                  **{k: v for i, r in enumerate(self.retired) for k, v in r.to_arrays(f"retired{i}").items()}}
        return modelfile.save(path, meta, arrays)

    @staticmethod
    def load(path: str | Path) -> AudioModel:
        meta, d = modelfile.load(path, "audio")
        try:
            cfg = AudioModelConfig.from_json(meta["config"])
            f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
            enc = [f32(d[k]) for k in sorted(k for k in d if k.startswith("enc_"))]
            dec = [f32(d[k]) for k in sorted(k for k in d if k.startswith("dec_"))]
            lookup = {k.removeprefix("lookup_"): f32(d[k]) for k in d if k.startswith("lookup_")} or None
            retired = tuple(ContextPrior.from_arrays(d, f"retired{i}") for i in range(len(d))
                            if f"retired{i}_emb" in d)
            model = AudioModel(cfg, enc, dec, f32(d["codebooks"]), CodePrior.from_arrays(d),
                               meta.get("name", "model"), meta.get("info", {}), lookup, ContextPrior.from_arrays(d),
                               retired)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a jaxcodec audio model: {exc}") from None
        model._check_shapes()
        return model

    def _check_shapes(self) -> None:
        enc_g, enc_def, dec_g, dec_def = _graphs(self.config)
        if enc_def.num_leaves != len(self.encoder) or dec_def.num_leaves != len(self.decoder):
            raise InputError("model weights do not match its config")
        books = (self.config.rvq.columns, self.config.rvq.codebook_size)
        if any(c is not None and (c.config.columns, c.config.codebook_size) != books
               for c in (self.context, *self.retired)):
            raise InputError("the model's context prior does not match its codebooks")
        if (self.config.rvq.code_dim > 0) != (self.lookup is not None) or \
                (self.lookup is not None and set(self.lookup) != {"w_in", "w_out", "codes"}):
            raise InputError("model codebooks do not match its config (factorized codes need w_in, w_out, codes)")

    # -- codes ----------------------------------------------------------------------------

    def _rounded(self):
        """Weights as the file stores them (float16), so every user computes the same."""
        r = lambda xs: [jnp.asarray(np.asarray(x, np.float16), jnp.float32) for x in xs]  # noqa: E731
        return r(self.encoder), r(self.decoder), r([self.codebooks])[0]

    def _rounded_lookup(self) -> dict[str, jax.Array] | None:
        if self.lookup is None:
            return None
        return {k: jnp.asarray(np.asarray(self.lookup[k], np.float16), jnp.float32) for k in ("w_in", "codes")}

    def encode_codes(self, wav: np.ndarray, stages: int, on_chunk: Callable[[int, int], None] | None = None
                     ) -> np.ndarray:
        """Mono float samples at the model rate -> codes [frames, stages] (chunked);
        `on_chunk(done, total)` after each chunk."""
        hop = self.config.seanet.hop
        frames = -(-len(wav) // hop)
        enc_g, enc_def, _, _ = _graphs(self.config)
        enc, _, books = self._rounded()
        lookup = self._rounded_lookup()
        chunk = _chunk_frames(frames)
        ctx, n = CONTEXT_FRAMES * hop, chunk * hop
        padded = np.zeros(ctx + frames * hop + n + ctx, np.float32)
        padded[ctx:ctx + len(wav)] = wav
        out = []
        for start in range(0, frames, chunk):
            window = padded[start * hop:start * hop + n + 2 * ctx]
            codes = _encode_chunk(self.config, enc_g, enc_def, enc, books, stages, jnp.asarray(window[None]), lookup)
            out.append(np.asarray(codes[0, CONTEXT_FRAMES:CONTEXT_FRAMES + chunk]))
            if on_chunk is not None:
                on_chunk(len(out), -(-frames // chunk))
        return np.concatenate(out)[:frames].astype(np.int64)

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Codes [frames, stages] -> mono samples at the model rate (chunked)."""
        hop = self.config.seanet.hop
        _, _, dec_g, dec_def = _graphs(self.config)
        _, dec, books = self._rounded()
        frames = codes.shape[0]
        chunk = _chunk_frames(frames)
        padded = np.zeros((CONTEXT_FRAMES + frames + chunk + CONTEXT_FRAMES, codes.shape[1]), np.int32)
        padded[CONTEXT_FRAMES:CONTEXT_FRAMES + frames] = codes
        out = []
        for start in range(0, frames, chunk):
            window = padded[start:start + chunk + 2 * CONTEXT_FRAMES]
            wav = _decode_chunk(dec_g, dec_def, dec, books, jnp.asarray(window[None]), self.config.rvq.groups)
            out.append(np.asarray(wav[0, CONTEXT_FRAMES * hop:(CONTEXT_FRAMES + chunk) * hop]))
        return np.concatenate(out)[:frames * hop]


# ---------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 20000
    batch_size: int = 8
    crop_seconds: float = 1.0
    lr: float = 3e-4
    seed: int = 0
    adversarial: bool = False  # discriminator + feature matching
    discriminator: str = "msstft"  # losses.DISCRIMINATORS: "msstft" (EnCodec) or "dac" (MPD + multi-band STFT)
    mel_scales: str = "two"  # losses.MEL_SCALES: "two" resolutions or DAC's seven
    weights: tuple[tuple[str, float], ...] = (("l1", 0.1), ("stft", 1.0), ("mel", 1.0), ("commit", 0.25),
                                              ("gen", 1.0), ("feat", 2.0), ("disc", 1.0))
    eval_every: int = 1000  # steps between held-out evaluations (0: at the end only)
    eval_files: int = 8  # held-out files evaluated (each coded to a real file and decoded)
    eval_kbps: float = 6.0
    checkpoint_every: int = 1000
    grad_clip: float = 0.0
    resume: bool = False
    more_steps: int = 0  # > 0: stop after this many steps (a chunk; continue with resume)
    context_steps: int = 3000  # training steps of the context prior after the codec's (0: none)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not self.crop_seconds > 0 or not self.lr > 0 or \
                self.context_steps < 0:
            raise InputError("--steps and --batch-size must be at least 1, --crop and --lr positive, "
                             "--context-steps not negative")
        if self.discriminator not in losses.DISCRIMINATORS or self.mel_scales not in losses.MEL_SCALES:
            raise InputError(f"--discriminator is one of {', '.join(losses.DISCRIMINATORS)} and --mel-scales one of "
                             f"{', '.join(losses.MEL_SCALES)}")


def _make_loss(cfg: AudioModelConfig, graphs, opts: TrainOptions):
    enc_g, dec_g, disc_g = graphs
    w = dict(opts.weights)
    choices = jnp.asarray(cfg.bandwidth_stages)
    sr = cfg.seanet.sample_rate

    def loss_fn(params, state, wav, key, step):
        k_drop, k_q = jax.random.split(key)
        z = nnx.merge(enc_g, params["encoder"])(wav)
        n_active = jax.random.choice(k_drop, choices, (wav.shape[0],))  # quantizer dropout
        zq, codes, commit, state, ppl = rvq.quantize(cfg.rvq, state, z, n_active, k_q, train=True,
                                                     proj=params.get("rvq"))
        y = nnx.merge(dec_g, params["decoder"])(zq)
        terms = {"l1": jnp.mean(jnp.abs(y - wav)), "stft": losses.multi_resolution_stft(wav, y),
                 "mel": losses.mel_l1(wav, y, sr, opts.mel_scales), "commit": commit}
        if disc_g is not None:
            terms["gen"], terms["feat"], terms["disc"] = losses.adversarial_losses(disc_g, params["disc"], wav, y)
        loss = sum(w[k] * v for k, v in terms.items())
        metrics = dict(terms, bits_per_frame=jnp.sum(jnp.log2(ppl)),
                       **{f"ppl_{q:02d}": ppl[q] for q in range(cfg.rvq.columns)})
        return loss, (metrics, state)

    return loss_fn


def train(data: AudioFolder, cfg: AudioModelConfig, opts: TrainOptions, workdir: str | Path, name: str = "model",
          *, init: AudioModel | None = None, on_step: Callable | None = None,
          on_log: Callable | None = None) -> AudioModel:
    """Train a codec on a dataset folder, fit its code prior, save workdir/model.npz.
    With `init`, start from that model's weights and codebooks (fine-tuning on new data)."""
    if data.sample_rate != cfg.seanet.sample_rate:
        raise InputError("dataset and model sample rates differ")
    if init is not None and init.config != cfg:
        raise InputError(f"the model to start from has another configuration ({init.config}) than the one "
                         f"asked for ({cfg})")
    workdir = Path(workdir)
    hop = cfg.seanet.hop
    crop = max(hop, int(round(opts.crop_seconds * cfg.seanet.sample_rate / hop)) * hop)
    rngs = nnx.Rngs(opts.seed)
    enc_g, enc_s = nnx.split(SEANetEncoder(cfg.seanet, rngs=rngs))
    dec_g, dec_s = nnx.split(SEANetDecoder(cfg.seanet, rngs=rngs))
    params: dict[str, Any] = {"encoder": enc_s, "decoder": dec_s}
    disc_g = None
    if opts.adversarial:
        disc_g, params["disc"] = nnx.split(losses.make_discriminator(opts.discriminator, rngs=rngs))
    state = rvq.init_state(cfg.rvq, jax.random.key(opts.seed))
    if cfg.rvq.code_dim:
        params["rvq"] = rvq.init_projections(cfg.rvq, jax.random.key(opts.seed + 1))
    if init is not None:
        as_tree = lambda s, arrays: jax.tree_util.tree_unflatten(  # noqa: E731
            jax.tree_util.tree_structure(s), [jnp.asarray(a, jnp.float32) for a in arrays])
        params.update(encoder=as_tree(enc_s, init.encoder), decoder=as_tree(dec_s, init.decoder))
        state = rvq.state_from_codebooks(init.codebooks if init.lookup is None else init.lookup["codes"])
        if init.lookup is not None:
            params["rvq"] = {k: jnp.asarray(init.lookup[k]) for k in ("w_in", "w_out")}
    t0 = time.perf_counter()
    trainer = Trainer(_make_loss(cfg, (enc_g, dec_g, disc_g), opts), params,
                      TrainConfig(steps=opts.steps, lr=opts.lr, warmup=0.02,
                                  steps_per_epoch=min(opts.eval_every or 100, 100),
                                  checkpoint_every=opts.checkpoint_every, eval_every=opts.eval_every,
                                  grad_clip=opts.grad_clip, seed=opts.seed),
                      data.sampler(opts.batch_size, crop, opts.seed), state=state, workdir=workdir,
                      eval_fn=_held_out_eval(cfg, data, opts) if data.valid else None,
                      on_step=on_step, on_log=on_log)
    try:
        params = trainer.run(resume=opts.resume, more_steps=opts.more_steps)
        done = trainer.step
        state = trainer.state
    finally:
        trainer.close()
    seconds = time.perf_counter() - t0
    info = {"steps": done, **({"of_steps": opts.steps} if done < opts.steps else {}),
            "train_seconds": round(seconds, 1), "batch_size": opts.batch_size,
            "crop_seconds": opts.crop_seconds, "adversarial": opts.adversarial,
            **({"discriminator": opts.discriminator} if opts.adversarial else {}),
            "mel_scales": opts.mel_scales,
            "devices": jax.devices()[0].device_kind, **({"init": init.model_id} if init is not None else {})}
    model = _model_of(cfg, params, state, None, name, info)
    model.prior = fit_prior(model, data.train)
    if opts.context_steps and cfg.rvq.columns > 1:
        records: list[dict] = []
        copts = ContextOptions(steps=opts.context_steps, seed=opts.seed)
        t1 = time.perf_counter()
        model.context = fit_context_prior(model, data.train, copts, on_step=on_step, on_log=records.append)
        model.info["context_prior"] = {**context_info(copts, time.perf_counter() - t1),
                                       "bits_per_frame": round(records[-1]["bits_per_frame"], 2)}
        log.info("context prior: %.1f bits a frame on the training codes (nominal %d)",
                 records[-1]["bits_per_frame"], cfg.rvq.columns * cfg.rvq.bits_per_code)
    model.save(workdir)
    return model


def _model_of(cfg: AudioModelConfig, params: Any, state: Any, prior: CodePrior | None = None,
              name: str = "model", info: dict | None = None) -> AudioModel:
    leaves = lambda s: [np.asarray(x, np.float32) for x in jax.tree_util.tree_leaves(s)]  # noqa: E731
    if prior is None:  # a flat prior: training has not counted codes yet
        prior = CodePrior.fit(np.zeros((0, cfg.rvq.columns), np.int64), cfg.rvq.codebook_size)
    proj = params.get("rvq")
    books = np.asarray(rvq.effective_codebooks(state["codebooks"], proj), np.float32)
    lookup = None if proj is None else {"w_in": np.asarray(proj["w_in"], np.float32),
                                        "w_out": np.asarray(proj["w_out"], np.float32),
                                        "codes": np.asarray(state["codebooks"], np.float32)}
    return AudioModel(cfg, leaves(params["encoder"]), leaves(params["decoder"]), books, prior, name, info or {},
                      lookup)


def _held_out_eval(cfg: AudioModelConfig, data: AudioFolder, opts: TrainOptions) -> Callable:
    """Code the first held-out files to real .jxc bytes at `eval_kbps`, read them back,
    decode, and measure what a user would (SI-SDR, log-mel distance, kbps of the files)."""
    clips = [x[:4 * cfg.seanet.sample_rate] for x in data.valid[:opts.eval_files]]
    kbps = min(cfg.trained_kbps(), key=lambda r: abs(r - opts.eval_kbps))

    def evaluate_held_out(params: Any, state: Any) -> dict[str, float]:
        model = _model_of(cfg, params, state)
        rows, bits, seconds = [], 0, 0.0
        for x in clips:
            enc = encode(model, x[:, None], cfg.seanet.sample_rate, kbps)
            raw = container.pack(enc.container)
            out, sr = decode(model, container.unpack(raw, {CODEC_ID}))
            rows.append(audio_metrics(x[:, None], out, sr))
            bits, seconds = bits + 8 * len(raw), seconds + enc.duration_s
        return {"held_out_si_sdr": float(np.mean([r["si_sdr"] for r in rows])),
                "held_out_mel": float(np.mean([r["mel_distance"] for r in rows])),
                "held_out_kbps": bits / seconds / 1000}

    return evaluate_held_out


def _clip_codes(model: AudioModel, clips: list[np.ndarray]) -> list[np.ndarray]:
    """Codes [frames, columns] of each clip at the model's full depth."""
    return [model.encode_codes(x, model.config.rvq.stages) for x in clips if len(x) >= model.config.seanet.hop]


def fit_prior(model: AudioModel, clips: list[np.ndarray]) -> CodePrior:
    """Counts of the codes of the training clips at the model's full depth."""
    return CodePrior.fit(np.concatenate(_clip_codes(model, clips)), model.config.rvq.codebook_size)


@dataclass(frozen=True)
class ContextOptions:
    """Training of the context prior: codes of the training clips, cross-entropy in bits."""

    steps: int = 3000
    batch_size: int = 256  # frames a step (every column of each)
    lr: float = 3e-3
    embed: int = 16
    hidden: int = 64
    time_levels: int = 2  # ContextConfig.time_levels: passes in which a codebook sees its own codes (0: none)
    seed: int = 0


def context_info(opts: ContextOptions, seconds: float, started_from: str | None = None) -> dict[str, Any]:
    """What a model file records of how its context prior was trained."""
    return {"steps": opts.steps, "batch_size": opts.batch_size, "time_levels": opts.time_levels,
            "train_seconds": round(seconds, 1), **({"started_from": started_from} if started_from else {})}


def fit_context_prior(model: AudioModel, clips: list[np.ndarray], opts: ContextOptions = ContextOptions(), *,
                      start: ContextPrior | None = None, on_step: Callable | None = None,
                      on_log: Callable | None = None) -> ContextPrior:
    """Train a context prior over the codes the model gives the clips (with the shared
    trainer; minutes, so without checkpoints), from scratch or from `start`."""
    rq = model.config.rvq
    if rq.columns < 2:
        raise InputError("a context prior needs at least two codebooks")
    codes = _clip_codes(model, clips)
    if not codes:
        raise InputError("no clip is long enough to give a code frame")
    cfg = ContextConfig(rq.columns, rq.codebook_size, opts.embed, opts.hidden,
                        context_prior.SLOTS + context_prior.own_slots(opts.time_levels), opts.time_levels)

    def loss_fn(params, window, key, step):
        phase = jax.random.randint(key, window.shape[:1], 0, 1 << cfg.time_levels)  # each pass as often as coded
        b = context_prior.bits(cfg, params, window, phase)
        return jnp.mean(b), {"bits_per_frame": jnp.sum(jnp.mean(b, axis=0))}

    trainer = Trainer(loss_fn, context_prior.init_params(cfg, jax.random.key(opts.seed), start),
                      TrainConfig(steps=opts.steps, lr=opts.lr, warmup=0.02, seed=opts.seed),
                      context_prior.sampler(codes, cfg, opts.batch_size, opts.seed),
                      on_step=on_step, on_log=on_log)
    try:
        params = trainer.run()
    finally:
        trainer.close()
    return ContextPrior.export(cfg, jax.device_get(params))


# ---------------------------------------------------------------------------------------
# files


PRIORS = ("unigram", "depth", "context")


def _context_blocks(codes_shape: tuple[int, int, int]) -> list[tuple[int, slice]]:
    """(channel, frames) of each stream of the context prior: one stream holds every
    codebook of its frames (decoded codebook by codebook, contexts taken inside the block),
    at most STREAM_SYMBOLS codes, so a prompt pays for one stream header and the per-symbol
    tables of a long file stay bounded."""
    c, t, q = codes_shape
    rows = max(1, context_prior.STREAM_SYMBOLS // q)
    return [(ch, slice(a, min(t, a + rows))) for ch in range(c) for a in range(0, t, rows)]


def _code_streams(model: AudioModel, codes: np.ndarray, prior_kind: str) -> bytes:
    """Entropy-code codes [channels, frames, stages] with one of PRIORS."""
    c, t, q = codes.shape
    if prior_kind == "unigram":
        rows = np.broadcast_to(np.arange(q), codes.shape).reshape(-1)
        return coder.encode(codes.reshape(-1), model.prior.unigram_tables(q), rows)
    if prior_kind == "context":
        blocks = _context_blocks(codes.shape)
        return coder.join([_code_context_block(model, codes[ch, frames]) for ch, frames in blocks])
    parts = [coder.encode(codes[..., 0].reshape(-1), model.prior.unigram_tables(1))]
    for s in range(1, q):
        ctx, inverse = np.unique(codes[..., s - 1].reshape(-1), return_inverse=True)
        parts.append(coder.encode(codes[..., s].reshape(-1), model.prior.depth_tables(s, ctx), inverse))
    return b"".join(len(p).to_bytes(4, "little") + p for p in parts)


def _code_context_block(model: AudioModel, block: np.ndarray) -> bytes:
    """One stream of a block's codes [frames, stages], pass by pass (ContextConfig.passes);
    codebook 0 by its counted unigram where the context prior does not code it."""
    ctx = model.context
    freqs, values, rows = [], [], []
    if ctx.config.first:
        freqs.append(model.prior.unigram_tables(1).freqs)
        values.append(block[:, 0])
        rows.append(np.zeros(block.shape[0], np.int64))
    for s, t in ctx.config.passes(*block.shape):
        rows.append(sum(len(f) for f in freqs) + np.arange(len(t)))
        freqs.append(ctx.tables(block, s, t).freqs)
        values.append(block[t, s])
    freqs = np.concatenate(freqs)
    return coder.encode(np.concatenate(values), CodingTables(freqs, 0, freqs.shape[1], escape=False),
                        np.concatenate(rows))


def _decode_context_block(model: AudioModel, ctx: ContextPrior, part: bytes, block: np.ndarray) -> None:
    """Fills `block` [frames, stages] from one stream of _code_context_block."""
    reader = coder.StreamReader(part, block.size)
    if ctx.config.first:
        block[:, 0] = reader.read(model.prior.unigram_tables(1), count=block.shape[0])
    for s, t in ctx.config.passes(*block.shape):  # each pass's tables need the passes before it
        tables = ctx.tables(block, s, t)
        block[t, s] = reader.read(tables, np.arange(tables.count))
    reader.finish()


def _decode_streams(model: AudioModel, data: bytes, shape: tuple[int, int, int], prior_kind: str,
                    context: str | None = None) -> np.ndarray:
    """Codes [channels, frames, stages] from the streams of _code_streams; `context`: the id
    of the context prior the file names (the model's current one when None)."""
    c, t, q = shape
    if prior_kind == "unigram":
        rows = np.broadcast_to(np.arange(q), shape).reshape(-1)
        return coder.decode(data, model.prior.unigram_tables(q), rows, dtype=np.int64).reshape(shape)
    out = np.zeros(shape, np.int64)
    if prior_kind == "context":
        ctx = model.context if context is None else model.context_for(context)
        if ctx is None:
            raise BitstreamError("this file was coded with a context prior; the model given has none")
        blocks = _context_blocks(shape)
        for (ch, frames), part in zip(blocks, coder.split(data, len(blocks))):
            _decode_context_block(model, ctx, part, out[ch, frames])  # a view: filled in place
        return out
    pos = 0
    for s in range(q):
        if pos + 4 > len(data):
            raise BitstreamError("code streams are truncated")
        n = int.from_bytes(data[pos:pos + 4], "little")
        part = data[pos + 4:pos + 4 + n]
        if len(part) != n:
            raise BitstreamError("code streams are truncated")
        pos += 4 + n
        if s == 0:
            out[..., 0] = coder.decode(part, model.prior.unigram_tables(1), count=c * t, dtype=np.int64).reshape(c, t)
        else:
            ctx, inverse = np.unique(out[..., s - 1].reshape(-1), return_inverse=True)
            out[..., s] = coder.decode(part, model.prior.depth_tables(s, ctx), inverse, dtype=np.int64).reshape(c, t)
    if pos != len(data):
        raise BitstreamError("code streams have trailing bytes")
    return out


@dataclass
class EncodedAudio:
    container: Container
    codes: np.ndarray  # [channels, frames, stages], what the file holds
    nominal_kbps: float  # of the whole file, all channels
    duration_s: float
    prior: str  # which of PRIORS coded the file (the smallest)


DEFAULT_KBPS = 6.0  # `jaxcodec encode x.wav` without --kbps


def encode(model: AudioModel, samples: np.ndarray, sample_rate: int, kbps: float = DEFAULT_KBPS,
           on_step: Callable[[int, int], None] | None = None) -> EncodedAudio:
    """Samples [N, C] at any rate -> a .jxc container (every prior the model has tried,
    the smallest file kept)."""
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise InputError("audio must be [samples, channels] with at least one sample")
    stages = model.config.stages_for(kbps, samples.shape[1])
    channels = samples.shape[1]

    def chunk_done(ch: int):  # progress over all channels' chunks
        return None if on_step is None else lambda done, total: on_step(ch * total + done, channels * total)

    if on_step is not None:
        on_step(0, 1)
    codes = np.stack([model.encode_codes(resample(samples[:, ch], sample_rate, model.sample_rate), stages,
                                         chunk_done(ch)) for ch in range(channels)])
    kinds = PRIORS if model.context is not None else ("unigram", "depth")
    streams = {kind: _code_streams(model, codes, kind) for kind in kinds}
    kind = min(streams, key=lambda k: len(streams[k]))
    header = _compact_header(model, sample_rate, samples.shape, codes.shape[2], kind)
    duration = samples.shape[0] / sample_rate
    nominal = model.config.kbps(stages) * samples.shape[1]
    return EncodedAudio(Container(CODEC_ID, header, {"codes": streams[kind]}), codes, nominal, duration, kind)


MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64


DEFAULT_RATE = 16_000  # a compact header leaves out 'r' at this rate and 'k' for one channel
# The compact header's keys (a 2-second prompt at 6 kbps is about 1.1 kB of codes, and the
# spelled-out header was 140 bytes of it): m model id, n samples per channel, q codebooks,
# r sample rate, k channels, p prior ('unigram' or 'depth'; absent with x), x the context
# prior's id (the file uses the context prior). The code frames follow from n, r and the
# model. Files written before it spell the fields out and keep decoding (_legacy_header).
COMPACT_KEYS = {"m", "n", "q", "r", "k", "p", "x"}


def _compact_header(model: AudioModel, sample_rate: int, shape: tuple[int, ...], stages: int, prior: str) -> dict:
    h = {"m": model.model_id, "n": int(shape[0]), "q": int(stages)}
    if sample_rate != DEFAULT_RATE:
        h["r"] = int(sample_rate)
    if shape[1] != 1:
        h["k"] = int(shape[1])
    h.update({"x": model.context_id} if prior == "context" else {"p": prior})
    return h


def _header(c: Container) -> dict:
    """Header fields, each checked, and the output bounded by what the codes can hold.
    'frames' is None in a compact header: the model gives it (_frames)."""
    if c.codec != CODEC_ID:
        raise BitstreamError(f"this is a '{c.codec}' file, not {CODEC_ID} audio")
    h, w = c.header, CODEC_ID
    if not isinstance(h, dict) or "m" not in h:
        return _legacy_header(c)
    unknown = set(h) - COMPACT_KEYS
    if unknown:
        raise BitstreamError(f"{w} header has unknown fields {sorted(unknown)}: written by a newer jaxcodec?")
    out = {"id": field_str(h, "m", w, max_len=64), "length": field_int(h, "n", 1, 1 << 40, w),
           "stages": field_int(h, "q", 1, 1024, w), "frames": None,
           "sr": field_int(h, "r", 1, MAX_SAMPLE_RATE, w) if "r" in h else DEFAULT_RATE,
           "channels": field_int(h, "k", 1, MAX_CHANNELS, w) if "k" in h else 1}
    if "x" in h:
        if "p" in h:
            raise BitstreamError(f"{w} header has both 'p' and 'x': a context-coded file has no 'p'")
        out["prior"], out["context"] = "context", field_str(h, "x", w, max_len=CONTEXT_ID_CHARS)
    else:
        out["prior"], out["context"] = field_str(h, "p", w, ("unigram", "depth")), None
    check_output_size(4.0 * out["channels"] * out["length"], len(c.section("codes")), "samples")
    return out


def _legacy_header(c: Container) -> dict:
    h, w = c.header, CODEC_ID
    out = {"id": field_str(h, "model", w, max_len=64), "sr": field_int(h, "sample_rate", 1, MAX_SAMPLE_RATE, w),
           "channels": field_int(h, "channels", 1, MAX_CHANNELS, w), "length": field_int(h, "length", 1, 1 << 40, w),
           "stages": field_int(h, "stages", 1, 1024, w), "frames": field_int(h, "frames", 1, 1 << 32, w),
           "prior": field_str(h, "prior", w, PRIORS)}
    out["context"] = field_str(h, "context", w, max_len=CONTEXT_ID_CHARS) if out["prior"] == "context" else None
    coded = len(c.section("codes"))
    check_output_size(8.0 * out["channels"] * out["frames"] * out["stages"], coded, "codes")
    check_output_size(4.0 * out["channels"] * out["length"], coded, "samples")
    return out


def _frames(model: AudioModel, h: dict, coded: int) -> int:
    """Code frames per channel: encode() writes ceil(samples at the model rate / hop)."""
    hop = model.config.seanet.hop
    if h["frames"] is None:
        frames = -(-resampled_length(h["length"], h["sr"], model.sample_rate) // hop)
        if frames < 1:
            raise BitstreamError(f"{CODEC_ID} header: {h['length']} samples at {h['sr']} Hz make no code frame")
        check_output_size(8.0 * h["channels"] * frames * h["stages"], coded, "codes")
        return frames
    most = math.ceil((h["frames"] * hop + 1) * h["sr"] / model.sample_rate)
    if not most - h["sr"] <= h["length"] <= most:
        raise BitstreamError(f"{CODEC_ID} header field 'length' ({h['length']}) disagrees with its "
                             f"{h['frames']} code frames")
    return h["frames"]


@decode_boundary(CODEC_ID)
def decode_codes(model: AudioModel, c: Container) -> np.ndarray:
    h = _header(c)
    _check_model(model, h)
    return _decode_codes(model, c, h)


def _check_model(model: AudioModel, h: dict) -> None:
    if h["id"] != model.model_id:
        raise BitstreamError(f"this file was encoded with audio model {h['id']}; the model given is "
                             f"'{model.name}' ({model.model_id}): pass the matching --model")
    if h["context"] is not None and model.context_for(h["context"]) is None:
        has = "none" if model.context is None else f"context prior {model.context_id}"
        raise BitstreamError(f"this file was coded with context prior {h['context']} of audio model {h['id']}; "
                             f"the model given has {has}: pass the model file it was encoded with")


def _decode_codes(model: AudioModel, c: Container, h: dict) -> np.ndarray:
    """After _check_model (which hashes the whole model: once a decode)."""
    if h["stages"] > model.config.rvq.columns or h["stages"] % model.config.rvq.groups:
        raise BitstreamError(f"file uses {h['stages']} codebooks: not a depth this model has")
    data = c.section("codes")
    return _decode_streams(model, data, (h["channels"], _frames(model, h, len(data)), h["stages"]), h["prior"],
                           h["context"])


@decode_boundary(CODEC_ID)
def decode(model: AudioModel, c: Container) -> tuple[np.ndarray, int]:
    """Samples [N, C] at the original rate and length, from the file and its model."""
    h = _header(c)
    _check_model(model, h)  # before anything that depends on the model (its hop)
    codes = _decode_codes(model, c, h)
    chans = []
    for ch in range(h["channels"]):
        wav = resample(model.decode_codes(codes[ch]), model.sample_rate, h["sr"])
        wav = np.pad(wav, (0, max(0, h["length"] - len(wav))))[:h["length"]]
        chans.append(wav)
    return np.stack(chans, axis=1).astype(np.float32), h["sr"]


# ---------------------------------------------------------------------------------------
# model lookup and registry hooks


def default_model_path() -> Path:
    return Path(__file__).resolve().parent.parent / "assets" / "speech16k.npz"


def resolve_model(model: str | Path | None) -> AudioModel:
    """A model directory or .npz, or the model shipped with jaxcodec when None."""
    return AudioModel.load(default_model_path() if model is None else model)


@decode_boundary(CODEC_ID)
def describe(c: Container) -> dict[str, Any]:
    h = _header(c)
    seconds = h["length"] / h["sr"]
    return {"audio": f"{seconds:.2f} s, {h['channels']} channel(s) at {h['sr']} Hz",
            "model": f"{h['id']}, {h['stages']} codebooks, {h['prior']} prior",
            "actual kbps": round(8 * len(container.pack(c)) / seconds / 1000, 3)}


def _decode_to(c: Container, output: Path, args: argparse.Namespace) -> str:
    samples, sr = decode(resolve_model(getattr(args, "model", None)), c)
    write_audio(output, samples, sr)
    return f"wrote {samples.shape[0] / sr:.2f} s of audio to {output}"


def evaluate(c: Container, source: Path, args: argparse.Namespace | None = None) -> dict[str, Any]:
    ref, sr = read_audio(source)
    t0 = time.perf_counter()
    out, sr2 = decode(resolve_model(getattr(args, "model", None)), c)
    seconds = time.perf_counter() - t0
    if ref.shape != out.shape or sr != sr2:
        raise InputError(f"{source} is {ref.shape[1]} channel(s), {ref.shape[0]} samples at {sr} Hz; the file "
                         f"decodes to {out.shape[1]} channel(s), {out.shape[0]} samples at {sr2} Hz")
    duration = ref.shape[0] / sr
    return {**audio_metrics(ref, out, sr), "kbps": 8 * len(container.pack(c)) / duration / 1000,
            "decode_rtf": seconds / duration}


def audio_metrics(ref: np.ndarray, out: np.ndarray, sr: int) -> dict[str, float]:
    """SI-SDR and log-mel distance of [N, C] signals, averaged over channels."""
    from jaxcodec.metrics import mel_distance, si_sdr

    return {"si_sdr": float(np.mean([si_sdr(ref[:, i], out[:, i]) for i in range(ref.shape[1])])),
            "mel_distance": float(np.mean([mel_distance(ref[:, i], out[:, i], sr) for i in range(ref.shape[1])]))}


# ---------------------------------------------------------------------------------------
# command line


def _encode_command(args: argparse.Namespace, progress: Progress) -> str:
    model = resolve_model(args.model)
    samples, sr = read_audio(args.input)
    t0 = time.perf_counter()
    progress.note(f"{args.input}: {samples.shape[0] / sr:.2f} s, {samples.shape[1]} channel(s) at {sr} Hz; "
                  f"model {model.name} ({model.model_id})")
    result = encode(model, samples, sr, DEFAULT_KBPS if args.kbps is None else args.kbps, on_step=progress.step)
    size = container.write(args.output, result.container)
    seconds = time.perf_counter() - t0
    actual = 8 * size / result.duration_s / 1000
    return (f"wrote {args.output}: {size:,} bytes, {actual:.2f} kbps actual / {result.nominal_kbps:g} kbps nominal "
            f"({100 * (1 - actual / result.nominal_kbps):.1f}% saved by the {result.prior} "
            f"prior), {result.duration_s:.2f} s of audio in {seconds:.2f} s")


def _strides(text: str) -> tuple[int, ...]:
    strides = tuple(int(v) for v in text.split(","))
    if not strides or min(strides) < 1:
        raise InputError(f"--strides takes positive integers separated by commas, got {text!r}")
    return strides


def _add_train_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--sample-rate", type=cli_type(int, lo=1000), default=16000, help="model rate in Hz")
    g.add_argument("--steps", type=cli_type(int, lo=1), default=20000)
    g.add_argument("--batch-size", type=cli_type(int, lo=1), default=8)
    g.add_argument("--crop", dest="crop_seconds", type=cli_type(float, lo=0.02), default=1.0,
                   help="seconds per training example")
    g.add_argument("--lr", type=cli_type(float, lo=1e-12), default=3e-4)
    g.add_argument("--grad-clip", type=cli_type(float, lo=0), default=0.0, help="global-norm clipping (0: off)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--channels", type=cli_type(int, lo=1), default=32, help="SEANet base channels (doubling per stage)")
    g.add_argument("--latent-dim", type=cli_type(int, lo=1), default=64)
    g.add_argument("--strides", type=cli_type(_strides), default=(2, 4, 5, 8),
                   help="SEANet downsampling factors; their product is the hop (2,4,5,8: 320 samples, 50 frames/s "
                        "at 16 kHz). A WavTokenizer-style single-codebook tokenizer at 40 tokens/s: --strides 2,4,5,10 "
                        "--stages 1 --codebook-size 4096 (0.48 kbps)")
    g.add_argument("--stages", type=cli_type(int, lo=1), default=24,
                   help="RVQ codebooks (24 x 0.5 kbps = 12 kbps at 50 frames/s)")
    g.add_argument("--codebook-size", type=cli_type(int, lo=2), default=1024)
    g.add_argument("--groups", type=cli_type(int, lo=1), default=1,
                   help="group-residual VQ (HiFi-Codec): the latent split into this many groups, each with --stages "
                        "codebooks (rate x groups); must divide --latent-dim")
    g.add_argument("--code-dim", type=cli_type(int, lo=0), default=0,
                   help="DAC's factorized codes: look codes up by cosine in this many dimensions (DAC: 8; 0: off)")
    g.add_argument("--causal", action="store_true", help="causal convolutions (streaming)")
    g.add_argument("--adversarial", action="store_true", help="add a discriminator and feature matching (slow on CPU)")
    g.add_argument("--discriminator", choices=losses.DISCRIMINATORS, default="msstft",
                   help="with --adversarial: EnCodec's multi-scale STFT (msstft) or DAC's multi-period + multi-band "
                        "STFT (dac)")
    g.add_argument("--mel-scales", choices=sorted(losses.MEL_SCALES), default="two",
                   help="log-mel loss resolutions: two (512, 2048) or DAC's seven (32 to 2048 samples)")
    g.add_argument("--activation", choices=("elu", "snake"), default="elu", help="SEANet activation (snake: DAC's)")
    g.add_argument("--init", default=None, metavar="MODEL",
                   help="start from this model (folder, .npz, or 'shipped') and keep its configuration: fine-tuning "
                        "on new data; --channels, --latent-dim, --stages and --codebook-size are then ignored")
    g.add_argument("--eval-every", type=cli_type(int, lo=0), default=1000,
                   help="steps between evaluations of the held-out files, coded to real files (0: at the end)")
    g.add_argument("--checkpoint-every", type=cli_type(int, lo=0), default=1000)
    g.add_argument("--context-steps", type=cli_type(int, lo=0), default=TrainOptions.context_steps,
                   help="steps of the context prior trained after the codec (0: none; files then use the counted "
                        "priors)")


def _train_command(args: argparse.Namespace, progress: Progress) -> str:
    from jaxcodec.audio.seanet import SEANetConfig

    data = AudioFolder.load(args.data, args.sample_rate)
    progress.note(f"{args.data}: {len(data.train)} training files "
                  f"({sum(map(len, data.train)) / args.sample_rate / 60:.1f} min), {len(data.valid)} held out")
    cfg = AudioModelConfig(
        SEANetConfig(sample_rate=args.sample_rate, channels=args.channels, strides=args.strides,
                     latent_dim=args.latent_dim, causal=args.causal, activation=args.activation),
        rvq.RVQConfig(stages=args.stages, codebook_size=args.codebook_size, dim=args.latent_dim,
                      code_dim=args.code_dim, groups=args.groups),
        tuple(s for s in (3, 6, 12, 24) if s <= args.stages) or (args.stages,))
    init = resolve_model(None if args.init == "shipped" else args.init) if args.init else None
    if init is not None:
        if init.sample_rate != args.sample_rate:
            raise InputError(f"--init model runs at {init.sample_rate} Hz: pass --sample-rate {init.sample_rate}")
        cfg = init.config
    opts = options_from_args(TrainOptions, args)
    model = train(data, cfg, opts, args.output, Path(args.output).name, init=init, on_step=progress.step,
                  on_log=progress.log)
    return f"saved model {model.name} ({model.model_id}) to {Path(args.output) / 'model.npz'}"


register(CodecEntry(CODEC_ID, "audio through a SEANet + residual-VQ codec", describe, _decode_to, evaluate,
                    media="audio", encode=Command(lambda g: None, _encode_command),
                    train=Command(_add_train_args, _train_command), train_kind="audio"))
