"""The ``jaxcodec`` command line: encode, decode and inspect .jxc files."""

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


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


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


def cmd_encode(args: argparse.Namespace) -> int:
    src, out = Path(args.input), Path(args.output)
    if not src.is_file():
        raise InputError(f"no such file: {src}")
    t0 = time.perf_counter()
    if args.codec == "bytes":
        from jaxcodec.codecs import bytes_order0

        c = bytes_order0.encode(src.read_bytes())
    else:  # pragma: no cover - argparse restricts the choices
        raise InputError(f"unknown codec {args.codec}")
    size = container.write(out, c)
    print(f"wrote {out}: {_human(size)} ({size * 8 / max(src.stat().st_size, 1):.3f} bits per input byte) "
          f"in {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    codecs = load_codecs()
    c = container.read(args.input, codecs)
    t0 = time.perf_counter()
    message = codecs[c.codec].decode_to(c, Path(args.output))
    print(f"{message} in {time.perf_counter() - t0:.2f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="jaxcodec",
        description="Learned compression in JAX: encode media to .jxc files, decode and inspect them.")
    ap.add_argument("--version", action="version", version=f"jaxcodec {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="show what a .jxc file holds",
                       description="Verify a .jxc file (magic, version, CRCs) and summarize its contents.")
    p.add_argument("file", help="a .jxc file")
    p.add_argument("--header", action="store_true", help="also print the codec's JSON header")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("encode", help="compress a file to .jxc",
                       description="Compress INPUT into a .jxc file. The file is written atomically: "
                                   "a failed encode never leaves a partial output.")
    p.add_argument("input", help="file to compress")
    p.add_argument("-o", "--output", required=True, help="output .jxc path")
    p.add_argument("--codec", choices=["bytes"], default="bytes",
                   help="bytes: lossless order-0 coding of any file (default)")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="rebuild the original from a .jxc file",
                       description="Decode a .jxc file; the codec is read from the file itself.")
    p.add_argument("input", help="a .jxc file")
    p.add_argument("-o", "--output", required=True, help="where to write the decoded media")
    p.set_defaults(func=cmd_decode)
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
