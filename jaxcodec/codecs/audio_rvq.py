"""``audio-rvq``: a SEANet + residual-VQ neural audio codec with learned priors over codes.

A model (``AudioModel``) is trained on a folder of audio with the shared trainer; its
weights, RVQ codebooks and code prior live in one ``.npz`` file (float16 weights, no
pickle) whose content hash is the model id. Encoding resamples to the model rate,
encodes each channel in chunks with context (bounded memory), keeps the first
``stages`` codebooks for the requested bitrate, and entropy-codes the codes with the
prior. The file names its model: decoding with another model is an error, not noise.
"""

from __future__ import annotations

import functools
import hashlib
import io
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

from jaxcodec import container
from jaxcodec.audio import losses, rvq
from jaxcodec.audio.prior import CodePrior
from jaxcodec.audio.seanet import SEANetConfig, SEANetDecoder, SEANetEncoder
from jaxcodec.codecs import CodecEntry, register
from jaxcodec.container import Container
from jaxcodec.data.audio import AudioFolder, read_audio, resample, write_audio
from jaxcodec.entropy import coder
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.train import TrainConfig, Trainer

log = logging.getLogger(__name__)
CODEC_ID = "audio-rvq"
CHUNK_FRAMES = 512  # most frames coded per network call (about 10 s at 50 frames/s)
CONTEXT_FRAMES = 25  # frames of context on each side of a chunk


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
        return stages * self.rvq.bits_per_code * self.seanet.frame_rate / 1000

    def stages_for(self, kbps: float) -> int:
        stages = int(round(kbps * 1000 / (self.rvq.bits_per_code * self.seanet.frame_rate)))
        if not 1 <= stages <= self.rvq.stages:
            lo, hi = self.kbps(1), self.kbps(self.rvq.stages)
            raise InputError(f"--kbps {kbps} is outside what this model codes ({lo:g} to {hi:g} kbps)")
        return stages

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
def _encode_chunk(cfg, enc_g, enc_def, enc_leaves, codebooks, stages, wav):
    z = nnx.merge(enc_g, jax.tree_util.tree_unflatten(enc_def, enc_leaves))(wav)
    return rvq.encode_codes(cfg.rvq, codebooks, z, stages)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _decode_chunk(dec_g, dec_def, dec_leaves, codebooks, codes):
    return nnx.merge(dec_g, jax.tree_util.tree_unflatten(dec_def, dec_leaves))(rvq.decode_codes(codebooks, codes))


@dataclass
class AudioModel:
    """A trained codec: config, float16-stored weights, codebooks and code prior."""

    config: AudioModelConfig
    encoder: list[np.ndarray]
    decoder: list[np.ndarray]
    codebooks: np.ndarray
    prior: CodePrior
    name: str = "model"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_rate(self) -> int:
        return self.config.seanet.sample_rate

    @property
    def model_id(self) -> str:
        h = hashlib.sha256(json.dumps(self.config.to_json(), sort_keys=True).encode())
        for a in [*self.encoder, *self.decoder, self.codebooks]:
            h.update(np.ascontiguousarray(a, np.float16).tobytes())
        for a in self.prior.to_arrays().values():
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """One .npz file (no pickle): weights and codebooks as float16, config as JSON."""
        path = Path(path)
        if path.suffix != ".npz":
            path.mkdir(parents=True, exist_ok=True)
            path = path / "model.npz"
        meta = json.dumps({"config": self.config.to_json(), "name": self.name, "info": self.info})
        arrays = {"meta": np.frombuffer(meta.encode(), np.uint8), "codebooks": self.codebooks.astype(np.float16),
                  **{f"enc_{i:03d}": a.astype(np.float16) for i, a in enumerate(self.encoder)},
                  **{f"dec_{i:03d}": a.astype(np.float16) for i, a in enumerate(self.decoder)},
                  **self.prior.to_arrays()}
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
        return path

    @staticmethod
    def load(path: str | Path) -> AudioModel:
        path = Path(path)
        if path.is_dir():
            path = path / "model.npz"
        if not path.is_file():
            raise InputError(f"no audio model at {path} (train one with: jaxcodec train audio --data DIR -o DIR)")
        try:
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            meta = json.loads(d["meta"].tobytes().decode())
            cfg = AudioModelConfig.from_json(meta["config"])
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path} is not a jaxcodec audio model: {exc}") from None
        f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
        enc = [f32(d[k]) for k in sorted(k for k in d if k.startswith("enc_"))]
        dec = [f32(d[k]) for k in sorted(k for k in d if k.startswith("dec_"))]
        model = AudioModel(cfg, enc, dec, f32(d["codebooks"]), CodePrior.from_arrays(d), meta.get("name", path.stem),
                           meta.get("info", {}))
        model._check_shapes()
        return model

    def _check_shapes(self) -> None:
        enc_g, enc_def, dec_g, dec_def = _graphs(self.config)
        if enc_def.num_leaves != len(self.encoder) or dec_def.num_leaves != len(self.decoder):
            raise InputError("model weights do not match its config")

    # -- codes ----------------------------------------------------------------------------

    def _rounded(self):
        """Weights as the file stores them (float16), so every user computes the same."""
        r = lambda xs: [jnp.asarray(np.asarray(x, np.float16), jnp.float32) for x in xs]  # noqa: E731
        return r(self.encoder), r(self.decoder), r([self.codebooks])[0]

    def encode_codes(self, wav: np.ndarray, stages: int) -> np.ndarray:
        """Mono float samples at the model rate -> codes [frames, stages] (chunked)."""
        hop = self.config.seanet.hop
        frames = -(-len(wav) // hop)
        enc_g, enc_def, _, _ = _graphs(self.config)
        enc, _, books = self._rounded()
        chunk = _chunk_frames(frames)
        ctx, n = CONTEXT_FRAMES * hop, chunk * hop
        padded = np.zeros(ctx + frames * hop + n + ctx, np.float32)
        padded[ctx:ctx + len(wav)] = wav
        out = []
        for start in range(0, frames, chunk):
            window = padded[start * hop:start * hop + n + 2 * ctx]
            codes = _encode_chunk(self.config, enc_g, enc_def, enc, books, stages, jnp.asarray(window[None]))
            out.append(np.asarray(codes[0, CONTEXT_FRAMES:CONTEXT_FRAMES + chunk]))
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
            wav = _decode_chunk(dec_g, dec_def, dec, books, jnp.asarray(window[None]))
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
    adversarial: bool = False  # multi-scale STFT discriminator + feature matching
    weights: tuple[tuple[str, float], ...] = (("l1", 0.1), ("stft", 1.0), ("mel", 1.0), ("commit", 0.25),
                                              ("gen", 1.0), ("feat", 2.0), ("disc", 1.0))
    eval_every: int = 1000
    checkpoint_every: int = 1000
    resume: bool = False


def _make_loss(cfg: AudioModelConfig, graphs, opts: TrainOptions):
    enc_g, dec_g, disc_g = graphs
    w = dict(opts.weights)
    choices = jnp.asarray(cfg.bandwidth_stages)
    sr = cfg.seanet.sample_rate

    def loss_fn(params, state, wav, key, step):
        k_drop, k_q = jax.random.split(key)
        z = nnx.merge(enc_g, params["encoder"])(wav)
        n_active = jax.random.choice(k_drop, choices, (wav.shape[0],))  # quantizer dropout
        zq, codes, commit, state, ppl = rvq.quantize(cfg.rvq, state, z, n_active, k_q, train=True)
        y = nnx.merge(dec_g, params["decoder"])(zq)
        terms = {"l1": jnp.mean(jnp.abs(y - wav)), "stft": losses.multi_resolution_stft(wav, y),
                 "mel": losses.mel_l1(wav, y, sr), "commit": commit}
        if disc_g is not None:
            terms["gen"], terms["feat"], terms["disc"] = losses.adversarial_losses(disc_g, params["disc"], wav, y)
        loss = sum(w[k] * v for k, v in terms.items())
        metrics = dict(terms, bits_per_frame=jnp.sum(jnp.log2(ppl)),
                       **{f"ppl_{q:02d}": ppl[q] for q in range(cfg.rvq.stages)})
        return loss, (metrics, state)

    return loss_fn


def train(data: AudioFolder, cfg: AudioModelConfig, opts: TrainOptions, workdir: str | Path, name: str = "model",
          *, on_step: Callable | None = None, on_log: Callable | None = None) -> AudioModel:
    """Train a codec on a dataset folder, fit its code prior, save workdir/model.npz."""
    if data.sample_rate != cfg.seanet.sample_rate:
        raise InputError("dataset and model sample rates differ")
    workdir = Path(workdir)
    hop = cfg.seanet.hop
    crop = max(hop, int(round(opts.crop_seconds * cfg.seanet.sample_rate / hop)) * hop)
    rngs = nnx.Rngs(opts.seed)
    enc_g, enc_s = nnx.split(SEANetEncoder(cfg.seanet, rngs=rngs))
    dec_g, dec_s = nnx.split(SEANetDecoder(cfg.seanet, rngs=rngs))
    params: dict[str, Any] = {"encoder": enc_s, "decoder": dec_s}
    disc_g = None
    if opts.adversarial:
        disc_g, params["disc"] = nnx.split(losses.MultiScaleSTFTDiscriminator(rngs=rngs))
    state = rvq.init_state(cfg.rvq, jax.random.key(opts.seed))
    t0 = time.perf_counter()
    trainer = Trainer(_make_loss(cfg, (enc_g, dec_g, disc_g), opts), params,
                      TrainConfig(steps=opts.steps, lr=opts.lr, warmup=0.02, steps_per_epoch=min(opts.eval_every, 100),
                                  checkpoint_every=opts.checkpoint_every, seed=opts.seed),
                      data.sampler(opts.batch_size, crop, opts.seed), state=state, workdir=workdir,
                      on_step=on_step, on_log=on_log)
    try:
        params = trainer.run(resume=opts.resume)
        state = trainer.state
    finally:
        trainer.close()
    seconds = time.perf_counter() - t0
    leaves = lambda s: [np.asarray(x, np.float32) for x in jax.tree_util.tree_leaves(s)]  # noqa: E731
    model = AudioModel(cfg, leaves(params["encoder"]), leaves(params["decoder"]),
                       np.asarray(state["codebooks"], np.float32), CodePrior.fit(np.zeros((0, 1), np.int64), 1),
                       name, {"steps": opts.steps, "train_seconds": round(seconds, 1), "batch_size": opts.batch_size,
                              "crop_seconds": opts.crop_seconds, "adversarial": opts.adversarial,
                              "devices": jax.devices()[0].device_kind})
    model.prior = fit_prior(model, data.train)
    model.save(workdir)
    return model


def fit_prior(model: AudioModel, clips: list[np.ndarray]) -> CodePrior:
    """Counts of the codes of the training clips at the model's full depth."""
    codes = [model.encode_codes(x, model.config.rvq.stages) for x in clips if len(x) >= model.config.seanet.hop]
    return CodePrior.fit(np.concatenate(codes), model.config.rvq.codebook_size)


# ---------------------------------------------------------------------------------------
# files


def _code_streams(model: AudioModel, codes: np.ndarray, prior_kind: str) -> bytes:
    """Entropy-code codes [channels, frames, stages] with the unigram or depth prior."""
    c, t, q = codes.shape
    if prior_kind == "unigram":
        rows = np.broadcast_to(np.arange(q), codes.shape).reshape(-1)
        return coder.encode(codes.reshape(-1), model.prior.unigram_tables(q), rows)
    parts = [coder.encode(codes[..., 0].reshape(-1), model.prior.unigram_tables(1))]
    for s in range(1, q):
        ctx, inverse = np.unique(codes[..., s - 1].reshape(-1), return_inverse=True)
        parts.append(coder.encode(codes[..., s].reshape(-1), model.prior.depth_tables(s, ctx), inverse))
    return b"".join(len(p).to_bytes(4, "little") + p for p in parts)


def _decode_streams(model: AudioModel, data: bytes, shape: tuple[int, int, int], prior_kind: str) -> np.ndarray:
    c, t, q = shape
    if prior_kind == "unigram":
        rows = np.broadcast_to(np.arange(q), shape).reshape(-1)
        return coder.decode(data, model.prior.unigram_tables(q), rows, dtype=np.int64).reshape(shape)
    out = np.zeros(shape, np.int64)
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
    nominal_kbps: float
    duration_s: float


def encode(model: AudioModel, samples: np.ndarray, sample_rate: int, kbps: float = 6.0) -> EncodedAudio:
    """Samples [N, C] at any rate -> a .jxc container (both priors tried, the smaller kept)."""
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise InputError("audio must be [samples, channels] with at least one sample")
    stages = model.config.stages_for(kbps)
    codes = np.stack([model.encode_codes(resample(samples[:, ch], sample_rate, model.sample_rate), stages)
                      for ch in range(samples.shape[1])])
    streams = {kind: _code_streams(model, codes, kind) for kind in ("unigram", "depth")}
    kind = min(streams, key=lambda k: len(streams[k]))
    # Short prompts are a few kB: keep the header lean (model name and rate come with the model).
    header = {"model": model.model_id, "sample_rate": sample_rate, "channels": int(samples.shape[1]),
              "length": int(samples.shape[0]), "stages": stages, "frames": int(codes.shape[1]), "prior": kind}
    duration = samples.shape[0] / sample_rate
    return EncodedAudio(Container(CODEC_ID, header, {"codes": streams[kind]}), codes, model.config.kbps(stages), duration)


def _header(c: Container) -> dict:
    if c.codec != CODEC_ID:
        raise BitstreamError(f"this is a '{c.codec}' file, not {CODEC_ID} audio")
    h = c.header
    try:
        out = {"id": str(h["model"]), "sr": int(h["sample_rate"]), "channels": int(h["channels"]),
               "length": int(h["length"]), "stages": int(h["stages"]), "frames": int(h["frames"]),
               "prior": str(h["prior"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise BitstreamError(f"audio-rvq header is invalid: {exc}") from None
    if out["prior"] not in ("unigram", "depth") or min(out["sr"], out["channels"], out["stages"], out["length"]) < 1:
        raise BitstreamError("audio-rvq header is invalid")
    return out


def decode_codes(model: AudioModel, c: Container) -> np.ndarray:
    h = _header(c)
    if h["id"] != model.model_id:
        raise BitstreamError(f"this file was encoded with audio model {h['id']}; the model given is "
                             f"'{model.name}' ({model.model_id}): pass the matching --model")
    if h["stages"] > model.config.rvq.stages:
        raise BitstreamError("file uses more codebooks than the model has")
    return _decode_streams(model, c.section("codes"), (h["channels"], h["frames"], h["stages"]), h["prior"])


def decode(model: AudioModel, c: Container) -> tuple[np.ndarray, int]:
    """Samples [N, C] at the original rate and length, from the file and its model."""
    h = _header(c)
    codes = decode_codes(model, c)
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


def describe(c: Container) -> dict[str, Any]:
    h = _header(c)
    seconds = h["length"] / h["sr"]
    return {"audio": f"{seconds:.2f} s, {h['channels']} channel(s) at {h['sr']} Hz",
            "model": f"{h['id']}, {h['stages']} codebooks, {h['prior']} prior",
            "actual kbps": round(8 * len(container.pack(c)) / seconds / 1000, 3)}


def _decode_to(c: Container, output: Path, model: str | None = None, **_: Any) -> str:
    samples, sr = decode(resolve_model(model), c)
    write_audio(output, samples, sr)
    return f"wrote {samples.shape[0] / sr:.2f} s of audio to {output}"


def evaluate(c: Container, source: Path, model: str | None = None) -> dict[str, Any]:
    from jaxcodec.metrics import mel_distance, si_sdr

    ref, sr = read_audio(source)
    t0 = time.perf_counter()
    out, sr2 = decode(resolve_model(model), c)
    seconds = time.perf_counter() - t0
    if ref.shape != out.shape or sr != sr2:
        raise InputError(f"{source} is {ref.shape[1]} channel(s), {ref.shape[0]} samples at {sr} Hz; the file "
                         f"decodes to {out.shape[1]} channel(s), {out.shape[0]} samples at {sr2} Hz")
    duration = ref.shape[0] / sr
    return {"si_sdr": float(np.mean([si_sdr(ref[:, i], out[:, i]) for i in range(ref.shape[1])])),
            "mel_distance": float(np.mean([mel_distance(ref[:, i], out[:, i], sr) for i in range(ref.shape[1])])),
            "kbps": 8 * len(container.pack(c)) / duration / 1000, "decode_rtf": seconds / duration}


register(CodecEntry(CODEC_ID, "audio through a SEANet + residual-VQ codec", describe, _decode_to, evaluate))
