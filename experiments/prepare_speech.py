"""Real speech for the audio codec, split by speaker: every voice in jaxcodec.data.speech.SOURCES.

Downloads each Debian package with `apt-get download` (no root needed), extracts its
prompts and decodes each with ffmpeg to 16 kHz mono FLAC (8 kHz packages are upsampled and
only train). Whole speakers are held out (default: June Wallack, fr, and Maxim Topal, ru,
two languages no training prompt is in) under OUT/eval; a tenth of the training speakers'
prompts go to OUT/eval-seen; the rest to OUT/train. OUT/speakers.json lists the split.

    python experiments/prepare_speech.py [--out data/speech16k] [--debs FOLDER] [--held-out a,b]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jaxcodec.data.media import FFMPEG_INPUT_FORMAT, run_ffmpeg
from jaxcodec.data.speech import HELD_OUT_SPEAKERS, SOURCES, destination


def fetch_deb(package: str, folder: Path) -> Path:
    found = sorted(folder.glob(f"{package}_*.deb"))
    if not found:
        proc = subprocess.run(["apt-get", "download", package], cwd=folder, capture_output=True, text=True)
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            raise SystemExit(f"apt-get download {package} failed: {proc.stderr.strip()[-300:]}")
    return found[-1]


def convert(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(["-y", *FFMPEG_INPUT_FORMAT.get(src.suffix, []), "-i", str(src), "-ac", "1", "-ar", "16000",
                "-sample_fmt", "s16", str(dst)], what=f"cannot convert {src}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/speech16k")
    ap.add_argument("--debs", default=None, help="folder of already downloaded .deb files (others are fetched)")
    ap.add_argument("--held-out", default=",".join(HELD_OUT_SPEAKERS),
                    help="speakers kept out of training (default: %(default)s)")
    args = ap.parse_args()
    out = Path(args.out)
    held_out = tuple(s for s in args.held_out.split(",") if s)
    unknown = set(held_out) - {s.speaker for s in SOURCES}
    if unknown:
        raise SystemExit(f"unknown speakers {sorted(unknown)}; known: {sorted({s.speaker for s in SOURCES})}")
    summary: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        debs = Path(args.debs) if args.debs else tmp
        jobs = []
        for source in SOURCES:
            deb = fetch_deb(source.package, debs)
            root = tmp / source.package
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
            files = sorted(root.rglob(f"*{source.suffix}"))
            if not files:
                raise SystemExit(f"{deb} holds no {source.suffix} files")
            for f in files:
                rel = destination(source, f.relative_to(root).as_posix(), held_out)
                jobs.append((f, out / rel))
                entry = summary.setdefault(source.speaker, {"split": {}, "languages": [], "wideband": source.wideband})
                entry["split"][rel.parts[0]] = entry["split"].get(rel.parts[0], 0) + 1
                if source.language not in entry["languages"]:
                    entry["languages"].append(source.language)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda job: convert(*job), jobs))
    (out / "speakers.json").write_text(json.dumps({"held_out": list(held_out), "speakers": summary}, indent=1))
    for speaker, entry in summary.items():
        print(f"{speaker:14s} {'/'.join(entry['languages']):6s} "
              f"{'wideband' if entry['wideband'] else 'narrowband'}: {entry['split']}")
    print(f"{len(jobs)} prompts in {out}/ (train, eval = held-out speakers, eval-seen)")


if __name__ == "__main__":
    main()
