"""The ``jaxcodec`` command line: encode, decode, evaluate and inspect .jxc files."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from jaxcodec import __version__, container
from jaxcodec.codecs import load_codecs
from jaxcodec.errors import BitstreamError, InputError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".mpg", ".mpeg", ".ts"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aac", ".aiff", ".aif"}


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


def parse_count(text: str) -> float:
    """'0.75M', '300k', '1500000' -> a number."""
    t = text.strip().lower()
    mult = {"k": 1e3, "m": 1e6}.get(t[-1:], 1.0)
    try:
        value = float(t[:-1] if t[-1:] in "km" else t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count like 0.3M or 300k, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _size(text: str) -> tuple[int, int]:
    from jaxcodec.data.video import parse_size

    try:
        return parse_size(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _guess_codec(src: Path) -> str:
    if src.is_dir() or src.suffix.lower() in VIDEO_SUFFIXES:
        return "video-inr"
    if src.suffix.lower() in AUDIO_SUFFIXES:
        return "audio-rvq"
    return "bytes"


# ---------------------------------------------------------------------------------------
# commands


def cmd_info(args: argparse.Namespace) -> int:
    codecs = load_codecs()
    path = Path(args.file)
    c = container.read(path, codecs)
    total = path.stat().st_size
    if args.json:
        print(json.dumps({"file": str(path), "bytes": total, "codec": c.codec,
                          "format_version": container.FORMAT_VERSION, "header": c.header,
                          "sections": {k: len(v) for k, v in c.sections.items()},
                          "summary": codecs[c.codec].describe(c)}, indent=2))
        return 0
    print(f"{path}: jaxcodec file, format version {container.FORMAT_VERSION}, {_human(total)}")
    print(f"  codec: {c.codec} ({codecs[c.codec].summary})")
    for key, value in codecs[c.codec].describe(c).items():
        print(f"  {key}: {value}")
    print("  sections:")
    for name, payload in c.sections.items():
        print(f"    {name:<20} {len(payload):>12,} bytes  ({100 * len(payload) / total:5.1f}%)")
    if args.header:
        print("  header:", json.dumps(c.header, indent=2).replace("\n", "\n  "))
    return 0


def _encode_video(args: argparse.Namespace, src: Path, out: Path) -> int:
    from jaxcodec.codecs import video_inr
    from jaxcodec.data.video import Preprocess, read_video
    from jaxcodec.metrics import frame_metrics
    from jaxcodec.train.progress import ProgressBar

    pre = Preprocess(args.start, args.frames, args.crop, args.size)
    frames, fps = read_video(src, pre)
    t, h, w = frames.shape[:3]
    opts = video_inr.EncodeOptions(model=args.inr, params=args.params, epochs=args.epochs, lam=args.lam,
                                   batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                   workdir=args.workdir, resume=args.resume, checkpoint_every=args.checkpoint_every)
    cfg = opts.model_config(h, w, t)
    from jaxcodec.inr.models import stored_param_count

    print(f"{src}: {t} frames of {w}x{h} at {fps:g} fps; {cfg.kind} with {stored_param_count(cfg):,} stored "
          f"parameters, {args.epochs} epochs", file=sys.stderr)
    bar = ProgressBar("fit")
    result = video_inr.encode(frames, opts, fps, {"name": src.name, "preprocess": pre.to_json()},
                              on_step=bar.step, on_log=bar.log)
    size = container.write(out, result.container)
    m = frame_metrics(frames, result.reconstruction)
    print(f"wrote {out}: {_human(size)}, {8 * size / (t * h * w):.4f} bpp, PSNR {m['psnr']:.2f} dB, "
          f"MS-SSIM {m['ms_ssim']:.4f}, trained in {result.train_seconds:.1f} s")
    return 0


def _encode_audio(args: argparse.Namespace, src: Path, out: Path) -> int:
    from jaxcodec.codecs import audio_rvq
    from jaxcodec.data.audio import read_audio

    model = audio_rvq.resolve_model(args.model)
    samples, sr = read_audio(src)
    t0 = time.perf_counter()
    result = audio_rvq.encode(model, samples, sr, args.kbps)
    size = container.write(out, result.container)
    seconds = time.perf_counter() - t0
    actual = 8 * size / result.duration_s / 1000
    print(f"wrote {out}: {_human(size)}, {actual:.2f} kbps actual / {result.nominal_kbps:g} kbps nominal "
          f"({100 * (1 - actual / result.nominal_kbps):.1f}% saved by the {result.container.header['prior']} prior), "
          f"{result.duration_s:.2f} s of audio in {seconds:.2f} s")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from jaxcodec.audio import rvq
    from jaxcodec.audio.seanet import SEANetConfig
    from jaxcodec.codecs import audio_rvq
    from jaxcodec.data.audio import AudioFolder
    from jaxcodec.train.progress import ProgressBar

    data = AudioFolder.load(args.data, args.sample_rate)
    print(f"{args.data}: {len(data.train)} training files ({sum(map(len, data.train)) / args.sample_rate / 60:.1f} min),"
          f" {len(data.valid)} held out", file=sys.stderr)
    cfg = audio_rvq.AudioModelConfig(
        SEANetConfig(sample_rate=args.sample_rate, channels=args.channels, latent_dim=args.latent_dim,
                     causal=args.causal),
        rvq.RVQConfig(stages=args.stages, codebook_size=args.codebook_size, dim=args.latent_dim),
        tuple(s for s in (3, 6, 12, 24) if s <= args.stages) or (args.stages,))
    opts = audio_rvq.TrainOptions(steps=args.steps, batch_size=args.batch_size, crop_seconds=args.crop, lr=args.lr,
                                  seed=args.seed, adversarial=args.adversarial, resume=args.resume,
                                  checkpoint_every=args.checkpoint_every)
    bar = ProgressBar("train")
    model = audio_rvq.train(data, cfg, opts, args.output, Path(args.output).name,
                            on_step=bar.step, on_log=bar.log)
    print(f"saved model {model.name} ({model.model_id}) to {Path(args.output) / 'model.npz'}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    src, out = Path(args.input), Path(args.output)
    if not src.exists():
        raise InputError(f"no such file or folder: {src}")
    codec = _guess_codec(src) if args.codec == "auto" else args.codec
    if codec == "video-inr":
        return _encode_video(args, src, out)
    if codec == "audio-rvq":
        return _encode_audio(args, src, out)
    if src.is_dir():
        raise InputError(f"{src} is a folder: the bytes codec compresses one file")
    from jaxcodec.codecs import bytes_order0

    t0 = time.perf_counter()
    size = container.write(out, bytes_order0.encode(src.read_bytes()))
    print(f"wrote {out}: {_human(size)} ({size * 8 / max(src.stat().st_size, 1):.3f} bits per input byte) "
          f"in {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    codecs = load_codecs()
    c = container.read(args.input, codecs)
    t0 = time.perf_counter()
    message = codecs[c.codec].decode_to(c, Path(args.output), lossless=args.lossless, model=args.model)
    print(f"{message} in {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    codecs = load_codecs()
    c = container.read(args.file, codecs)
    entry = codecs[c.codec]
    if entry.evaluate is None:
        raise InputError(f"codec '{c.codec}' has no evaluation")
    result = entry.evaluate(c, Path(args.source), model=args.model)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


# ---------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="jaxcodec",
        description="Learned compression in JAX: encode media to .jxc files, decode, evaluate and inspect them.")
    ap.add_argument("--version", action="version", version=f"jaxcodec {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("encode", help="compress a video (or any file) to .jxc",
                       description="Compress INPUT into a .jxc file. Videos (mp4, mkv, y4m, ... or a folder of "
                                   "PNG frames) are fitted with an implicit neural representation (HNeRV or NeRV) "
                                   "whose quantized weights are entropy-coded; other files are coded losslessly "
                                   "byte by byte. The file is written atomically.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", help="video file, folder of frames, or any file")
    p.add_argument("-o", "--output", required=True, help="output .jxc path")
    p.add_argument("--codec", choices=["auto", "video-inr", "audio-rvq", "bytes"], default="auto",
                   help="auto: video-inr for videos and frame folders, audio-rvq for audio files, bytes otherwise")
    g = p.add_argument_group("audio")
    g.add_argument("--kbps", type=float, default=6.0, help="nominal bitrate (1.5, 3, 6, 12 with the default model)")
    g.add_argument("--model", default=None, help="audio model folder or .npz (default: the shipped 16 kHz speech model)")
    g = p.add_argument_group("video input")
    g.add_argument("--start", type=int, default=0, help="first frame")
    g.add_argument("--frames", type=int, default=None, help="number of frames (default: all)")
    g.add_argument("--crop", type=_size, default=None, metavar="WxH", help="center crop before resizing")
    g.add_argument("--size", type=_size, default=None, metavar="WxH", help="resize (area average when shrinking)")
    g = p.add_argument_group("video model and training")
    g.add_argument("--inr", choices=["hnerv", "nerv"], default="hnerv", help="network family")
    g.add_argument("--params", type=parse_count, default=0.3e6,
                   help="stored parameters (decoder + HNeRV embeddings), e.g. 0.3M; sets the rate")
    g.add_argument("--epochs", type=int, default=300, help="training epochs (HNeRV paper: 300)")
    g.add_argument("--lambda", dest="lam", type=float, default=0.002,
                   help="rate weight: loss = MSE + lambda * bits per pixel; larger gives smaller files")
    g.add_argument("--batch-size", type=int, default=2, help="frames per step")
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (warm-up, then cosine)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workdir", default=None, help="folder for checkpoints and metrics.jsonl")
    g.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: at the end)")
    g.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --workdir")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="rebuild media from a .jxc file",
                       description="Decode a .jxc file; the codec is read from the file itself. Videos are "
                                   "written as mp4/mkv, or as PNG frames when OUTPUT has no suffix.")
    p.add_argument("input", help="a .jxc file")
    p.add_argument("-o", "--output", required=True, help="output file or folder")
    p.add_argument("--lossless", action="store_true", help="video: lossless RGB H.264 instead of crf 12 4:4:4")
    p.add_argument("--model", default=None, help="audio: the model the file was encoded with (default: shipped)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("eval", help="measure a .jxc file against its source",
                       description="Decode FILE and compare it with SOURCE, preprocessed as recorded in FILE "
                                   "(video: mean per-frame RGB PSNR, MS-SSIM, bits per pixel, decode speed).")
    p.add_argument("source", help="the original media")
    p.add_argument("file", help="the .jxc file made from it")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--model", default=None, help="audio: the model the file was encoded with (default: shipped)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a codec on a dataset folder",
                       description="Train a neural codec. 'audio': a SEANet + residual-VQ tokenizer on every "
                                   "wav/flac/ogg/mp3 file under --data (mono, resampled; 10%% held out by file "
                                   "name), then a code prior; saves OUTPUT/model.npz, checkpoints and metrics.jsonl.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("kind", choices=["audio"], help="what to train")
    p.add_argument("--data", required=True, help="folder of audio files (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="run folder, e.g. runs/speech")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=float, default=1.0, help="seconds per training example")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", type=int, default=32, help="SEANet base channels (doubling per stage)")
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--stages", type=int, default=24, help="RVQ codebooks (24 x 0.5 kbps = 12 kbps at 50 frames/s)")
    p.add_argument("--codebook-size", type=int, default=1024)
    p.add_argument("--causal", action="store_true", help="causal convolutions (streaming)")
    p.add_argument("--adversarial", action="store_true", help="add the multi-scale STFT discriminator (slow on CPU)")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("info", help="show what a .jxc file holds",
                       description="Verify a .jxc file (magic, version, CRCs) and summarize its contents.")
    p.add_argument("file", help="a .jxc file")
    p.add_argument("--header", action="store_true", help="also print the codec's JSON header")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(func=cmd_info)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (BitstreamError, InputError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"jaxcodec {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
