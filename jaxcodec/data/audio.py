"""Audio input and output: float32 samples [N, C] in [-1, 1], dataset folders, random crops.

Files are read with soundfile (wav, flac, ogg, ...) and, for anything else ffmpeg knows
(mp3, m4a, G.722, video soundtracks), through imageio-ffmpeg's ffmpeg. Resampling is
scipy's polyphase filter.
"""

from __future__ import annotations

import io
import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxcodec.data.media import AUDIO_SUFFIXES, FFMPEG_INPUT_FORMAT, atomic_path, dataset_files, run_ffmpeg
from jaxcodec.errors import InputError

log = logging.getLogger(__name__)
AUDIO_OUTPUTS = {".wav": "PCM_16", ".flac": "PCM_16", ".ogg": "VORBIS", ".aiff": "PCM_16", ".aif": "PCM_16"}


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
    wav = run_ffmpeg([*FFMPEG_INPUT_FORMAT.get(path.suffix.lower(), []), "-i", str(path), "-vn", "-f", "wav",
                      "-acodec", "pcm_f32le", "-"], what=f"cannot read {path} as audio")
    if not wav:
        raise InputError(f"cannot read {path} as audio: no audio stream")
    data, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return data, int(sr)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write wav / flac / aiff (16-bit PCM) or ogg (Vorbis) atomically; [N] or [N, C] float samples."""
    import soundfile as sf

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_OUTPUTS:
        raise InputError(f"cannot write audio as {suffix or 'a file without a suffix'}: "
                         f"use one of {', '.join(AUDIO_OUTPUTS)}")
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(samples, -1.0, 1.0), sample_rate, subtype=AUDIO_OUTPUTS[suffix])


def resampled_length(n: int, sr_in: int, sr_out: int) -> int:
    """Samples that `resample` gives for n input samples (the audio decoder counts code
    frames with it, so it must stay resample's own rule)."""
    return n if sr_in == sr_out else int(round(n * sr_out / sr_in))


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of [N] or [N, C] float samples to round(N * sr_out / sr_in).

    scipy's polyphase filter (Kaiser window): exact rational ratios, and about a thousand
    times faster than direct windowed-sinc interpolation.
    """
    from scipy.signal import resample_poly

    if sr_in <= 0 or sr_out <= 0:
        raise InputError("sample rates must be positive")
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    g = math.gcd(int(sr_in), int(sr_out))
    n_out = resampled_length(x.shape[0], sr_in, sr_out)
    y = resample_poly(np.asarray(x, np.float64), sr_out // g, sr_in // g, axis=0)
    if y.shape[0] < n_out:
        y = np.concatenate([y, np.zeros((n_out - y.shape[0], *y.shape[1:]))])
    return y[:n_out].astype(np.float32)


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
        files = dataset_files(folder, AUDIO_SUFFIXES, "audio files")
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
