"""The recipe of the 16 kHz speech model shipped in jaxcodec/assets/speech16k.npz.

Data: prepare_speech.py's training speakers (OUT/train: Allison Smith in en and es, Carlo
Flora in it, two 8 kHz voices); the held-out speakers (OUT/eval) are for bench_audio.py.
The first shipped model (14k steps on an H100) saw only the en prompts; --init shipped
fine-tunes it here on every training speaker.
Model: SEANet, 32 base channels, strides 2-4-5-8 (50 frames/s), latent 64; RVQ of 24
codebooks x 1024 codes (EMA, k-means init, dead-code restart), quantizer dropout over
3 / 6 / 12 / 24 codebooks = 1.5 / 3 / 6 / 12 kbps; losses L1 + multi-resolution STFT +
log-mel + commitment; Adam 3e-4, 2% warm-up then cosine; batch 16 x 1 s crops; seed 0.
The shipped model was trained with:

    python experiments/train_speech.py --steps STEPS --batch-size 16 --ship

(STEPS and the device are recorded in the model's info and printed by bench_audio.py.)
With --time-budget SECONDS the step count is chosen to fit, from a short timed probe.
DAC's choices, for the ablation on a GPU (each alone, or all: --dac), in resumable chunks:

    python experiments/train_speech.py --out runs/dac --dac --steps 20000 --chunk-steps 4000 --resume
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax

from dataclasses import replace

from jaxcodec.audio.rvq import RVQConfig
from jaxcodec.audio.seanet import SEANetConfig
from jaxcodec.codecs import audio_rvq
from jaxcodec.data.audio import AudioFolder

CONFIG = audio_rvq.AudioModelConfig(SEANetConfig(channels=32, latent_dim=64), RVQConfig(stages=24, dim=64),
                                    (3, 6, 12, 24))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/speech16k")
    ap.add_argument("--out", default="runs/speech16k")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--time-budget", type=float, default=0.0, help="seconds for training; overrides --steps")
    ap.add_argument("--init", default=None, help="start from this model ('shipped', a folder or .npz): fine-tuning")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--crop", type=float, default=1.0, help="seconds per training example")
    ap.add_argument("--snake", action="store_true", help="Snake activations (DAC)")
    ap.add_argument("--code-dim", type=int, default=0, help="factorized cosine lookup in this many dims (DAC: 8)")
    ap.add_argument("--mel-scales", default="two", help="two, or dac (seven scales)")
    ap.add_argument("--discriminator", default=None, help="msstft or dac (multi-period + multi-band STFT)")
    ap.add_argument("--dac", action="store_true", help="all of DAC's: --snake --code-dim 8 --mel-scales dac "
                                                       "--discriminator dac")
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    ap.add_argument("--chunk-steps", type=int, default=0,
                    help="stop after this many more steps (a checkpoint is written); rerun with --resume")
    ap.add_argument("--ship", action="store_true", help="copy the model to jaxcodec/assets/speech16k.npz")
    args = ap.parse_args()
    if args.dac:
        args.snake, args.code_dim, args.mel_scales, args.discriminator = True, args.code_dim or 8, "dac", "dac"

    init = audio_rvq.resolve_model(None if args.init == "shipped" else args.init) if args.init else None
    config = init.config if init is not None else replace(
        CONFIG, seanet=replace(CONFIG.seanet, activation="snake" if args.snake else "elu"),
        rvq=replace(CONFIG.rvq, code_dim=args.code_dim))
    data_dir = Path(args.data)
    if not (data_dir / "train").is_dir():
        subprocess.run([sys.executable, str(Path(__file__).with_name("prepare_speech.py")), "--out", str(data_dir)],
                       check=True)
    data = AudioFolder.load(data_dir / "train", 16000, valid_percent=0.0)
    print(f"{len(data.train)} training prompts, {sum(map(len, data.train)) / 16000 / 60:.1f} min; "
          f"device {jax.devices()[0].device_kind}", flush=True)
    steps = args.steps
    if args.time_budget:  # time steps 10..30 of a short run (after compilation)
        t0 = time.perf_counter()
        stamps = {}
        probe = audio_rvq.TrainOptions(steps=30, batch_size=args.batch_size, crop_seconds=args.crop,
                                       checkpoint_every=0, context_steps=0)
        audio_rvq.train(data, config, probe, Path(args.out) / "probe", init=init,
                        on_step=lambda step, total: stamps.__setitem__(step, time.perf_counter()))
        per_step = (stamps[30] - stamps[10]) / 20
        steps = max(100, int((args.time_budget - (time.perf_counter() - t0) - 150) / per_step))
        shutil.rmtree(Path(args.out) / "probe", ignore_errors=True)
        print(f"probe: {per_step * 1000:.0f} ms/step; training {steps} steps", flush=True)
    opts = audio_rvq.TrainOptions(steps=steps, batch_size=args.batch_size, lr=args.lr, crop_seconds=args.crop,
                                  checkpoint_every=args.chunk_steps or max(steps // 4, 1), resume=args.resume,
                                  adversarial=args.discriminator is not None,
                                  discriminator=args.discriminator or "msstft", mel_scales=args.mel_scales,
                                  more_steps=args.chunk_steps)

    def show(record):
        keep = {k: round(v, 4) for k, v in record.items() if isinstance(v, float) and not k.startswith("ppl")}
        ppl = [record[k] for k in sorted(record) if k.startswith("ppl_")]
        print(json.dumps({"step": record["step"], **keep, "ppl_min": round(min(ppl), 1) if ppl else None}),
              flush=True)

    model = audio_rvq.train(data, config, opts, args.out, "speech16k", init=init, on_log=show)
    path = Path(args.out) / "model.npz"
    print(f"model {model.model_id}: {path} ({path.stat().st_size / 1e6:.1f} MB), {model.info}")
    if args.ship:
        dst = audio_rvq.default_model_path()
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dst)
        print(f"shipped to {dst}")


if __name__ == "__main__":
    main()
