"""Train a context prior for an existing audio model (the shipped speech model by default)
and save the model with it; the model id, and so every older file, stays the same.

Data: prepare_speech.py's training speakers (OUT/train). The held-out speakers are left
for bench_audio.py, which reports what the prior saves on them. Prints the prior's bits
a frame on the training speakers' held-back prompts (OUT/eval-seen) beside the counted
depth prior's, at 6 and 12 kbps.

    python experiments/fit_context_prior.py [--model shipped] [--data data/speech16k] \\
        [--steps 3000] [--out runs/context] [--ship]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from jaxcodec.codecs import audio_rvq
from jaxcodec.data.audio import AUDIO_SUFFIXES, load_mono
from jaxcodec.data.media import dataset_files
from jaxcodec.progress import ProgressBar


def clips(folder: Path, sample_rate: int) -> list[np.ndarray]:
    out = []
    for f in dataset_files(folder, AUDIO_SUFFIXES, "audio"):
        try:
            out.append(load_mono(f, sample_rate))
        except Exception:  # noqa: BLE001 - the packages hold a few empty prompts
            continue
    return out


def payload_bits(model: audio_rvq.AudioModel, codes: list[np.ndarray], kind: str, columns: int) -> float:
    """Bits of the code streams over all clips at `columns` codebooks."""
    return sum(8 * len(audio_rvq._code_streams(model, c[None, :, :columns], kind)) for c in codes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shipped", help="'shipped', a run folder or a model .npz")
    ap.add_argument("--data", default="data/speech16k", help="prepare_speech.py's output folder")
    ap.add_argument("--steps", type=int, default=audio_rvq.ContextOptions.steps)
    ap.add_argument("--batch-size", type=int, default=audio_rvq.ContextOptions.batch_size)
    ap.add_argument("--lr", type=float, default=audio_rvq.ContextOptions.lr)
    ap.add_argument("--embed", type=int, default=audio_rvq.ContextOptions.embed)
    ap.add_argument("--hidden", type=int, default=audio_rvq.ContextOptions.hidden)
    ap.add_argument("--time-levels", type=int, default=audio_rvq.ContextOptions.time_levels,
                    help="dyadic passes in which each codebook also sees its own codes (0: lower codebooks only, "
                         "as the first shipped prior)")
    ap.add_argument("--start", default="model",
                    help="whose context prior training starts from: 'model' (the model's own), 'none' (random "
                         "weights) or another model file of the same codec (an earlier run)")
    ap.add_argument("--out", default="runs/context", help="folder for model.npz")
    ap.add_argument("--ship", action="store_true", help="copy the model to jaxcodec/assets/speech16k.npz")
    args = ap.parse_args()
    model = audio_rvq.resolve_model(None if args.model == "shipped" else args.model)
    train = clips(Path(args.data) / "train", model.sample_rate)
    seen = clips(Path(args.data) / "eval-seen", model.sample_rate)
    print(f"{len(train)} training prompts ({sum(map(len, train)) / model.sample_rate / 60:.1f} min), "
          f"{len(seen)} held-back prompts of the same speakers")
    opts = audio_rvq.ContextOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, embed=args.embed,
                                    hidden=args.hidden, time_levels=args.time_levels)
    if args.start == "model":
        start = model.context
    elif args.start == "none":
        start = None
    else:
        start = audio_rvq.resolve_model(args.start).context
        if start is None:
            raise SystemExit(f"--start {args.start}: that model has no context prior to start from")
    t0 = time.perf_counter()
    bar = ProgressBar("context prior")
    new = audio_rvq.fit_context_prior(model, train, opts, start=start, on_step=bar.step, on_log=bar.log)
    seconds = time.perf_counter() - t0
    model.retire_context(new)  # files coded with the prior it had keep decoding
    model.info["context_prior"] = audio_rvq.context_info(
        opts, seconds, start.content_id(audio_rvq.CONTEXT_ID_CHARS) if start is not None else None)
    out = model.save(Path(args.out))
    print(f"trained {args.steps} steps in {seconds:.0f} s; saved {out} (model {model.model_id}, "
          f"context prior {model.context_id}; {len(model.retired)} retired prior(s) kept for older files)")
    codes = [model.encode_codes(x, model.config.rvq.stages) for x in seen if len(x) >= model.config.seanet.hop]
    frames = sum(len(c) for c in codes)
    print("| codebooks | nominal bits/frame | depth prior | context prior | saving vs nominal |")
    print("|---|---|---|---|---|")
    for columns in (12, 24):
        nominal = columns * model.config.rvq.bits_per_code
        depth, context = (payload_bits(model, codes, k, columns) / frames for k in ("depth", "context"))
        print(f"| {columns} | {nominal:.0f} | {depth:.1f} | {context:.1f} | {100 * (1 - context / nominal):.1f}% |")
    if args.ship:
        shutil.copy(out, audio_rvq.default_model_path())
        print(f"shipped as {audio_rvq.default_model_path()}")


if __name__ == "__main__":
    main()
