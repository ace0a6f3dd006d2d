"""Video input and output: uint8 RGB frames [T, H, W, 3].

Reads anything ffmpeg reads (mp4, mkv, y4m, ...) through imageio-ffmpeg, or a folder of
image frames (PNG, JPEG, ...) in name order. ``Preprocess`` (start, frame count, center
crop, resize) is recorded in encoded files so ``jaxcodec eval`` can rebuild the exact
reference. Writes mp4 (lossy, or lossless RGB with ``lossless=True``) or a PNG folder.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from jaxcodec.data.media import IMAGE_SUFFIXES, atomic_path, run_ffmpeg
from jaxcodec.errors import InputError



@dataclass(frozen=True)
class Preprocess:
    """Which part of a source video is coded, and at what size (all optional)."""

    start: int = 0
    frames: int | None = None
    crop: tuple[int, int] | None = None  # (width, height), centered
    size: tuple[int, int] | None = None  # (width, height) after cropping

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> Preprocess:
        """From a file's header; raises ValueError on anything but the types to_json writes."""
        def size(v):
            if v is None:
                return None
            if not (isinstance(v, list) and len(v) == 2 and all(type(x) is int and 0 < x <= 1 << 14 for x in v)):
                raise ValueError(f"bad size {v!r}")
            return (v[0], v[1])

        start, frames = d.get("start", 0), d.get("frames")
        if type(start) is not int or start < 0 or not (frames is None or (type(frames) is int and frames > 0)):
            raise ValueError("bad start or frame count")
        return Preprocess(start, frames, size(d.get("crop")), size(d.get("size")))


def _folder_frames(folder: Path, start: int, frames: int | None) -> tuple[float, Iterator[np.ndarray]]:
    """The frame rate (25: a folder has none) and the frames, one at a time."""
    import imageio.v3 as iio

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} holds no image frames ({', '.join(sorted(IMAGE_SUFFIXES))})")
    files = files[start:None if frames is None else start + frames]

    def frames_of() -> Iterator[np.ndarray]:
        first = None
        for f in files:
            try:
                img = np.asarray(iio.imread(f))
            except Exception as exc:
                raise InputError(f"cannot read frame {f}: {exc}") from None
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=-1)
            img = img[..., :3]
            if img.dtype != np.uint8:
                raise InputError(f"{f}: only 8-bit frames are supported (got {img.dtype})")
            first = img.shape if first is None else first
            if img.shape != first:
                raise InputError(f"frames differ in size: {files[0].name} is {first[1]}x{first[0]}, "
                                 f"{f.name} is {img.shape[1]}x{img.shape[0]}")
            yield img

    return 25.0, frames_of()


def _file_frames(path: Path, start: int, frames: int | None) -> tuple[float, Iterator[np.ndarray]]:
    """The frame rate and the frames, decoded by ffmpeg one at a time (nothing is held)."""
    # imageio_ffmpeg directly rather than imageio's plugin, which refuses some suffixes ffmpeg reads (.y4m)
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(reader)
    except Exception as exc:  # ffmpeg's failure surfaces as one of several types
        reader.close()
        raise InputError(f"cannot read {path} as a video: {str(exc).strip().splitlines()[0]}") from None
    width, height = meta["size"]

    def frames_of() -> Iterator[np.ndarray]:
        count = 0
        try:
            for i, frame in enumerate(reader):
                if i < start:
                    continue
                if frames is not None and count == frames:
                    break
                count += 1
                yield np.frombuffer(frame, np.uint8).reshape(height, width, 3)
        except Exception as exc:  # a damaged tail ends the video; a video with no readable frame is an error
            if not count:
                raise InputError(f"cannot decode {path}: {str(exc).strip().splitlines()[0]}") from None
        finally:
            reader.close()

    return float(meta.get("fps") or 25.0), frames_of()


def center_crop(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    if width > w or height > h:
        raise InputError(f"cannot crop {width}x{height} out of {w}x{h} frames")
    top, left = (h - height) // 2, (w - width) // 2
    return frames[:, top:top + height, left:left + width]


def resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average when shrinking (exact box filter for integer factors), bicubic else."""
    from PIL import Image

    h, w = frames.shape[1:3]
    if (w, h) == (width, height):
        return frames
    method = Image.Resampling.BOX if width <= w and height <= h else Image.Resampling.BICUBIC
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), method)) for f in frames])


def _open(path: Path, pre: Preprocess) -> tuple[float, Iterator[np.ndarray]]:
    if pre.start < 0 or (pre.frames is not None and pre.frames < 1):
        raise InputError("--start must be >= 0 and --frames >= 1")
    if path.is_dir():
        return _folder_frames(path, pre.start, pre.frames)
    if path.is_file():
        return _file_frames(path, pre.start, pre.frames)
    raise InputError(f"no such video file or frame folder: {path}")


def _prepare(frames: np.ndarray, pre: Preprocess) -> np.ndarray:
    if pre.crop is not None:
        frames = center_crop(frames, *pre.crop)
    if pre.size is not None:
        frames = resize(frames, *pre.size)
    return np.ascontiguousarray(frames)


def _no_frames(path: Path, pre: Preprocess) -> InputError:
    return InputError(f"{path} has no frames" + (f" at or after frame {pre.start}" if pre.start else ""))


def read_video(path: str | Path, pre: Preprocess = Preprocess()) -> tuple[np.ndarray, float]:
    """Frames [T, H, W, 3] uint8 and the frame rate, after `pre` (start/frames/crop/size)."""
    path = Path(path)
    fps, frames = _open(path, pre)
    frames = list(frames)
    if not frames:
        raise _no_frames(path, pre)
    return _prepare(np.stack(frames), pre), fps


def stream_video(path: str | Path, group: int, pre: Preprocess = Preprocess()
                 ) -> tuple[float, Iterator[np.ndarray]]:
    """The frame rate and the video as groups of `group` frames [n, H, W, 3] (the last may
    be shorter), each after `pre`; at most one group (and one frame being read) is held,
    so memory does not grow with the video's length."""
    path = Path(path)
    if group < 1:
        raise InputError("a group holds at least one frame")
    fps, frames = _open(path, pre)

    def groups() -> Iterator[np.ndarray]:
        held, sent = [], False
        for frame in frames:
            held.append(frame)
            if len(held) == group:
                yield _prepare(np.stack(held), pre)
                held, sent = [], True
        if held:
            yield _prepare(np.stack(held), pre)
        elif not sent:
            raise _no_frames(path, pre)

    return fps, groups()


def count_frames(path: str | Path, pre: Preprocess = Preprocess()) -> tuple[int, float]:
    """How many frames `pre` selects, and the frame rate (a file is decoded once by ffmpeg
    to count them), for splitting a video before reading it."""
    path = Path(path)
    fps = 25.0
    if path.is_dir():
        total = sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif path.is_file():
        import imageio_ffmpeg

        try:
            reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
            fps = float(next(reader).get("fps") or fps)
            reader.close()
            total = imageio_ffmpeg.count_frames_and_secs(str(path))[0]
        except Exception as exc:  # ffmpeg's failure surfaces as one of several types
            raise InputError(f"cannot read {path} as a video: {str(exc).strip().splitlines()[0]}") from None
    else:
        raise InputError(f"no such video file or frame folder: {path}")
    count = max(total - pre.start, 0)
    count = count if pre.frames is None else min(count, pre.frames)
    if count < 1:
        raise _no_frames(path, pre)
    return count, fps


def pad_to(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Edge-replicate frames at the bottom and right to the size a network renders."""
    h, w = frames.shape[1:3]
    if h > height or w > width:
        raise ValueError("cannot pad to a smaller size")
    return np.pad(frames, ((0, 0), (0, height - h), (0, width - w), (0, 0)), mode="edge")


VIDEO_OUTPUTS = {".mp4": "H.264", ".mkv": "H.264", ".mov": "H.264", ".y4m": "raw 4:4:4 Y4M", ".gif": "GIF"}


def _write_png_folder(folder: Path, frames: np.ndarray, overwrite: bool) -> str:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    old = sorted(folder.glob("frame_*.png"))
    if old and not overwrite:
        raise InputError(f"{folder} already holds {len(old)} frames: pass -y/--overwrite to replace them")
    for f in old:  # never leave an older, longer sequence's frames mixed in
        f.unlink()
    digits = max(5, len(str(len(frames))))
    for i, f in enumerate(frames):
        with atomic_path(folder / f"frame_{i + 1:0{digits}d}.png") as tmp:
            iio.imwrite(tmp, f, extension=".png")
    return f"{len(frames)} PNG frames in {folder}/"


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0, lossless: bool = False,
                overwrite: bool = True) -> str:
    """Write mp4/mkv/mov (H.264), y4m, gif, or PNG frames when `path` is a folder or has
    no suffix; atomically, checking ffmpeg's result. Returns what was written.

    Lossy H.264 is 4:4:4 at crf 12 (any width and height work); lossless is libx264rgb,
    bit-exact RGB.
    """
    path = Path(path)
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        raise InputError(f"frame rate {fps} is outside (0, 1000]")
    if path.is_dir() or path.suffix == "":
        return _write_png_folder(path, frames, overwrite)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_OUTPUTS:
        raise InputError(f"cannot write {suffix} video: write {', '.join(VIDEO_OUTPUTS)} or a folder of PNG frames")
    t, h, w = frames.shape[:3]
    kind = VIDEO_OUTPUTS[suffix]
    if suffix == ".y4m":
        codec = ["-pix_fmt", "yuv444p", "-strict", "-1", "-f", "yuv4mpegpipe"]
    elif suffix == ".gif":
        codec = ["-filter_complex", "split[a][b];[a]palettegen[p];[b][p]paletteuse", "-f", "gif"]
    elif lossless:
        codec = ["-c:v", "libx264rgb", "-crf", "0", "-preset", "medium", "-pix_fmt", "rgb24"]
        kind = "lossless RGB H.264"
    else:
        codec = ["-c:v", "libx264", "-crf", "12", "-preset", "medium", "-pix_fmt", "yuv444p"]
        kind = "H.264 4:4:4, crf 12"
    with atomic_path(path) as tmp:
        run_ffmpeg(["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-",
                    *codec, str(tmp)], stdin=np.ascontiguousarray(frames).tobytes(), what=f"cannot write {path}")
        if tmp.stat().st_size == 0:
            raise InputError(f"ffmpeg wrote nothing to {path}")
    return f"{t} frames to {path} ({kind}, {fps:g} fps)"


def frame_count_ok(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError("frames must be a uint8 array [T, H, W, 3]")
    if frames.shape[0] == 0:
        raise InputError("the video has no frames")
    if min(frames.shape[1:3]) < 1 or math.prod(frames.shape[1:3]) < 4:
        raise InputError("frames must be at least 2x2 pixels")
