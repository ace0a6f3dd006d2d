"""Reconstruction losses for audio codecs, and EnCodec's multi-scale STFT discriminator."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxcodec.audio.spectral import log_mel, stft, stft_magnitude

STFT_SIZES = ((512, 128), (1024, 256), (2048, 512))


def multi_resolution_stft(x: jax.Array, y: jax.Array, sizes=STFT_SIZES) -> jax.Array:
    """Spectral convergence + log-magnitude L1, averaged over resolutions."""
    total = 0.0
    for n_fft, hop in sizes:
        mx, my = stft_magnitude(x, n_fft, hop), stft_magnitude(y, n_fft, hop)
        sc = jnp.linalg.norm(my - mx) / jnp.maximum(jnp.linalg.norm(mx), 1e-7)
        total = total + sc + jnp.mean(jnp.abs(jnp.log(mx) - jnp.log(my)))
    return total / len(sizes)


def mel_l1(x: jax.Array, y: jax.Array, sample_rate: int) -> jax.Array:
    """Mean absolute difference of log-mel spectrograms at two resolutions."""
    return 0.5 * sum(jnp.mean(jnp.abs(log_mel(x, sample_rate, n, n // 4) - log_mel(y, sample_rate, n, n // 4)))
                     for n in (512, 2048))


class STFTDiscriminator(nnx.Module):
    """One scale of EnCodec's MS-STFT discriminator: 2-D convs over the complex STFT."""

    def __init__(self, n_fft: int, filters: int = 32, *, rngs: nnx.Rngs):
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.convs = nnx.List([nnx.Conv(2, filters, (3, 9), padding="SAME", rngs=rngs)])
        for d in (1, 2, 4):
            self.convs.append(nnx.Conv(filters, filters, (3, 9), strides=(1, 2), kernel_dilation=(d, 1),
                                       padding="SAME", rngs=rngs))
        self.convs.append(nnx.Conv(filters, filters, (3, 3), padding="SAME", rngs=rngs))
        self.out = nnx.Conv(filters, 1, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        spec = stft(x, self.n_fft, self.hop)
        h = jnp.stack([jnp.real(spec), jnp.imag(spec)], axis=-1)  # [B, frames, bins, 2]
        feats = []
        for conv in self.convs:
            h = jax.nn.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return self.out(h), feats


class MultiScaleSTFTDiscriminator(nnx.Module):
    def __init__(self, sizes=(256, 512, 1024), *, rngs: nnx.Rngs):
        self.discs = nnx.List([STFTDiscriminator(n, rngs=rngs) for n in sizes])

    def __call__(self, x: jax.Array):
        return [d(x) for d in self.discs]


def adversarial_losses(disc_graph, disc_params, real: jax.Array, fake: jax.Array):
    """(generator hinge loss, feature matching, discriminator hinge loss).

    Generator terms run the discriminator with its parameters held constant; the
    discriminator term sees the generator's output held constant. So one optimizer step
    on the sum of all three trains each side on its own objective.
    """
    frozen = nnx.merge(disc_graph, jax.lax.stop_gradient(disc_params))
    gen, fm = 0.0, 0.0
    for (logit_f, feat_f), (_, feat_r) in zip(frozen(fake), frozen(real)):
        gen = gen + jnp.mean(jax.nn.relu(1.0 - logit_f))
        fm = fm + sum(jnp.mean(jnp.abs(a - jax.lax.stop_gradient(b))) / jnp.maximum(jnp.mean(jnp.abs(b)), 1e-5)
                      for a, b in zip(feat_f, feat_r)) / len(feat_f)
    disc = nnx.merge(disc_graph, disc_params)
    d_loss = 0.0
    for (lr, _), (lf, _) in zip(disc(real), disc(jax.lax.stop_gradient(fake))):
        d_loss = d_loss + jnp.mean(jax.nn.relu(1.0 - lr)) + jnp.mean(jax.nn.relu(1.0 + lf))
    n = len(disc.discs)
    return gen / n, fm / n, d_loss / n
