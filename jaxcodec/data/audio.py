"""Audio input and output: float32 samples [N, C] in [-1, 1], dataset folders, random crops.

Files are read with soundfile (wav, flac, ogg, ...) and, for anything else ffmpeg knows
(mp3, m4a, G.722, video soundtracks), through imageio-ffmpeg's ffmpeg. Resampling is a
Kaiser-windowed sinc interpolator in NumPy, vectorized and deterministic.
"""

from __future__ import annotations

import io
import logging
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxcodec.errors import InputError

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".g722"}
_FFMPEG_FORMAT = {".g722": ["-f", "g722"]}


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples [N, C] float32 and the sample rate."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such audio file: {path}")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        return data, int(sr)
    except Exception:  # soundfile raises RuntimeError / LibsndfileError / TypeError
        pass
    from jaxcodec.baselines import ffmpeg_exe

    cmd = [ffmpeg_exe(), "-loglevel", "error", *_FFMPEG_FORMAT.get(path.suffix.lower(), []), "-i", str(path),
           "-vn", "-f", "wav", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"cannot read {path} as audio: {msg[-1] if msg else 'no audio stream'}")
    data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    return data, int(sr)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write wav (16-bit PCM) or flac; [N] or [N, C] float samples."""
    import soundfile as sf

    path = Path(path)
    subtype = "PCM_16" if path.suffix.lower() in (".wav", ".flac") else None
    sf.write(path, np.clip(samples, -1.0, 1.0), sample_rate, subtype=subtype)


def resample(x: np.ndarray, sr_in: int, sr_out: int, half_width: int = 32, beta: float = 8.0,
             chunk: int = 1 << 16) -> np.ndarray:
    """Band-limited resampling of [N] or [N, C] float samples (windowed-sinc interpolation).

    The output has round(N * sr_out / sr_in) samples; the low-pass cutoff sits at the
    lower Nyquist frequency, with a Kaiser window of 2 * half_width taps.
    """
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    if sr_in <= 0 or sr_out <= 0:
        raise InputError("sample rates must be positive")
    squeeze = x.ndim == 1
    x2 = (x[:, None] if squeeze else x).astype(np.float64)
    n_out = int(round(x2.shape[0] * sr_out / sr_in))
    ratio = sr_in / sr_out
    cutoff = min(1.0, 1.0 / ratio)  # relative to the input Nyquist
    padded = np.pad(x2, ((half_width, half_width + 1), (0, 0)))
    taps = np.arange(-half_width + 1, half_width + 1)
    out = np.empty((n_out, x2.shape[1]), np.float64)
    for start in range(0, n_out, chunk):
        t = np.arange(start, min(start + chunk, n_out)) * ratio
        base = np.floor(t).astype(np.int64)
        frac = t - base
        d = frac[:, None] - taps[None, :]  # distance of each tap from the output instant
        window = np.i0(beta * np.sqrt(np.clip(1 - (d / (half_width + 1)) ** 2, 0, 1))) / np.i0(beta)
        w = cutoff * np.sinc(cutoff * d) * window
        idx = base[:, None] + taps[None, :] + half_width
        out[start:start + len(t)] = np.einsum("nk,nkc->nc", w, padded[idx])
    out = out.astype(np.float32)
    return out[:, 0] if squeeze else out


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """A file as mono float32 at `sample_rate`."""
    data, sr = read_audio(path)
    if data.shape[0] == 0:
        raise InputError(f"{path} holds no samples")
    return resample(data.mean(axis=1), sr, sample_rate)


@dataclass
class AudioFolder:
    """Every readable audio file under a folder, mono at one rate, split train / validation.

    The split is a fixed function of each file's path relative to the folder, so it does
    not change when files are added elsewhere.
    """

    train: list[np.ndarray]
    valid: list[np.ndarray]
    train_names: list[str]
    valid_names: list[str]
    sample_rate: int

    @staticmethod
    def load(folder: str | Path, sample_rate: int = 16000, valid_percent: float = 10.0) -> AudioFolder:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"no such data folder: {folder}")
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError(f"{folder} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
        out = AudioFolder([], [], [], [], sample_rate)
        skipped = []
        for f in files:
            try:
                x = load_mono(f, sample_rate)
            except InputError as exc:
                skipped.append(f.name)
                log.warning("skipping unreadable audio file %s: %s", f, exc)
                continue
            rel = f.relative_to(folder).as_posix()
            is_valid = zlib.crc32(rel.encode()) % 1000 < valid_percent * 10
            (out.valid if is_valid else out.train).append(x)
            (out.valid_names if is_valid else out.train_names).append(rel)
        if not out.train:
            raise InputError(f"no readable training audio in {folder}" +
                             (f" (skipped {len(skipped)} unreadable files)" if skipped else ""))
        return out

    def sampler(self, batch: int, length: int, seed: int):
        """A function step -> [batch, length] random crops (files weighted by length)."""
        lengths = np.array([len(x) for x in self.train], np.float64)
        probs = lengths / lengths.sum()

        def sample(step: int) -> np.ndarray:
            rng = np.random.default_rng([seed, step])
            out = np.zeros((batch, length), np.float32)
            for i, k in enumerate(rng.choice(len(self.train), batch, p=probs)):
                x = self.train[k]
                if len(x) <= length:
                    out[i, :len(x)] = x
                else:
                    start = rng.integers(0, len(x) - length)
                    out[i] = x[start:start + length]
            return out

        return sample
