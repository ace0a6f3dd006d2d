"""What a richer prior for the network's integers would save, measured on real .jxc files.

Issue 8 §2 asks for priors per output channel or per axis (NVRC's dual-axis prior) instead of
one Laplace per tensor. Before building one into the coder, this measures its gain on files
the video codec wrote: it entropy-decodes each file's weight integers and prices them under

- per tensor: the file's own model (a zero-mean Laplace per tensor, its MLE scale);
- per channel: one Laplace scale per output channel;
- dual axis: scale[i, j] = a[i] * c[j] over input rows i and output channels j (alternating MLE);
- zero spike: a point mass at zero (its own probability) plus the per-tensor Laplace elsewhere;
- order 0: each tensor's empirical entropy, a floor no i.i.d. model per tensor can beat
  (its table not counted).

For HiNeRV it also prices a context for the feature grids (NVRC codes grids with one): each
grid sample predicted by the one before it in time, the residual under its own Laplace.

Every stored scale or probability costs 16 bits. Bits are ideal code lengths (the rANS coder
lands within a fraction of a percent of them); HNeRV's embeddings are left out.

    python experiments/bench_weight_priors.py out/rd-320x160/*.jxc
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from jaxcodec import container
from jaxcodec.codecs import load_codecs, video_inr
from jaxcodec.entropy.models import bin_bits
from jaxcodec.inr.models import make_decoder
from jaxcodec.inr.quant import laplace_scale_of  # the MLE scale the files store, floored

SIDE_BITS = 16  # a float16 per stored scale or probability
FLOOR = float(laplace_scale_of(np.zeros(1)))  # the smallest Laplace scale the codec stores


def laplace_bits(q: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    return np.asarray(bin_bits("laplace", q.astype(np.float32), np.asarray(scale, np.float32)), np.float64)


def dual_axis_bits(q: np.ndarray, rounds: int = 8) -> float:
    """Laplace scales a[i] * c[j] over (input row i, output channel j), fitted by alternating MLE."""
    m = np.abs(q.reshape(-1, q.shape[-2], q.shape[-1])).astype(np.float64)
    a, c = np.ones(q.shape[-2]), laplace_scale_of(m, axis=(0, 1))
    for _ in range(rounds):
        a = np.maximum(np.mean(m / c[None, None, :], axis=(0, 2)), 1e-6)
        c = np.maximum(np.mean(m / a[None, :, None], axis=(0, 1)), 1e-6)
    scale = np.maximum(a[:, None] * c[None, :], FLOOR)
    return laplace_bits(q.reshape(m.shape), scale[None]).sum() + SIDE_BITS * (len(a) + len(c))


def zero_spike_bits(q: np.ndarray) -> float:
    """P(0) = p0 stored; other values by the Laplace renormalised over the non-zeros."""
    scale = laplace_scale_of(q)
    bits = laplace_bits(q, scale)
    p0 = float(np.mean(q == 0))
    if p0 in (0.0, 1.0):
        return bits.sum() + SIDE_BITS
    lap0 = 2.0 ** -laplace_bits(np.zeros(1), scale)[0]
    nz = q != 0
    return (-np.log2(p0) * (~nz).sum() + (bits[nz] + np.log2((1 - lap0) / (1 - p0))).sum() + 2 * SIDE_BITS)


def order0_bits(q: np.ndarray) -> float:
    _, counts = np.unique(q, return_counts=True)
    return float(-(counts * np.log2(counts / counts.sum())).sum())


def grid_flags(cfg) -> list[bool]:
    """Which decoder tensors are HiNeRV feature grids (base and local), by parameter path."""
    state = nnx.state(nnx.eval_shape(lambda: make_decoder(cfg, nnx.Rngs(0))))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    return [("'grids'" in p or "'local'" in p) for p in paths]


def temporal_context_bits(q: np.ndarray) -> float:
    """A grid [T, h, w, C] coded as its first time sample and then differences in time."""
    r = q.copy()
    r[1:] = q[1:] - q[:-1]
    return laplace_bits(r, laplace_scale_of(r)).sum() + SIDE_BITS


def price(net: video_inr.StoredNetwork) -> dict[str, float]:
    """Total bits of the weight integers under each model (each tensor picks the cheaper of the
    richer model and the per-tensor one, as an encoder would)."""
    out = dict.fromkeys(("tensor", "channel", "dual", "spike", "order0", "grids", "grids_context"), 0.0)
    flags = grid_flags(net.config) if net.config.kind == "hinerv" else [False] * len(net.integers)
    for q, is_grid in zip(net.integers, flags):
        tensor = laplace_bits(q, laplace_scale_of(q)).sum() + SIDE_BITS
        out["tensor"] += tensor
        if is_grid:
            out["grids"] += tensor
            out["grids_context"] += min(tensor, temporal_context_bits(q))
        out["order0"] += order0_bits(q)
        out["spike"] += min(tensor, zero_spike_bits(q))
        if q.ndim >= 2:
            flat = q.reshape(-1, q.shape[-1])
            out["channel"] += min(tensor, laplace_bits(flat, laplace_scale_of(flat, axis=0)[None]).sum()
                                  + SIDE_BITS * q.shape[-1])
            out["dual"] += min(tensor, dual_axis_bits(q))
        else:
            out["channel"] += tensor
            out["dual"] += tensor
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, help=".jxc files written by the video INR codec")
    args = ap.parse_args(argv)
    codecs = load_codecs()
    rows = []
    print("| file | model | weights | zeros | per tensor (the file's) | per channel | dual axis | zero spike "
          "| order-0 floor | grids: share of bits | grids: temporal context |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in args.files:
        c = container.read(path, codecs)
        if c.codec != video_inr.CODEC_ID:
            print(f"(skipped {path}: not a single-network video file)", file=sys.stderr)
            continue
        net = video_inr.stored_network(c)
        n = sum(q.size for q in net.integers)
        bits = price(net)
        zeros = sum(int(np.sum(q == 0)) for q in net.integers) / n
        rows.append(bits)
        cells = " | ".join(f"{bits[k] / n:.3f} ({100 * (bits[k] / bits['tensor'] - 1):+.1f}%)"
                           for k in ("channel", "dual", "spike", "order0"))
        grids = (f"{bits['grids'] / bits['tensor']:.1%} | {100 * (bits['grids_context'] - bits['grids']) / bits['tensor']:+.1f}%"
                 if bits["grids"] else "- | -")
        print(f"| {path.name} | {net.config.kind} | {n:,} | {zeros:.0%} | {bits['tensor'] / n:.3f} | {cells} | {grids} |")
    if not rows:
        raise SystemExit("no single-network video files among the inputs")
    gains = {k: 100 * (sum(r[k] for r in rows) / sum(r["tensor"] for r in rows) - 1)
             for k in ("channel", "dual", "spike", "order0")}
    gains["grid_context"] = 100 * sum(r["grids_context"] - r["grids"] for r in rows) / sum(r["tensor"] for r in rows)
    print("\n(bits per weight; in brackets, against the file's per-tensor Laplace; the grid context as a share "
          "of all weight bits)")
    print("summary: " + " ".join(f"{k}_pct={v:+.2f}" for k, v in gains.items()) + f" files={len(rows)}")


if __name__ == "__main__":
    main()
