"""Residual vector quantization with EMA codebooks (SoundStream / EnCodec), as pure functions.

Codebooks are not trained by gradients: they are running means (EMA, decay 0.99) of the
vectors assigned to them, kept in a ``state`` dict the trainer carries beside the
parameters. The first training batch initializes every stage by k-means on that stage's
residuals; codes whose EMA usage falls below ``dead_threshold`` are restarted from random
residuals of the current batch. Quantizer dropout: each batch element uses only its first
``n_active`` stages, so one model serves every bitrate.

The commitment loss pulls each stage's residual ``x - sum(earlier codes)`` (earlier codes
held constant) towards its code, so the encoder gets the gradient of every stage, not only
the first (a known slip in EnCodec's implementation).

``code_dim > 0`` gives DAC's factorized codes: each stage projects its residual to
``code_dim`` dimensions, L2-normalizes it, picks the code of highest cosine among unit
codes (EMA-tracked, renormalized), and projects the code back up; the projections
(``proj``: ``w_in`` [stages, dim, code_dim], ``w_out`` [stages, code_dim, dim]) are trained
by gradients. A low-dimensional, normalized lookup keeps codebooks evenly used. Decoding
needs only the projected codes (``effective_codebooks``), so it is the same in both modes.

``groups > 1`` is HiFi-Codec's group-residual VQ: the latent's channels split into groups,
each quantized by its own residual stack. Codebooks and codes are laid out level-major:
row or column ``level * groups + g``, so the first n levels are the first n * groups.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.audio import config_json


@dataclass(frozen=True)
class RVQConfig:
    stages: int = 24
    codebook_size: int = 1024
    dim: int = 64
    decay: float = 0.99
    dead_threshold: float = 2.0  # a code is restarted below this EMA usage per batch...
    dead_fraction: float = 0.02  # ...or below this fraction of its stage's mean usage, if lower
    kmeans_iters: int = 10
    epsilon: float = 1e-5
    code_dim: int = 0  # > 0: DAC's factorized, L2-normalized lookup in this many dimensions
    groups: int = 1  # > 1: group-residual VQ (HiFi-Codec), dim split into this many groups

    def __post_init__(self) -> None:
        if self.groups < 1 or self.dim % self.groups:
            raise ValueError(f"groups ({self.groups}) must divide the latent dimension ({self.dim})")
        if self.groups > 1 and self.code_dim:
            raise ValueError("group-residual VQ and factorized codes are not combined")

    @property
    def lookup_dim(self) -> int:
        return self.code_dim or self.dim // self.groups

    @property
    def columns(self) -> int:
        """Codes per frame at full depth."""
        return self.stages * self.groups

    def group(self) -> RVQConfig:
        """The configuration of one group's residual stack."""
        return replace(self, dim=self.dim // self.groups, groups=1)

    @property
    def bits_per_code(self) -> float:
        return float(np.log2(self.codebook_size))

    def to_json(self) -> dict:
        return config_json(self, ("dead_fraction", "code_dim", "groups"))

    @staticmethod
    def from_json(d: dict) -> RVQConfig:
        return RVQConfig(**d)


def init_state(cfg: RVQConfig, key: jax.Array) -> dict[str, jax.Array]:
    codebooks = jax.random.normal(key, (cfg.columns, cfg.codebook_size, cfg.lookup_dim)) * 0.1
    if cfg.code_dim:
        codebooks = l2_normalize(codebooks)
    return {"codebooks": codebooks, "cluster_size": jnp.ones((cfg.columns, cfg.codebook_size)),
            "embed_sum": jnp.array(codebooks, copy=True), "initialized": jnp.array(False)}


def init_projections(cfg: RVQConfig, key: jax.Array) -> dict[str, jax.Array]:
    """The factorized lookup's trained projections (``code_dim > 0``)."""
    k_in, k_out = jax.random.split(key)
    d, c = cfg.dim, cfg.code_dim
    return {"w_in": jax.random.normal(k_in, (cfg.stages, d, c)) / np.sqrt(d),
            "w_out": jax.random.normal(k_out, (cfg.stages, c, d)) / np.sqrt(c)}


def l2_normalize(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def effective_codebooks(codebooks: jax.Array, proj: dict[str, jax.Array] | None) -> jax.Array:
    """The vectors each code adds to the latent [stages, K, dim]: the codebooks themselves,
    or the unit codes projected up by ``w_out``."""
    return codebooks if proj is None else jnp.einsum("skc,scd->skd", codebooks, proj["w_out"])


def state_from_codebooks(codebooks: np.ndarray) -> dict[str, jax.Array]:
    """Training state that resumes from trained codebooks (fine-tuning): equal usage, no k-means."""
    books = jnp.asarray(codebooks, jnp.float32)
    size = jnp.ones(books.shape[:2])
    return {"codebooks": books, "cluster_size": size, "embed_sum": books * size[..., None],
            "initialized": jnp.array(True)}


def nearest(x: jax.Array, codebook: jax.Array) -> jax.Array:
    """Index of the nearest code for each row of x [M, D]."""
    d = jnp.sum(x * x, axis=1, keepdims=True) - 2 * x @ codebook.T + jnp.sum(codebook * codebook, axis=1)[None]
    return jnp.argmin(d, axis=1)


def _kmeans(x: jax.Array, k: int, iters: int, key: jax.Array) -> jax.Array:
    """Lloyd's k-means on rows of x [M, D] (M may be < k: samples with replacement)."""
    idx = jax.random.choice(key, x.shape[0], (k,), replace=x.shape[0] < k)
    centers = x[idx] + 1e-3 * jax.random.normal(key, (k, x.shape[1]))

    def step(c, _):
        a = jax.nn.one_hot(nearest(x, c), k, dtype=x.dtype)
        counts = a.sum(0)
        means = (a.T @ x) / jnp.maximum(counts, 1.0)[:, None]
        return jnp.where(counts[:, None] > 0, means, c), None

    return jax.lax.scan(step, centers, None, length=iters)[0]


def quantize(cfg: RVQConfig, state: dict[str, jax.Array], x: jax.Array, n_active: jax.Array,
             key: jax.Array | None = None, train: bool = False, proj: dict[str, jax.Array] | None = None):
    """Quantize x [B, T, D] with the first n_active[b] stages for element b (``proj``: the
    factorized lookup's projections, when ``cfg.code_dim > 0``).

    Returns (straight-through quantized x, codes [B, T, stages] (-1 where inactive),
    commitment loss, new state, per-stage perplexity [stages]); with groups, codes and
    perplexities have ``stages * groups`` columns, level-major.
    """
    if cfg.groups > 1:
        return _quantize_groups(cfg, state, x, n_active, key, train)
    b, t, d = x.shape
    flat = x.reshape(b * t, d)
    active = (jnp.arange(cfg.stages)[None, :] < n_active[:, None])  # [B, stages]
    active_rows = jnp.repeat(active, t, axis=0)  # [B*T, stages]
    keys = jax.random.split(key if key is not None else jax.random.key(0), 3 * cfg.stages).reshape(cfg.stages, 3)
    codebooks = state["codebooks"]
    factorized = cfg.code_dim > 0
    if factorized and proj is None:
        raise ValueError("code_dim > 0 needs the lookup projections (proj)")

    def lookup_input(res, q):  # what stage q compares with its codes
        return l2_normalize(res @ proj["w_in"][q]) if factorized else res

    def added(code_vectors, q):  # what a chosen code adds to the latent
        return code_vectors @ proj["w_out"][q] if factorized else code_vectors

    if train:  # k-means on the very first batch, stage by stage
        def init(cbs):
            res = jax.lax.stop_gradient(flat)
            out = []
            for q in range(cfg.stages):
                u = jax.lax.stop_gradient(lookup_input(res, q))
                c = _kmeans(u, cfg.codebook_size, cfg.kmeans_iters, keys[q, 0])
                c = l2_normalize(c) if factorized else c
                out.append(c)
                res = res - jax.lax.stop_gradient(added(c[nearest(u, c)], q))
            return jnp.stack(out)

        codebooks = jax.lax.cond(state["initialized"], lambda c: c, init, codebooks)
    residual = flat
    quantized = jnp.zeros_like(flat)
    commit = 0.0
    codes, cluster_sizes, embed_sums, perplexity, inputs = [], [], [], [], []
    for q in range(cfg.stages):
        c = codebooks[q]
        mask = active_rows[:, q:q + 1].astype(x.dtype)
        if factorized:
            # cosine lookup; the straight-through code keeps gradients for w_in and w_out
            u = lookup_input(jax.lax.stop_gradient(residual), q)
            stage_input = jax.lax.stop_gradient(u)
            idx = nearest(stage_input, c)  # unit vectors: nearest = highest cosine
            commit = commit + jnp.sum(mask * jnp.square(u - c[idx])) / jnp.maximum(mask.sum() * cfg.code_dim, 1.0)
            chosen = added(u + jax.lax.stop_gradient(c[idx] - u), q)
        else:
            stage_input = jax.lax.stop_gradient(residual)
            idx = nearest(stage_input, c)
            chosen = c[idx]
            commit = commit + jnp.sum(mask * jnp.square(residual - jax.lax.stop_gradient(chosen))) / \
                jnp.maximum(mask.sum() * d, 1.0)
        quantized = quantized + mask * chosen
        residual = residual - mask * jax.lax.stop_gradient(chosen)
        codes.append(jnp.where(active_rows[:, q], idx, -1))
        onehot = jax.nn.one_hot(idx, cfg.codebook_size, dtype=x.dtype) * mask
        counts = onehot.sum(0)
        p = counts / jnp.maximum(counts.sum(), 1.0)
        perplexity.append(jnp.exp(-jnp.sum(p * jnp.log(jnp.maximum(p, 1e-10)))))
        if train:
            cluster_sizes.append(counts)
            embed_sums.append(onehot.T @ stage_input)
            inputs.append(stage_input)
    quantized = quantized.reshape(b, t, d)
    if factorized:  # the value of the codes; gradients to the encoder (straight through) and to the projections
        out = jax.lax.stop_gradient(quantized) + (x - jax.lax.stop_gradient(x)) + \
            (quantized - jax.lax.stop_gradient(quantized))
    else:
        out = x + jax.lax.stop_gradient(quantized - x)
    codes = jnp.stack(codes, axis=-1).reshape(b, t, cfg.stages)
    new_state = state
    if train:
        new_state = _ema_update(cfg, state, codebooks, jnp.stack(cluster_sizes), jnp.stack(embed_sums),
                                jnp.stack(inputs), active_rows, keys[:, 1])
    return out, codes, commit / cfg.stages, new_state, jnp.stack(perplexity)


def _by_group(a: jax.Array, groups: int) -> jax.Array:
    """Level-major rows [levels * groups, ...] -> [groups, levels, ...]."""
    return a.reshape(a.shape[0] // groups, groups, *a.shape[1:]).swapaxes(0, 1)


def _level_major(a: jax.Array) -> jax.Array:
    """[groups, levels, ...] -> [levels * groups, ...]."""
    return a.swapaxes(0, 1).reshape(a.shape[0] * a.shape[1], *a.shape[2:])


def _quantize_groups(cfg, state, x, n_active, key, train):
    """Each group's stack in turn (a Python loop, not vmap: under vmap the k-means branch
    of the first batch's `cond` would run at every step)."""
    g, (b, t, d) = cfg.groups, x.shape
    sub = cfg.group()
    keys = jax.random.split(key if key is not None else jax.random.key(0), g)
    states = {k: (v if k == "initialized" else _by_group(v, g)) for k, v in state.items()}
    results = [quantize(sub, {k: (v if k == "initialized" else v[i]) for k, v in states.items()},
                        x[..., i * (d // g):(i + 1) * (d // g)], n_active, keys[i], train) for i in range(g)]
    out, codes, commit, news, ppl = zip(*results)
    new = {k: (news[0][k] if k == "initialized" else _level_major(jnp.stack([n[k] for n in news])))
           for k in state}
    codes = jnp.stack(codes, axis=-1).reshape(b, t, cfg.columns)  # [B, T, levels, groups] -> level-major
    return jnp.concatenate(out, axis=-1), codes, sum(commit) / g, new, _level_major(jnp.stack(ppl))


def _ema_update(cfg, state, codebooks, counts, sums, inputs, active_rows, keys):
    """EMA of usage and sums; inputs [stages, M, D] are what each stage quantized."""
    fresh = ~state["initialized"]
    size = jnp.where(fresh, counts, cfg.decay * state["cluster_size"] + (1 - cfg.decay) * counts)
    embed = jnp.where(fresh, sums, cfg.decay * state["embed_sum"] + (1 - cfg.decay) * sums)
    total = size.sum(axis=1, keepdims=True)
    smoothed = (size + cfg.epsilon) / (total + cfg.codebook_size * cfg.epsilon) * total
    new_books = jnp.where(fresh[..., None, None] & (counts[..., None] == 0), codebooks,
                          embed / smoothed[..., None])
    if cfg.code_dim:
        new_books = l2_normalize(new_books)
    # Dead-code restart: replace rarely used codes with vectors this stage saw in this batch
    # (rows of elements whose dropout left the stage inactive have weight 0 in the pick).
    # The threshold is relative when batches are small: with fewer rows per batch than
    # codes (16 x 50 frames for 1024 codes) an absolute 2 would restart nearly every code
    # at every step, and a stage that dropout leaves idle would lose its whole codebook.
    mean_size = size.mean(axis=1, keepdims=True)
    dead = size < jnp.minimum(cfg.dead_threshold, cfg.dead_fraction * mean_size)
    weights = active_rows.T.astype(jnp.float32)  # [stages, M]

    def pick(k, w):
        return jax.random.choice(k, w.shape[0], (cfg.codebook_size,), p=w / jnp.maximum(w.sum(), 1.0))

    picks = jax.vmap(pick)(keys, weights)
    samples = jnp.take_along_axis(inputs, picks[..., None], axis=1)  # [stages, K, D]
    new_books = jnp.where(dead[..., None], samples, new_books)
    fresh_size = jnp.broadcast_to(mean_size, size.shape)  # a restarted code gets the mean usage as grace
    size = jnp.where(dead, fresh_size, size)
    embed = jnp.where(dead[..., None], samples * fresh_size[..., None], embed)
    return {"codebooks": new_books, "cluster_size": size, "embed_sum": embed, "initialized": jnp.array(True)}


def encode_codes(cfg: RVQConfig, codebooks: jax.Array, x: jax.Array, n_q: int,
                 lookup: dict[str, jax.Array] | None = None) -> jax.Array:
    """Inference: codes [B, T, n_q] of x [B, T, D] with the first n_q stages. `codebooks`
    are the effective ones; `lookup` ({"w_in", "codes"}: unit codes) for factorized codes.
    With groups: codes [B, T, n_q * groups], level-major."""
    b, t, d = x.shape
    if cfg.groups > 1:
        g = cfg.groups
        xs = jnp.moveaxis(x.reshape(b, t, g, d // g), 2, 0)
        codes = jax.vmap(lambda books, xg: encode_codes(cfg.group(), books, xg, n_q))(
            _by_group(codebooks, g), xs)
        return jnp.moveaxis(codes, 0, -1).reshape(b, t, n_q * g)
    res = x.reshape(b * t, d)
    out = []
    for q in range(n_q):
        if lookup is None:
            idx = nearest(res, codebooks[q])
        else:
            idx = jnp.argmax(l2_normalize(res @ lookup["w_in"][q]) @ lookup["codes"][q].T, axis=1)
        res = res - codebooks[q][idx]
        out.append(idx)
    return jnp.stack(out, -1).reshape(b, t, n_q)


def decode_codes(codebooks: jax.Array, codes: jax.Array, groups: int = 1) -> jax.Array:
    """Sum of the chosen codes: [B, T, n_q * groups] -> [B, T, D] (each group's sum fills
    its slice of the latent's channels)."""
    n = codes.shape[-1]
    return jnp.concatenate([sum(codebooks[q][codes[..., q]] for q in range(g, n, groups)) for g in range(groups)],
                           axis=-1)
