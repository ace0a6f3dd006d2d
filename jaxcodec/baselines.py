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
