"""Real 16 kHz speech for the audio codec: Debian's asterisk-core-sounds-en-g722 prompts.

Downloads the package with apt-get (no root needed for `apt-get download`), extracts its
568 G.722 prompts (one speaker, about 25 minutes), decodes each with ffmpeg to 16 kHz mono
FLAC, and splits them by a fixed hash of the file name: 10% under OUT/eval (held out, for
bench_audio.py), the rest under OUT/train.

    python experiments/prepare_speech.py [--out data/speech16k] [--deb path/to/package.deb]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import zlib
from pathlib import Path

from jaxcodec.data.media import FFMPEG_INPUT_FORMAT, run_ffmpeg

PACKAGE = "asterisk-core-sounds-en-g722"


def held_out(name: str) -> bool:
    return zlib.crc32(name.encode()) % 10 == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/speech16k")
    ap.add_argument("--deb", default=None, help="an already downloaded .deb of the package")
    args = ap.parse_args()
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        deb = Path(args.deb) if args.deb else None
        if deb is None:
            subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=True, capture_output=True)
            deb = next(tmp.glob(f"{PACKAGE}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(tmp / "x")], check=True)
        files = sorted((tmp / "x").rglob("*.g722"))
        if not files:
            raise SystemExit(f"{deb} holds no .g722 files")
        counts = {"train": 0, "eval": 0}
        for f in files:
            name = f.relative_to(tmp / "x").as_posix().replace("/", "_").removesuffix(".g722")
            name = name.removeprefix("usr_share_asterisk_sounds_")
            split = "eval" if held_out(name) else "train"
            dst = out / split / f"{name}.flac"
            dst.parent.mkdir(parents=True, exist_ok=True)
            run_ffmpeg(["-y", *FFMPEG_INPUT_FORMAT[".g722"], "-i", str(f), "-ac", "1", "-ar", "16000",
                        "-sample_fmt", "s16", str(dst)], what=f"cannot convert {f}")
            counts[split] += 1
    print(f"{counts['train']} training and {counts['eval']} held-out prompts in {out}/")


if __name__ == "__main__":
    main()
