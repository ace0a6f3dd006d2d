"""What users would pick instead: x264 / x265 (and Opus) through imageio-ffmpeg's ffmpeg.

Frames go in as raw RGB, come back as raw RGB, and are measured with the same metrics
as ours. Rates count the elementary stream only (no mp4 container), which favours the
baselines slightly. Video is coded as 4:2:0, what these encoders are normally used with.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxcodec.data.media import run_ffmpeg
from jaxcodec.errors import InputError
from jaxcodec.metrics import frame_metrics

ENCODERS = {"x264": ("libx264", "h264"), "x265": ("libx265", "hevc")}


@dataclass(frozen=True)
class BaselinePoint:
    codec: str
    crf: int
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    encode_s: float


def run_x26x(frames: np.ndarray, codec: str = "x264", crf: int = 28, preset: str = "medium",
             fps: float = 25.0) -> tuple[BaselinePoint, np.ndarray]:
    """Encode uint8 frames [T, H, W, 3] with x264/x265 at a CRF; decode and measure."""
    if codec not in ENCODERS:
        raise InputError(f"unknown baseline {codec!r}; choose from {sorted(ENCODERS)}")
    t, h, w = frames.shape[:3]
    if h % 2 or w % 2:
        raise InputError(f"4:2:0 baselines need even frame sizes, got {w}x{h}")
    lib, fmt = ENCODERS[codec]
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / f"video.{fmt}"
        extra = ["-x265-params", "log-level=error"] if codec == "x265" else []
        t0 = time.perf_counter()
        run_ffmpeg(["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
                    "-c:v", lib, "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", *extra, "-f", fmt,
                    str(stream)], stdin=np.ascontiguousarray(frames).tobytes(), what=f"{codec} failed")
        seconds = time.perf_counter() - t0
        size = stream.stat().st_size
        out = run_ffmpeg(["-i", str(stream), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         what=f"decoding the {codec} stream failed")
    decoded = np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)[:t]
    if decoded.shape[0] != t:
        raise RuntimeError(f"{codec} returned {decoded.shape[0]} of {t} frames")
    m = frame_metrics(frames, decoded)
    return BaselinePoint(codec, crf, size, 8 * size / (t * h * w), m["psnr"], m["ms_ssim"], seconds), decoded


def rd_curve(frames: np.ndarray, codec: str, crfs: list[int], preset: str = "medium",
             fps: float = 25.0) -> list[BaselinePoint]:
    return [run_x26x(frames, codec, crf, preset, fps)[0] for crf in crfs]


def run_opus(samples: np.ndarray, sample_rate: int, kbps: float) -> tuple[bytes, np.ndarray, float, float]:
    """Opus (libopus, application voip, in Ogg) at a target bitrate: (file bytes, decoded
    mono samples at `sample_rate` with the input's length, encode seconds, decode seconds).
    Both times include starting ffmpeg, as a user running the tool would pay it."""
    pcm = np.clip(np.asarray(samples, np.float32), -1, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.opus"
        t0 = time.perf_counter()
        run_ffmpeg(["-y", "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "-", "-c:a", "libopus",
                    "-b:a", f"{kbps * 1000:.0f}", "-application", "voip", str(path)], stdin=pcm.tobytes(),
                   what="opus failed")
        seconds = time.perf_counter() - t0
        data = path.read_bytes()
        t0 = time.perf_counter()
        out = run_ffmpeg(["-i", str(path), "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-"],
                         what="decoding the opus stream failed")
        decode_seconds = time.perf_counter() - t0
    decoded = np.frombuffer(out, np.float32)
    decoded = np.pad(decoded, (0, max(0, len(pcm) - len(decoded))))[:len(pcm)]
    return data, decoded, seconds, decode_seconds


# ---------------------------------------------------------------------------------------
# still images: JPEG, WebP and AVIF through Pillow, HEVC intra through x265 (as BPG does)

IMAGE_BASELINES = {
    "jpeg": (5, 10, 20, 30, 45, 60, 75, 85, 92),  # Pillow quality, 4:2:0 (libjpeg's default)
    "webp": (5, 15, 30, 45, 60, 75, 85, 95),
    "avif": (10, 25, 40, 55, 70, 80, 90),
    "hevc": (50, 45, 40, 36, 32, 28, 24, 20),  # x265 CRF, one intra frame, 4:2:0 like BPG's default
}


def run_image_codec(image: np.ndarray, codec: str, quality: int) -> tuple[int, np.ndarray, float, float]:
    """Code an RGB uint8 image [H, W, 3]: (file bytes, decoded image, encode s, decode s).
    Pillow's formats count the whole file; HEVC the elementary stream (parameter sets
    included: what BPG stores beside its small header)."""
    import io

    from PIL import Image

    h, w = image.shape[:2]
    if codec == "hevc":
        if h % 2 or w % 2:
            raise InputError("the HEVC baseline needs even image sizes")
        with tempfile.TemporaryDirectory() as tmp:
            stream = Path(tmp) / "image.hevc"
            t0 = time.perf_counter()
            run_ffmpeg(["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-", "-frames:v", "1",
                        "-c:v", "libx265", "-preset", "medium", "-crf", str(quality), "-pix_fmt", "yuv420p",
                        "-x265-params", "log-level=error:keyint=1:info=0", "-f", "hevc", str(stream)],
                       stdin=np.ascontiguousarray(image).tobytes(), what="x265 failed")
            t1 = time.perf_counter()
            out = run_ffmpeg(["-i", str(stream), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], what="HEVC decode failed")
            t2 = time.perf_counter()
            size = stream.stat().st_size
        return size, np.frombuffer(out, np.uint8)[:h * w * 3].reshape(h, w, 3), t1 - t0, t2 - t1
    formats = {"jpeg": ("JPEG", {}), "webp": ("WEBP", {"method": 6}), "avif": ("AVIF", {})}
    if codec not in formats:
        raise InputError(f"unknown image baseline {codec!r}; choose from {sorted(IMAGE_BASELINES)}")
    fmt, extra = formats[codec]
    buf = io.BytesIO()
    t0 = time.perf_counter()
    Image.fromarray(image).save(buf, fmt, quality=quality, **extra)
    t1 = time.perf_counter()
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        decoded = np.asarray(im.convert("RGB"))
    t2 = time.perf_counter()
    return len(data), decoded, t1 - t0, t2 - t1
