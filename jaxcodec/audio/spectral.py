"""STFT magnitudes and log-mel spectrograms in JAX, for losses and metrics alike."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=32)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK-style filters [n_fft // 2 + 1, n_mels], area-normalized."""
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lo[None]) / (mid - lo)[None]
    down = (hi[None] - freqs[:, None]) / (hi - mid)[None]
    fb = np.maximum(0.0, np.minimum(up, down))
    return (fb * (2.0 / (hi - lo))[None]).astype(np.float32)


def stft(x: jax.Array, n_fft: int, hop: int) -> jax.Array:
    """Complex STFT [B, frames, n_fft // 2 + 1] of [B, N] signals: periodic Hann window,
    reflect-padded centred frames. The one framing every loss, metric and discriminator uses."""
    pad = n_fft // 2
    xp = jnp.pad(x, ((0, 0), (pad, pad)), mode="reflect")
    frames = (xp.shape[1] - n_fft) // hop + 1
    idx = jnp.arange(frames)[:, None] * hop + jnp.arange(n_fft)[None, :]
    window = jnp.asarray(np.hanning(n_fft + 1)[:-1], jnp.float32)
    return jnp.fft.rfft(xp[:, idx] * window, axis=-1)


def stft_magnitude(x: jax.Array, n_fft: int, hop: int) -> jax.Array:
    """|STFT| of [B, N] signals (see `stft`), kept away from 0 for logs and gradients."""
    spec = stft(x, n_fft, hop)
    return jnp.sqrt(jnp.real(spec) ** 2 + jnp.imag(spec) ** 2 + 1e-9)


def log_mel(x: jax.Array, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 64) -> jax.Array:
    """log10 mel energies [B, frames, n_mels] of [B, N] signals."""
    fb = jnp.asarray(mel_filterbank(sample_rate, n_fft, n_mels))
    return jnp.log10(jnp.maximum(stft_magnitude(x, n_fft, hop) @ fb, 1e-5))
