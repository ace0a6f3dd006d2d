"""Video input: frames as uint8 arrays [T, H, W, 3] from anything ffmpeg reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxcodec.errors import InputError


def read_video(path: str | Path, start: int = 0, frames: int | None = None) -> np.ndarray:
    """Read RGB frames ``[start, start + frames)`` of a video file through ffmpeg."""
    import imageio.v2 as iio

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such video file: {path}")
    if start < 0 or (frames is not None and frames < 1):
        raise InputError("start must be >= 0 and frames >= 1")
    try:
        reader = iio.get_reader(path, "ffmpeg")
    except Exception as exc:  # imageio raises several types for unreadable input
        raise InputError(f"cannot read {path} as a video: {exc}") from None
    out = []
    with reader:
        for i, frame in enumerate(reader):
            if i < start:
                continue
            if frames is not None and len(out) == frames:
                break
            out.append(np.asarray(frame)[..., :3])
    if not out:
        raise InputError(f"{path} has no frames at or after frame {start}")
    return np.stack(out)
