"""A context prior over RVQ codes: each codebook's code predicted by a small network from
the codes the lower codebooks chose around it in time.

Codebook s of frame t sees the codes of codebook s-1 at frames t-2..t+2, of s-2 at
t-1..t+1 and of s-3 at t (``SLOTS``), as learned embeddings, plus an embedding of s
itself. Only lower codebooks feed the context, at any frame, so a file still decodes one
codebook at a time with every frame at once (no per-symbol loop); codebook 0 keeps the
counted unigram of ``CodePrior``. (Feeding also the latent that codebooks 0..s-1 rebuild
at t-2..t+2 did not lower the bits on held-out speakers: 21.8% against 21.9% saved
after 1000 steps.)

With ``time_levels`` L > 0 a codebook also sees its own codes (``own_slots``): it is
coded in L + 1 passes over the frames of a dyadic hierarchy (``pass_rank``: with L = 2,
frames t = 0 mod 4, then 2 mod 4, then the odd ones), and a frame sees its own codebook
only at frames of earlier passes (an odd frame at t-1, t+1; a frame 2 mod 4 at t-2, t+2).
Codebook 0 is then coded by the network too. Still a few vectorized passes a codebook,
and most frames get the strongest context there is, their own codebook's neighbours.

The network is an integer network (``jaxcodec.entropy.intnet``): int8 embeddings and
weights, quantized activations, exact float64 sums, and ``detmath.exp`` for the softmax,
so encoder and decoder build bit-identical tables on any machine. Training runs the same
layers in float32 with straight-through rounding, so its bits are the coder's bits up to
the tables' 16-bit quantization.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.entropy import detmath, intnet
from jaxcodec.entropy.models import Categorical
from jaxcodec.entropy.tables import CodingTables

# (codebooks below, frame offset) of each context slot
SLOTS: tuple[tuple[int, int], ...] = ((1, -2), (1, -1), (1, 0), (1, 1), (1, 2), (2, -1), (2, 0), (2, 1), (3, 0))
EMBED_SCALE = 16.0  # a float embedding parameter e stores as the integer round(16 e)
EMBED_MAX = 127
CATEGORICAL = Categorical()  # training's bits from logits, coding's tables from the exact softmax
STREAM_SYMBOLS = 16384  # codes per coded stream at most: bounds the per-symbol tables of long files


def own_slots(time_levels: int) -> tuple[tuple[int, int], ...]:
    """Slots on a codebook's own codes (0 below) for `time_levels` dyadic levels: t +- 1, 2, 4, ..."""
    return tuple((0, sign * (1 << k)) for k in range(time_levels) for sign in (-1, 1))


def pass_rank(t, time_levels: int, xp=np):
    """The pass (0..time_levels) frame t is coded in: t = 0 mod 2^L first, odd frames last."""
    m = t % (1 << time_levels)
    rank = xp.full_like(m, time_levels)
    for k in range(1, time_levels + 1):
        rank = xp.where(m % (1 << k) == 0, time_levels - k, rank)
    return rank


@dataclass(frozen=True)
class ContextConfig:
    columns: int  # codebooks coded (levels x groups)
    codebook_size: int
    embed: int = 16
    hidden: int = 64
    slots: tuple[tuple[int, int], ...] = SLOTS
    time_levels: int = 0  # dyadic passes over the frames (0: no own-codebook slots, codebook 0 by its unigram)

    def __post_init__(self) -> None:
        if any(back < 0 or (back == 0 and offset == 0) for back, offset in self.slots) or \
                not 0 <= self.time_levels <= 8:
            raise ValueError("a context slot reads a lower codebook or its own at another frame; "
                             "time_levels in [0, 8]")
        if (self.time_levels > 0) != any(back == 0 for back, _ in self.slots):
            raise ValueError("slots on a codebook's own codes need time_levels > 0, and time_levels > 0 "
                             "needs such slots")

    @property
    def first(self) -> int:
        """The first codebook the network codes (codebook 0 needs the own-codebook passes)."""
        return 0 if self.time_levels else 1

    def passes(self, frames: int, columns: int) -> list[tuple[int, np.ndarray]]:
        """(codebook, frame indexes) in coding order for a block of `frames` x `columns`
        codes: each pass's tables come from the codes of the passes before it."""
        t = np.arange(frames)
        if not self.time_levels:
            return [(s, t) for s in range(1, columns)]
        rank = pass_rank(t, self.time_levels)
        return [(s, t[rank == r]) for s in range(columns) for r in range(self.time_levels + 1) if np.any(rank == r)]

    @property
    def reach(self) -> int:
        return max(abs(o) for _, o in self.slots)

    def layers(self) -> dict[str, intnet.IntLayer]:
        cin = (len(self.slots) + 1) * self.embed
        return {"l1": intnet.IntLayer(cin, self.hidden, symbols=True),
                "l2": intnet.IntLayer(self.hidden, self.hidden),
                "out": intnet.IntLayer(self.hidden, self.codebook_size, relu=False)}


def init_params(cfg: ContextConfig, key: jax.Array, start: ContextPrior | None = None) -> dict[str, Any]:
    """Fresh parameters, or those of `start` (a prior of the same codebooks and widths)
    carried over: its slots' weights where `cfg` has the same slots, new slots at zero, so
    training begins where `start` stands."""
    k = jax.random.split(key, 5)
    layers = cfg.layers()
    out = jax.vmap(layers["out"].init)(jax.random.split(k[3], cfg.columns - cfg.first))
    out["w"] = out["w"] * 0.1  # start near the uniform prior
    params = {"emb": jax.random.normal(k[0], (cfg.columns, cfg.codebook_size + 1, cfg.embed)),
              "col": jax.random.normal(k[1], (cfg.columns, cfg.embed)),
              "l1": layers["l1"].init(k[2]), "l2": layers["l2"].init(k[4]), "out": out}
    if start is None:
        return params
    old = start.config
    if (old.columns, old.codebook_size, old.embed, old.hidden) != (cfg.columns, cfg.codebook_size, cfg.embed,
                                                                   cfg.hidden):
        raise ValueError("a context prior can only start from one of the same codebooks and widths")
    f = start.float_params()
    rows = lambda slots: [(i, j) for i, a in enumerate(slots) for j, b in enumerate(old.slots) if a == b]  # noqa: E731
    e = cfg.embed
    w1 = np.zeros(np.shape(params["l1"]["w"]), np.float32)
    for i, j in rows(cfg.slots) + [(len(cfg.slots), len(old.slots))]:  # the codebook embedding last
        w1[..., i * e:(i + 1) * e, :] = f["l1"]["w"][..., j * e:(j + 1) * e, :]
    out = {n: np.asarray(v).copy() for n, v in params["out"].items()}
    a = max(old.first, cfg.first)  # the first column both have an output layer for
    for n in out:
        out[n][a - cfg.first:] = f["out"][n][a - old.first:]
    return {"emb": f["emb"], "col": f["col"], "l1": {"w": w1, "b": f["l1"]["b"]}, "l2": f["l2"], "out": out}


def _embed_ints(e: jax.Array) -> jax.Array:
    x = jnp.clip(EMBED_SCALE * e, -EMBED_MAX, EMBED_MAX)
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def context_codes(cfg: ContextConfig, window: np.ndarray | jax.Array, phase=None, xp=np):
    """Windows [..., 2 * reach + 1, columns] of codes (codebook_size where there is no
    frame) -> each slot's (codebook, code) for columns first.. of the middle frame:
    two arrays [..., columns - first, slots]. `phase` [...] (time_levels > 0): the middle
    frame's index mod 2^time_levels, which says which of its own codebook's codes are known."""
    mid = cfg.reach
    cols = xp.arange(cfg.first, cfg.columns)
    books, codes = [], []
    for back, offset in cfg.slots:
        book = cols - back
        code = xp.take(window[..., mid + offset, :], xp.maximum(book, 0), axis=-1)
        known = book >= 0
        if back == 0:  # known where coded in an earlier pass
            here = xp.asarray(phase)
            earlier = pass_rank(here + offset, cfg.time_levels, xp) < pass_rank(here, cfg.time_levels, xp)
            known = known & earlier[..., None]
        codes.append(xp.where(known, code, cfg.codebook_size))
        books.append(xp.broadcast_to(xp.maximum(book, 0), code.shape))
    return xp.stack(books, -1), xp.stack(codes, -1)


def logits(cfg: ContextConfig, params: dict[str, Any], window: jax.Array, phase: jax.Array | None = None
           ) -> jax.Array:
    """Training forward: windows [B, 2 * reach + 1, columns] -> logits [B, columns - first, K]
    of columns first.. of the middle frame, computed as the integers will be."""
    layers = cfg.layers()
    books, codes = context_codes(cfg, window, phase, jnp)
    emb = _embed_ints(params["emb"])[books, codes]  # [B, C-first, slots, E]
    col = jnp.broadcast_to(_embed_ints(params["col"])[cfg.first:], emb.shape[:2] + (cfg.embed,))
    x = jnp.concatenate([emb.reshape(*emb.shape[:2], -1), col], -1)
    h = intnet.apply(layers["l2"], params["l2"], intnet.apply(layers["l1"], params["l1"], x[None]))[0]
    h = jnp.swapaxes(h, 0, 1)[:, None, None]  # [C-first, 1, 1, B, H]: one output layer per column
    y = jax.vmap(lambda p, v: intnet.apply(layers["out"], p, v))(params["out"], h)
    return jnp.swapaxes(y[:, 0, 0], 0, 1)


def bits(cfg: ContextConfig, params: dict[str, Any], window: jax.Array, phase: jax.Array | None = None
         ) -> jax.Array:
    """Bits [B, columns - first] of the middle frame's codes first.. (training's rate
    term); with time_levels > 0, `phase` [B] is each middle frame's index mod 2^time_levels."""
    mid = window[:, cfg.reach, cfg.first:]
    return CATEGORICAL.bits(logits(cfg, params, window, phase), mid)


@dataclass
class ContextPrior:
    """The exported integer network (see the module docstring)."""

    config: ContextConfig
    emb: np.ndarray  # int8 [columns, K + 1, E]
    col: np.ndarray  # int8 [columns, E]
    layers: dict[str, dict[str, np.ndarray]]  # intnet.export of l1, l2; out stacked per column

    @staticmethod
    def export(cfg: ContextConfig, params: dict[str, Any]) -> ContextPrior:
        ints = lambda e: np.clip(np.round(EMBED_SCALE * np.asarray(e, np.float32)),  # noqa: E731
                                 -EMBED_MAX, EMBED_MAX).astype(np.int8)
        out = [intnet.export({k: np.asarray(v[s]) for k, v in params["out"].items()})
               for s in range(cfg.columns - cfg.first)]
        layers = {k: intnet.export({n: np.asarray(v) for n, v in params[k].items()}) for k in ("l1", "l2")}
        layers["out"] = {k: np.stack([o[k] for o in out]) for k in ("w", "s", "b")}
        return ContextPrior(cfg, ints(params["emb"]), ints(params["col"]), layers)

    def float_params(self) -> dict[str, Any]:
        """Float parameters that export back to exactly these integers (to train on from)."""
        f = lambda q: {"w": q["w"].astype(np.float32) * q["s"], "b": q["b"].astype(np.float32)}  # noqa: E731
        out = self.layers["out"]
        return {"emb": self.emb.astype(np.float32) / EMBED_SCALE, "col": self.col.astype(np.float32) / EMBED_SCALE,
                "l1": f(self.layers["l1"]), "l2": f(self.layers["l2"]),
                "out": {"w": out["w"].astype(np.float32) * out["s"][:, None, None, None, :],
                        "b": out["b"].astype(np.float32)}}

    def logits_exact(self, codes: np.ndarray, column: int, frames: np.ndarray) -> np.ndarray:
        """Logits float64 [n, K] of `column` at `frames` (indexes) of one channel, from the
        codes known before that pass (``ContextConfig.passes``), codes [T, > column]:
        the same bits on every machine."""
        cfg = self.config
        t = np.asarray(frames, np.int64)
        reach = cfg.reach
        window = np.full((len(t), 2 * reach + 1, cfg.columns), cfg.codebook_size, np.int64)
        src = t[:, None] + np.arange(-reach, reach + 1)[None, :]
        inside = (src >= 0) & (src < codes.shape[0])
        window[..., :column + 1] = np.where(inside[..., None], codes[np.clip(src, 0, codes.shape[0] - 1), :column + 1],
                                            cfg.codebook_size)
        books, codes = (a[:, column - cfg.first] for a in context_codes(cfg, window, t % (1 << cfg.time_levels)))
        x = np.concatenate([self.emb[books, codes].reshape(len(t), -1),
                            np.broadcast_to(self.col[column], (len(t), cfg.embed))], -1).astype(np.float64)
        layers = cfg.layers()
        h = intnet.apply_exact(layers["l2"], self.layers["l2"],
                               intnet.apply_exact(layers["l1"], self.layers["l1"], x[None]))
        out = {n: v[column - cfg.first] for n, v in self.layers["out"].items()}
        return intnet.apply_exact(layers["out"], out, h)[0]

    def tables(self, codes: np.ndarray, column: int, frames: np.ndarray) -> CodingTables:
        """One table per frame of `frames` for `column` (>= first) of one channel."""
        y = self.logits_exact(codes, column, frames)
        return CATEGORICAL.tables(detmath.exp(y - y.max(axis=1, keepdims=True)))

    def to_arrays(self, prefix: str = "context") -> dict[str, np.ndarray]:
        lv = self.config.time_levels  # stored from 2 on (1 follows from the slots)
        levels = {} if lv in (0, 1) else {f"{prefix}_levels": np.asarray(lv)}
        return {**levels, f"{prefix}_slots": np.asarray(self.config.slots, np.int64), f"{prefix}_emb": self.emb,
                f"{prefix}_col": self.col,
                **{f"{prefix}_{k}_{n}": v for k, layer in self.layers.items() for n, v in layer.items()}}

    @functools.cached_property
    def _digest(self) -> str:
        h = hashlib.sha256()
        arrays = self.to_arrays()
        for k in sorted(arrays):
            h.update(k.encode() + np.ascontiguousarray(arrays[k]).tobytes())
        return h.hexdigest()

    def content_id(self, chars: int) -> str:
        """Hash of the stored arrays (under their usual names, wherever a model file keeps
        them), computed once: encode names it in every file, decode looks priors up by it."""
        return self._digest[:chars]

    @staticmethod
    def from_arrays(d: dict[str, np.ndarray], prefix: str = "context") -> ContextPrior | None:
        """The prior stored in a model file under `prefix`, or None for a model without one."""
        if f"{prefix}_emb" not in d:
            return None
        emb = np.asarray(d[f"{prefix}_emb"], np.int8)
        slots = tuple((int(a), int(b)) for a, b in np.asarray(d[f"{prefix}_slots"]).reshape(-1, 2))
        w1 = np.asarray(d[f"{prefix}_l1_w"])
        levels = int(d[f"{prefix}_levels"]) if f"{prefix}_levels" in d else int(any(b == 0 for b, _ in slots))
        cfg = ContextConfig(emb.shape[0], emb.shape[1] - 1, emb.shape[2], w1.shape[-1], slots, levels)
        layers = {k: {n: np.asarray(d[f"{prefix}_{k}_{n}"]) for n in ("w", "s", "b")} for k in ("l1", "l2", "out")}
        expect = {"l1": (1, 1, cfg.layers()["l1"].cin, cfg.hidden), "l2": (1, 1, cfg.hidden, cfg.hidden),
                  "out": (cfg.columns - cfg.first, 1, 1, cfg.hidden, cfg.codebook_size)}
        if any(layers[k]["w"].shape != s for k, s in expect.items()) or np.asarray(d[f"{prefix}_col"]).shape != \
                (cfg.columns, cfg.embed):
            raise ValueError("context prior arrays do not fit together")
        return ContextPrior(cfg, emb, np.asarray(d[f"{prefix}_col"], np.int8), layers)


def windows(codes: list[np.ndarray], reach: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Clips' codes [T, columns] joined with `reach` pad frames around each, and the row
    of every real frame: a training window is rows[i] - reach .. rows[i] + reach."""
    columns = codes[0].shape[1]
    gap = np.full((reach, columns), pad, np.int32)
    joined, rows, at = [gap], [], reach
    for c in codes:
        joined += [np.asarray(c, np.int32), gap]
        rows.append(np.arange(at, at + len(c)))
        at += len(c) + reach
    return np.concatenate(joined), np.concatenate(rows)


def sampler(codes: list[np.ndarray], cfg: ContextConfig, batch: int, seed: int) -> Callable[[int], np.ndarray]:
    """Batches of random frames' windows [batch, 2 * reach + 1, columns] (step-seeded)."""
    joined, rows = windows(codes, cfg.reach, cfg.codebook_size)
    span = np.arange(-cfg.reach, cfg.reach + 1)

    def sample(step: int) -> np.ndarray:
        pick = np.random.default_rng([seed, step]).choice(rows, batch)
        return joined[pick[:, None] + span]

    return sample
