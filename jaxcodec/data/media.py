"""What kind of media a path holds, the ffmpeg that reads and writes it, and the small
parsers of user-facing quantities ('0.3M', '320x160').

The ground floor: every reader, writer, codec and the CLI take suffixes and ffmpeg from
here, so a format is added in one place.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import math
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jaxcodec.errors import InputError

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".mpg", ".mpeg", ".ts",
                            ".gif"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".g722",
                            ".gsm"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
# Formats ffmpeg cannot recognise from the content alone.
FFMPEG_INPUT_FORMAT = {".g722": ["-f", "g722"], ".gsm": ["-f", "gsm"]}


def media_kind(path: str | Path) -> str | None:
    """'video' for video files and folders of frames, 'audio' for audio files, 'image' for
    still images, else None."""
    path = Path(path)
    if path.is_dir():
        return "video"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def dataset_files(folder: str | Path, suffixes: frozenset[str], what: str) -> list[Path]:
    """The files under a dataset folder (any depth) with one of `suffixes`, sorted; an
    InputError naming `what` the folder should hold when it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no such data folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise InputError(f"{folder} holds no {what} ({', '.join(sorted(suffixes))})")
    return files


def ffmpeg_exe() -> str:
    """The ffmpeg binary that imageio-ffmpeg ships (with x264, x265 and libopus)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], *, stdin: bytes | None = None, what: str = "ffmpeg failed") -> bytes:
    """Run ffmpeg quietly; a failure becomes an InputError with ffmpeg's own last line."""
    no_stdin = ["-nostdin"] if stdin is None else []  # ffmpeg must not wait for keys on a terminal
    proc = subprocess.run([ffmpeg_exe(), *no_stdin, "-hide_banner", "-loglevel", "error", *args], input=stdin,
                          capture_output=True)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"{what}: {lines[-1] if lines else f'ffmpeg exit status {proc.returncode}'}")
    return proc.stdout


def parse_count(text: str) -> float:
    """'0.75M', '300k', '1500000' -> a positive finite number."""
    t = str(text).strip().lower()
    mult = {"k": 1e3, "m": 1e6}.get(t[-1:], 1.0)
    try:
        value = float(t[:-1] if t[-1:] in ("k", "m") else t) * mult
    except ValueError:
        raise InputError(f"expected a count like 0.3M or 300k, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"expected a positive count, got {text!r}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """'320x160' -> (320, 160)."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise InputError(f"sizes are written WIDTHxHEIGHT, e.g. 320x160 (got {text!r})") from None
    if w < 1 or h < 1:
        raise InputError(f"size must be positive (got {text!r})")
    return w, h


def cli_type(convert: Callable[[str], Any], lo: float | None = None) -> Callable[[str], Any]:
    """An argparse `type` from a converter: NaN, infinities and values below `lo` refused
    with a one-line message instead of a traceback."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except (InputError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc) if isinstance(exc, InputError) else f"invalid value {text!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if lo is not None and value < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo:g}, got {text!r}")
        return value

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def check_output(path: str | os.PathLike, overwrite: bool = False, folder_ok: bool = False) -> Path:
    """Refuse an output location before any work is spent on it (ffmpeg's -y habit)."""
    path = Path(path)
    if path.is_dir() and not folder_ok:
        raise InputError(f"{path} is a folder: give a file name, e.g. {path / 'out.jxc'}")
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"cannot write {path}: the folder {path.parent} is not writable")
    if (path.exists() or path.is_symlink()) and not path.is_dir() and not overwrite:
        raise InputError(f"{path} already exists: pass -y/--overwrite to replace it")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside `path` that becomes `path` only if the block succeeds.

    The temp name keeps the suffix (ffmpeg picks its muxer by it). A symlink at `path`
    is replaced, never followed. Temp files left by a killed earlier write are removed.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp{glob.escape(path.suffix)}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would leak into the final file
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
