"""Audio codec benchmark on held-out speakers: ours at every trained rate beside Opus.

Held-out prompts: data/speech16k/eval/<speaker>/ (prepare_speech.py: whole speakers, in
languages no training prompt is in), --per-speaker prompts of each (a fixed choice).
Every prompt is coded to a real .jxc file and decoded from it; Opus (libopus through
imageio-ffmpeg's ffmpeg, application voip, Ogg) codes the same prompts in the same run.
Per-prompt wideband PESQ (package pesq), STOI (pystoi), SI-SDR and log-mel L1 are
averaged. Rates: nominal (codebooks x 10 bits x 50 frames/s), code payload (the
entropy-coded codes alone: what the prior saves), and actual (whole files, headers and
containers included, over total duration; for Opus the whole Ogg file). Real-time
factors are seconds of processing per second of audio on this machine.

    python experiments/bench_audio.py [--model runs/NAME,shipped] [--eval data/speech16k/eval] [--per-speaker 40]

Last line: summary: pesq_6kbps=P6 pesq_12kbps=P12 opus_pesq_8kbps=O8 prior_saving_pct=S heldout_speakers=N
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections import Counter
from pathlib import Path

import jax
import numpy as np
from pesq import pesq
from pystoi import stoi

from jaxcodec import container
from jaxcodec.baselines import run_opus
from jaxcodec.codecs import audio_rvq, load_codecs
from jaxcodec.data.audio import AUDIO_SUFFIXES, load_mono
from jaxcodec.metrics import mel_distance, si_sdr

SR = 16000


def quality(ref: np.ndarray, out: np.ndarray) -> dict[str, float]:
    try:
        p = pesq(SR, ref, out, "wb")
    except Exception:  # pesq refuses prompts without detectable speech
        p = float("nan")
    return {"pesq": p, "stoi": stoi(ref, out, SR, extended=False), "si_sdr": si_sdr(ref, out),
            "mel": mel_distance(ref, out, SR)}


def cell(value: float, spec: str) -> str:
    """A table cell: '-' where the quantity does not apply (Opus has no separate code payload)."""
    return "-" if np.isnan(value) else format(value, spec)


def mean(rows: list[dict], key: str) -> float:
    return float(np.nanmean([r[key] for r in rows]))


def per_speaker(per: list[dict], speakers: list[str]) -> dict[str, float]:
    return {s: mean([r for r, t in zip(per, speakers) if t == s], "pesq") for s in dict.fromkeys(speakers)}


def bench_model(model: audio_rvq.AudioModel, label: str, files: list[Path], clips: list[np.ndarray],
                speakers: list[str], out: Path, codecs, rates: list[float]) -> list[dict]:
    """Every clip coded to a real file at each rate, read back and decoded."""
    out.mkdir(parents=True, exist_ok=True)
    total_s = sum(len(c) for c in clips) / SR
    audio_rvq.encode(model, clips[0][:, None], SR, rates[0])  # compile before timing
    rows = []
    for kbps in rates:
        per, size, payload, nominal, t_enc, t_dec = [], 0, 0, 0.0, 0.0, 0.0
        priors: Counter[str] = Counter()
        for f, x in zip(files, clips):
            t0 = time.perf_counter()
            enc = audio_rvq.encode(model, x[:, None], SR, kbps)
            n = container.write(out / f"{f.stem}-{kbps:g}.jxc", enc.container)
            t_enc += time.perf_counter() - t0
            t0 = time.perf_counter()
            y, _ = audio_rvq.decode(model, container.read(out / f"{f.stem}-{kbps:g}.jxc", codecs))
            t_dec += time.perf_counter() - t0
            size += n
            payload += len(enc.container.section("codes"))
            priors[enc.prior] += 1
            nominal += enc.nominal_kbps * 1000 * len(x) / SR / 8
            per.append(quality(x, y[:, 0]))
        rows.append({"codec": label, "nominal": kbps, "by_speaker": per_speaker(per, speakers),
                     "actual": 8 * size / total_s / 1000, "payload": 8 * payload / total_s / 1000,
                     "saving": 100 * (1 - payload / nominal), "enc_rtf": t_enc / total_s, "dec_rtf": t_dec / total_s,
                     "priors": " ".join(f"{k} {v}" for k, v in priors.most_common()),
                     **{k: mean(per, k) for k in ("pesq", "stoi", "si_sdr", "mel")}})
        print(f"{label} {kbps:g} kbps: PESQ {rows[-1]['pesq']:.3f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shipped",
                    help="model folders or .npz files, comma-separated ('shipped': the packaged speech16k model); "
                         "the summary line is the first one's")
    ap.add_argument("--eval", default="data/speech16k/eval")
    ap.add_argument("--per-speaker", type=int, default=40, help="prompts per speaker (0: all)")
    ap.add_argument("--kbps", default=None, help="rates to code at (default: every rate the model was trained for)")
    ap.add_argument("--opus", default="6,8,12")
    ap.add_argument("--out", default="out/bench-audio")
    args = ap.parse_args()

    models = [audio_rvq.resolve_model(None if m == "shipped" else m) for m in args.model.split(",")]
    eval_dir = Path(args.eval)
    by_speaker: dict[str, list[Path]] = {}
    for p in sorted(eval_dir.rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES:
            by_speaker.setdefault(p.parent.relative_to(eval_dir).as_posix(), []).append(p)
    if not by_speaker:
        raise SystemExit(f"no held-out audio in {args.eval}: run experiments/prepare_speech.py first")
    files, speakers = [], []
    for speaker, found in by_speaker.items():  # a fixed, name-independent-of-order pick per speaker
        found = sorted(found, key=lambda p: zlib.crc32(p.name.encode()))
        found = found[:args.per_speaker] if args.per_speaker else found
        files += found
        speakers += [speaker] * len(found)
    clips = [load_mono(f, SR) for f in files]
    total_s = sum(len(c) for c in clips) / SR
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    codecs = load_codecs()
    rows = []
    for m, (model, label) in enumerate(zip(models, args.model.split(","))):
        rows += bench_model(model, f"ours: {label}", files, clips, speakers, out / f"model{m}", codecs,
                            [float(k) for k in args.kbps.split(",")] if args.kbps else model.config.trained_kbps())

    for kbps in [float(k) for k in args.opus.split(",")]:
        per, size, t_enc, t_dec = [], 0, 0.0, 0.0
        for x in clips:
            data, y, enc_s, dec_s = run_opus(x, SR, kbps)
            size += len(data)
            t_enc += enc_s
            t_dec += dec_s
            per.append(quality(x, y))
        rows.append({"codec": "opus voip", "nominal": kbps, "by_speaker": per_speaker(per, speakers),
                     "actual": 8 * size / total_s / 1000, "payload": float("nan"), "saving": float("nan"),
                     "priors": "-", "enc_rtf": t_enc / total_s,
                     "dec_rtf": t_dec / total_s, **{k: mean(per, k) for k in ("pesq", "stoi", "si_sdr", "mel")}})

    two = [c[:2 * SR] for c in clips if len(c) >= 2 * SR]
    for model, label in zip(models, args.model.split(",")):  # what a file costs beyond its codes
        encs = [audio_rvq.encode(model, c[:, None], SR, 6.0).container for c in two]
        whole, codes = sum(len(container.pack(e)) for e in encs), sum(len(e.section("codes")) for e in encs)
        print(f"{label}: {len(two)} 2-second files at 6 kbps: {whole / len(two):.0f} bytes a file, "
              f"{codes / len(two):.0f} of them codes: {whole / codes:.3f}x the payload")
    names = ", ".join(f"{s} ({speakers.count(s)})" for s in dict.fromkeys(speakers))
    print(f"\n{len(files)} prompts ({total_s:.1f} s, 16 kHz) of {eval_dir}: {names}; "
          f"measured on {jax.devices()[0].device_kind}")
    for model, label in zip(models, args.model.split(",")):
        info = model.info
        print(f"- {label}: model {model.name} ({model.model_id}): {info.get('steps', '?')} steps, batch "
              f"{info.get('batch_size', '?')}, {info.get('train_seconds', float('nan')) / 60:.1f} min on "
              f"{info.get('devices', '?')}" + (f", fine-tuned from {info['init']}" if "init" in info else ""))
    print()
    print("| codec | kbps nominal | kbps code payload | kbps actual (files) | prior saving % | priors used | PESQ-wb "
          "| STOI | SI-SDR dB | log-mel L1 | encode RTF | decode RTF |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['codec']} | {r['nominal']:g} | {cell(r['payload'], '.2f')} | {r['actual']:.2f} "
              f"| {cell(r['saving'], '.1f')} | {r['priors']} | {r['pesq']:.3f} | {r['stoi']:.3f} | {r['si_sdr']:.2f} | {r['mel']:.3f} "
              f"| {r['enc_rtf']:.3f} | {r['dec_rtf']:.3f} |")
    print("\nPESQ-wb by speaker\n\n| codec | kbps nominal | " + " | ".join(dict.fromkeys(speakers)) + " |")
    print("|---|---|" + "---|" * len(set(speakers)))
    for r in rows:
        print(f"| {r['codec']} | {r['nominal']:g} | " + " | ".join(f"{v:.3f}" for v in r["by_speaker"].values()) + " |")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name in dict.fromkeys(r["codec"] for r in rows):
            style = "s--" if name == "opus voip" else "o-"
            pts = [r for r in rows if r["codec"] == name]
            ax.plot([r["actual"] for r in pts], [r["pesq"] for r in pts], style, label=name)
        ax.set_xlabel("kbps (whole files)")
        ax.set_ylabel("PESQ-wb")
        ax.set_title("held-out 16 kHz speech")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "pesq.png", dpi=120)
        print(f"\nplot: {out / 'pesq.png'}")
    except ImportError:
        print("(matplotlib not installed: no plot)")
    def pesq_at(codec: str, kbps: float) -> float:
        return next((r["pesq"] for r in rows if r["codec"] == codec and r["nominal"] == kbps), float("nan"))

    first = rows[0]["codec"]
    ours6 = next((r for r in rows if r["codec"] == first and r["nominal"] == 6.0), None)
    saving = ours6["saving"] if ours6 else float("nan")
    print(f"summary: pesq_6kbps={pesq_at(first, 6.0):.3f} pesq_12kbps={pesq_at(first, 12.0):.3f} "
          f"opus_pesq_8kbps={pesq_at('opus voip', 8.0):.3f} prior_saving_pct={saving:.1f} "
          f"heldout_speakers={len(set(speakers))}")


if __name__ == "__main__":
    main()
