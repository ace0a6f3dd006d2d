"""The ``jaxcodec`` command line: encode, decode, evaluate, train and inspect .jxc files.

Every codec-specific flag and action comes from the codec registry; this module only
parses, checks input and output locations before any work, and turns every error into
one line and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from jaxcodec import __version__, container
from jaxcodec.codecs import CodecEntry, load_codecs
from jaxcodec.data.media import check_output, cli_type, media_kind
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.progress import ProgressBar


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows '(default: X)' where a default says something and the help does not already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _entry_for_input(codecs: dict[str, CodecEntry], src: Path, choice: str) -> CodecEntry:
    if choice != "auto":
        return codecs[choice]
    kind = media_kind(src)
    return next((e for e in codecs.values() if e.media is not None and e.media == kind), codecs["bytes"])


def _read(path: str, codecs: dict[str, CodecEntry], keep_damaged: bool = False
          ) -> tuple[container.Container, CodecEntry]:
    c = container.read(path, codecs, keep_damaged)
    return c, codecs[c.codec]


# ---------------------------------------------------------------------------------------
# commands


def cmd_info(args: argparse.Namespace) -> int:
    codecs = load_codecs()
    c, entry = _read(args.file, codecs)
    total = Path(args.file).stat().st_size
    if args.json:
        print(json.dumps({"file": args.file, "bytes": total, "codec": c.codec,
                          "format_version": container.FORMAT_VERSION, "header": c.header,
                          "sections": {k: len(v) for k, v in c.sections.items()},
                          "summary": entry.describe(c)}, indent=2))
        return 0
    print(f"{args.file}: jaxcodec file, format version {container.FORMAT_VERSION}, {total:,} bytes")
    print(f"  codec: {c.codec} ({entry.summary})")
    for key, value in entry.describe(c).items():
        print(f"  {key}: {value}")
    print("  sections:")
    for name, payload in c.sections.items():
        print(f"    {name:<20} {len(payload):>12,} bytes  ({100 * len(payload) / total:5.1f}%)")
    if args.header:
        print("  header:", json.dumps(c.header, indent=2).replace("\n", "\n  "))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if not src.exists():
        raise InputError(f"no such file or folder: {src}")
    check_output(args.output, args.overwrite)
    entry = _entry_for_input(load_codecs(), src, args.codec)
    if args.coordinator is not None:
        from jaxcodec import distributed

        if args.num_processes is None or args.process_id is None:
            raise InputError("--coordinator needs --num-processes and --process-id")
        if entry.media != "video":
            raise InputError("only video encodes are shared among processes (--gop N --chains K)")
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    print(entry.encode.run(args, ProgressBar("encode")))
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    c, entry = _read(args.input, load_codecs(), getattr(args, "skip_damaged", False))
    out = check_output(args.output, args.overwrite, folder_ok=entry.media == "video")
    t0 = time.perf_counter()
    message = entry.decode_to(c, out, args)
    print(f"{message} in {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    c, entry = _read(args.file, load_codecs())
    if entry.evaluate is None:
        raise InputError(f"codec '{c.codec}' has no evaluation (decode it and compare the bytes)")
    if not Path(args.source).exists():
        raise InputError(f"no such file or folder: {args.source}")
    result = entry.evaluate(c, Path(args.source), args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from jaxcodec.train.trainer import prepare_run_folder

    if not Path(args.data).is_dir():
        raise InputError(f"no such data folder: {args.data}")
    prepare_run_folder(args.output, args.resume, args.overwrite)
    print(args.entry.train.run(args, ProgressBar("train")))
    return 0


# ---------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    codecs = load_codecs()
    ap = argparse.ArgumentParser(
        prog="jaxcodec", formatter_class=_HelpFormatter,
        description="Learned compression in JAX. Encode video (fitted with a NeRV/HNeRV/HiNeRV network), "
                    "audio (a residual-VQ neural codec), images (a learned hyperprior codec; train your own audio "
                    "or image codec on a folder) or any file to .jxc; decode, evaluate and inspect .jxc files.",
        epilog="codecs:\n" + "\n".join(f"  {e.id:<10} {e.summary}" for e in codecs.values()))
    ap.add_argument("--version", action="version", version=f"jaxcodec {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def overwrite(p: argparse.ArgumentParser) -> None:
        p.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output")

    def model(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=None,
                       help="audio and image: the trained model (a run folder or its model.npz) the file was, or is "
                            "to be, coded with (default: the model shipped for that medium)")

    p = sub.add_parser("encode", help="compress a video, an audio file, an image (or any file) to .jxc",
                       formatter_class=_HelpFormatter,
                       description="Compress INPUT into a .jxc file, written atomically. Videos (mp4, mkv, y4m, "
                                   "... or a folder of frames) are fitted with an implicit neural representation "
                                   "whose quantized weights are entropy-coded; audio files go through the neural "
                                   "audio codec, images (png, jpg, webp, bmp, tif) through the learned image "
                                   "codec; any other file is coded losslessly byte by byte.")
    p.add_argument("input", help="video file, folder of frames, audio file, image, or any file")
    p.add_argument("-o", "--output", required=True, help="output .jxc path")
    overwrite(p)
    model(p)
    p.add_argument("--codec", choices=["auto", *codecs], default="auto",
                   help="auto picks by the input: " + ", ".join(f"{e.media} -> {e.id}" for e in codecs.values()
                                                               if e.media) + ", anything else -> bytes")
    p.add_argument("--kbps", type=cli_type(float, lo=1e-3), default=None,
                   help="target rate in kilobits per second of the whole file: audio, its nominal rate (default: "
                        "6; a model codes only the rates it was trained for: the shipped one 1.5, 3, 6 or 12 kbps per "
                        "channel); video, the rate "
                        "at the video's frame rate (instead of --bpp or --params)")
    many = p.add_argument_group(
        "processes", "Run the same command once per host (or accelerator), each with its --process-id; process 0 "
                     "serves the coordinator and writes the file. Video: --gop N --chains K shares the K chains "
                     "among the processes.")
    many.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                      help="process 0's address and a free port, the same for every process")
    many.add_argument("--num-processes", type=cli_type(int, lo=1), default=None, metavar="P",
                      help="how many processes take part")
    many.add_argument("--process-id", type=cli_type(int, lo=0), default=None, metavar="I",
                      help="this process's index, 0 to P-1")
    for e in codecs.values():
        if e.encode is not None:
            e.encode.add_args(p.add_argument_group(f"{e.id} ({e.summary})"))
    p.set_defaults(func=cmd_encode)

    decode_groups = [(e, f"{e.id} ({e.summary})") for e in codecs.values() if e.add_decode_args is not None]
    p = sub.add_parser("decode", help="rebuild media from a .jxc file", formatter_class=_HelpFormatter,
                       description="Decode a .jxc file; the codec is read from the file itself. Videos are "
                                   "written as mp4/mkv/mov (H.264), y4m or gif, or as PNG frames when OUTPUT is "
                                   "a folder or has no suffix; audio as wav, flac or ogg; "
                                   "images as png, bmp or tif.")
    p.add_argument("input", help="a .jxc file")
    p.add_argument("-o", "--output", required=True, help="output file or folder")
    overwrite(p)
    model(p)
    for e, title in decode_groups:
        e.add_decode_args(p.add_argument_group(title))
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("eval", help="measure a .jxc file against its source", formatter_class=_HelpFormatter,
                       description="Decode FILE and compare it with SOURCE, preprocessed as recorded in FILE. "
                                   "Video: mean per-frame RGB PSNR, MS-SSIM, bits per pixel, decode speed. "
                                   "Audio: SI-SDR, log-mel distance, kbps, decode real-time factor. "
                                   "Images: PSNR, MS-SSIM, bits per pixel of the whole file, decode time.")
    p.add_argument("source", help="the original media")
    p.add_argument("file", help="the .jxc file made from it")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    model(p)
    for e, title in decode_groups:
        e.add_decode_args(p.add_argument_group(title))
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a codec on a dataset folder", formatter_class=_HelpFormatter,
                       description="Train a neural codec on a folder of media; checkpoints, metrics.jsonl and "
                                   "the model land in OUTPUT.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    for e in codecs.values():
        if e.train is None:
            continue
        k = kinds.add_parser(e.train_kind, help=e.summary, formatter_class=_HelpFormatter,
                             description=f"Train '{e.id}' ({e.summary}) on every {e.media} file under --data; "
                                         "10% of the files (chosen by name) are held out and evaluated.")
        k.add_argument("--data", required=True, help="folder of training files (searched recursively)")
        k.add_argument("-o", "--output", required=True, help="run folder, e.g. runs/speech")
        k.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT")
        overwrite(k)
        e.train.add_args(k.add_argument_group(e.id))
        k.set_defaults(func=cmd_train, entry=e)

    p = sub.add_parser("info", help="show what a .jxc file holds", formatter_class=_HelpFormatter,
                       description="Verify a .jxc file (magic, version, CRCs) and summarize its contents.")
    p.add_argument("file", help="a .jxc file")
    p.add_argument("--header", action="store_true", help="also print the codec's JSON header")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(func=cmd_info)
    return ap


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("jaxcodec")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    # ffmpeg runs in a subprocess while JAX's threads exist; the fork is followed by exec
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging()
    name = f"jaxcodec {args.command}"
    try:
        return args.func(args)
    except (BitstreamError, InputError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{name}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{name}: interrupted" + ("; a checkpoint was saved, --resume continues from it"
                                          if getattr(args, "workdir", None) or args.command == "train" else ""),
              file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last net: one line, never a traceback
        if os.environ.get("JAXCODEC_DEBUG"):
            raise
        print(f"{name}: internal error: {type(exc).__name__}: {exc} (set JAXCODEC_DEBUG=1 for the traceback "
              "and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
