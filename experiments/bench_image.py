"""Image codec benchmark on held-out photographs: ours at every quality beside JPEG, WebP,
AVIF (Pillow) and HEVC intra (x265 through imageio-ffmpeg's ffmpeg, as BPG codes).

Photos: every image under --eval (prepare_images.py's OUT/eval: photographs that never
entered training), as RGB (gray ones repeated). Each is coded to a real .jxc file, read
back and decoded; rates are whole files (the baselines' too; HEVC: the elementary
stream). Per quality setting, bpp, PSNR (RGB, peak 255) and MS-SSIM are averaged over the
photos; BD-rates (PCHIP) of ours against each baseline are over the PSNR (and MS-SSIM)
range both curves cover. Times are per megapixel on this machine, after a warm-up.

    python experiments/bench_image.py [--model runs/NAME] [--eval data/photos/eval]
    python experiments/bench_image.py --refine 30 --qualities 1,3,5,8 --baselines jpeg,webp
    python experiments/bench_image.py --model runs/NEW --against jaxcodec/assets/photo.npz

--against MODEL codes the same photos with a second model and gives the BD-rate of --model
against it: the figure that decides whether a new model replaces the shipped one.

--refine N refines every latent for N steps at encode (image/refine.py; the decoder is
the same); each step costs about two plain encodes, hence --qualities to bench a subset of
the ladder, and then the unrefined rows are measured on the same subset beside it.

Last line: summary: bd_vs_jpeg_pct=J bd_vs_webp_pct=W bd_vs_avif_pct=A bd_vs_hevc_intra_pct=H images=N
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from jaxcodec import container
from jaxcodec.baselines import IMAGE_BASELINES, run_image_codec
from jaxcodec.codecs import image_ls, load_codecs
from jaxcodec.data.images import as_rgb, read_image
from jaxcodec.data.media import IMAGE_SUFFIXES
from jaxcodec.metrics import bd_quality, bd_rate

LABELS = {"jpeg": "JPEG (Pillow, 4:2:0)", "webp": "WebP (Pillow, method 6)", "avif": "AVIF (Pillow)",
          "hevc": "HEVC intra (x265 medium, 4:2:0)"}


def _row(points: list[dict]) -> dict[str, float]:
    pixels = sum(p["pixels"] for p in points)
    return {"bpp": float(np.mean([p["bpp"] for p in points])), "psnr": float(np.mean([p["psnr"] for p in points])),
            "ms_ssim": float(np.mean([p["ms_ssim"] for p in points])),
            "enc_s_per_mp": sum(p["enc"] for p in points) / pixels * 1e6,
            "dec_s_per_mp": sum(p["dec"] for p in points) / pixels * 1e6}


def bench_ours(model: image_ls.ImageModel, photos: list[np.ndarray], out: Path, qualities: list[int],
               refine: int = 0) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    codecs = load_codecs()
    for x in photos:  # compile for every photo's shape before timing (a new shape compiles anew)
        image_ls.decode(model, image_ls.encode(model, x, 1).container)
    if refine:  # and for the refinement's steps
        for x in photos:
            image_ls.encode(model, x, 1, refine=1)
    rows = []
    tag = f"-refine{refine}" if refine else ""
    for q in qualities:
        points = []
        for i, x in enumerate(photos):
            name = out / f"{i:02d}-q{q}{tag}.jxc"
            t0 = time.perf_counter()
            enc = image_ls.encode(model, x, q, refine=refine)
            size = container.write(name, enc.container)
            t1 = time.perf_counter()
            y = image_ls.decode(model, container.read(name, codecs))
            t2 = time.perf_counter()
            assert (y == enc.reconstruction).all(), "decode differs from the encoder's reconstruction"
            m = image_ls.image_metrics(x, y)
            points.append({"bpp": 8 * size / enc.pixels, **m, "pixels": enc.pixels, "enc": t1 - t0, "dec": t2 - t1,
                           **enc.bits})
        label = f"ours ({model.name}{f', refine {refine}' if refine else ''})"
        rows.append({"codec": label, "setting": f"q{q}", **_row(points),
                     "context_saving": 1 - sum(p["others"] for p in points) / sum(p["others_without_context"]
                                                                                  for p in points)})
    return rows


def bench_baseline(codec: str, photos: list[np.ndarray]) -> list[dict]:
    run_image_codec(photos[0][:64, :64], codec, IMAGE_BASELINES[codec][0])  # warm-up
    rows = []
    for setting in IMAGE_BASELINES[codec]:
        points = []
        for x in photos:
            y0 = x[:x.shape[0] // 2 * 2, :x.shape[1] // 2 * 2] if codec == "hevc" else x
            size, y, te, td = run_image_codec(y0, codec, setting)
            m = image_ls.image_metrics(y0, y)
            points.append({"bpp": 8 * size / (y0.shape[0] * y0.shape[1]), **m, "pixels": y0.shape[0] * y0.shape[1],
                           "enc": te, "dec": td})
        rows.append({"codec": LABELS[codec], "setting": ("crf " if codec == "hevc" else "q ") + str(setting),
                     **_row(points)})
    return rows


def _bd(ours: list[dict], theirs: list[dict], key: str, measure=bd_rate) -> float:
    """BD-rate (or with measure=bd_quality, the quality difference at equal rate) of ours."""
    try:
        return measure([r["bpp"] for r in theirs], [r[key] for r in theirs], [r["bpp"] for r in ours],
                       [r[key] for r in ours])
    except ValueError:  # the curves do not overlap (in quality, or in rate)
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="image model folder or .npz (default: the shipped one)")
    ap.add_argument("--eval", default="data/photos/eval", help="folder of held-out photos")
    ap.add_argument("--out", default="out/bench-image")
    ap.add_argument("--baselines", default="jpeg,webp,avif,hevc")
    ap.add_argument("--refine", type=int, default=0, help="refinement steps per latent (0: off)")
    ap.add_argument("--against", default=None, help="a second model to compare --model with (e.g. the shipped one)")
    ap.add_argument("--qualities", default=None, help="comma-separated qualities of ours, 4 or more (BD-rates need 4 points; default: all)")
    args = ap.parse_args(argv)
    files = sorted(p for p in Path(args.eval).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        sys.exit(f"no photos under {args.eval}: run experiments/prepare_images.py first")
    photos = [as_rgb(read_image(f)) for f in files]
    model = image_ls.resolve_model(args.model)
    mp = sum(x.shape[0] * x.shape[1] for x in photos) / 1e6
    print(f"{len(photos)} held-out photos ({mp:.2f} megapixels) from {args.eval}; model {model.name} "
          f"({model.model_id}, trained {model.info.get('steps', '?')} steps)\n")
    qualities = ([int(q) for q in args.qualities.split(",")] if args.qualities
                 else list(range(1, model.config.qualities + 1)))
    if len(qualities) < 4 or not all(1 <= q <= model.config.qualities for q in qualities):
        sys.exit(f"--qualities: give 4 or more of 1..{model.config.qualities}")
    ours = bench_ours(model, photos, Path(args.out), qualities)
    plain = ours
    if args.refine:
        ours = bench_ours(model, photos, Path(args.out), qualities, args.refine)
    other = []
    if args.against:
        against = image_ls.resolve_model(args.against)
        other = bench_ours(against, photos, Path(args.out) / "against", qualities)
    baselines = {c: bench_baseline(c, photos) for c in args.baselines.split(",") if c}
    print("| codec | setting | bpp | PSNR dB | MS-SSIM | encode s/MP | decode s/MP |")
    print("|---|---|---|---|---|---|---|")
    for r in (plain if args.refine else []) + ours + other + [r for rows in baselines.values() for r in rows]:
        print(f"| {r['codec']} | {r['setting']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {r['ms_ssim']:.4f} | "
              f"{r['enc_s_per_mp']:.3f} | {r['dec_s_per_mp']:.3f} |")
    print("\nWhat the checkerboard context saves on the non-anchor half of y (ideal code lengths against the "
          "same model's hyperprior-only parameters):",
          ", ".join(f"{r['setting']} {100 * r['context_saving']:.1f}%" for r in ours))
    print("\nBD-rate: the rate ours needs at equal quality (nan: the curves share no quality range); "
          "BD-PSNR: ours at equal rate")
    print("\n| ours against | BD-rate % (PSNR) | BD-rate % (MS-SSIM) | BD-PSNR dB |")
    print("|---|---|---|---|")
    bd = {}
    for c, rows in baselines.items():
        bd[c] = _bd(ours, rows, "psnr")
        print(f"| {LABELS[c]} | {bd[c]:+.1f} | {_bd(ours, rows, 'ms_ssim'):+.1f} | "
              f"{_bd(ours, rows, 'psnr', bd_quality):+.2f} |")
    if args.refine:
        print(f"\nrefined against unrefined (same qualities): BD-rate {_bd(ours, plain, 'psnr'):+.1f}% (PSNR), "
              f"{_bd(ours, plain, 'ms_ssim'):+.1f}% (MS-SSIM); encode time x"
              f"{np.mean([r['enc_s_per_mp'] for r in ours]) / np.mean([r['enc_s_per_mp'] for r in plain]):.1f}")
    if other:
        print(f"\n{model.name} ({model.model_id}) against {against.name} ({against.model_id}): BD-rate "
              f"{_bd(ours, other, 'psnr'):+.1f}% (PSNR), {_bd(ours, other, 'ms_ssim'):+.1f}% (MS-SSIM), "
              f"BD-PSNR {_bd(ours, other, 'psnr', bd_quality):+.2f} dB")
    fmt = lambda c: f"{bd.get(c, float('nan')):.1f}"  # noqa: E731
    print(f"\nsummary: bd_vs_jpeg_pct={fmt('jpeg')} bd_vs_webp_pct={fmt('webp')} bd_vs_avif_pct={fmt('avif')} "
          f"bd_vs_hevc_intra_pct={fmt('hevc')} images={len(photos)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
