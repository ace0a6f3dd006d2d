"""Reconstruction losses for audio codecs and their discriminators: EnCodec's multi-scale
STFT one, HiFi-GAN's multi-period one, and DAC's multi-band split of the STFT one."""

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


MEL_SCALES = {  # (n_fft, n_mels) per resolution; hop n_fft / 4
    "two": ((512, 64), (2048, 64)),
    # DAC: windows 32 to 2048 with 5 to 320 mel bands, from transients to pitch harmonics
    "dac": ((32, 5), (64, 10), (128, 20), (256, 40), (512, 80), (1024, 160), (2048, 320)),
}


def mel_l1(x: jax.Array, y: jax.Array, sample_rate: int, scales: str = "two") -> jax.Array:
    """Mean absolute difference of log-mel spectrograms, averaged over MEL_SCALES[scales]."""
    table = MEL_SCALES[scales]
    return sum(jnp.mean(jnp.abs(log_mel(x, sample_rate, n, n // 4, m) - log_mel(y, sample_rate, n, n // 4, m)))
               for n, m in table) / len(table)


DAC_BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))  # fractions of the bins


class _STFTStack(nnx.Module):
    """The conv stack of one STFT scale (or of one band of it)."""

    def __init__(self, filters: int, *, rngs: nnx.Rngs):
        self.convs = nnx.List([nnx.Conv(2, filters, (3, 9), padding="SAME", rngs=rngs)])
        for d in (1, 2, 4):
            self.convs.append(nnx.Conv(filters, filters, (3, 9), strides=(1, 2), kernel_dilation=(d, 1),
                                       padding="SAME", rngs=rngs))
        self.convs.append(nnx.Conv(filters, filters, (3, 3), padding="SAME", rngs=rngs))

    def __call__(self, h: jax.Array, feats: list[jax.Array]) -> jax.Array:
        for conv in self.convs:
            h = jax.nn.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return h


class STFTDiscriminator(nnx.Module):
    """One scale of EnCodec's MS-STFT discriminator: 2-D convs over the complex STFT.
    With `bands` (DAC's multi-band variant) each frequency band has its own conv stack,
    so low and high bands learn their own features; their outputs meet in the last conv."""

    def __init__(self, n_fft: int, filters: int = 32, bands: tuple[tuple[float, float], ...] | None = None, *,
                 rngs: nnx.Rngs):
        self.n_fft, self.hop = n_fft, n_fft // 4
        bins = n_fft // 2 + 1
        edges = bands or ((0.0, 1.0),)
        self.bands = tuple((round(lo * bins), round(hi * bins)) for lo, hi in edges)
        self.stacks = nnx.List([_STFTStack(filters, rngs=rngs) for _ in self.bands])
        self.out = nnx.Conv(filters, 1, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        spec = stft(x, self.n_fft, self.hop)
        h = jnp.stack([jnp.real(spec), jnp.imag(spec)], axis=-1)  # [B, frames, bins, 2]
        feats: list[jax.Array] = []
        outs = [stack(h[:, :, lo:hi], feats) for (lo, hi), stack in zip(self.bands, self.stacks)]
        return self.out(jnp.concatenate(outs, axis=2)), feats


class MultiScaleSTFTDiscriminator(nnx.Module):
    def __init__(self, sizes=(256, 512, 1024), bands: tuple[tuple[float, float], ...] | None = None, *,
                 rngs: nnx.Rngs):
        self.discs = nnx.List([STFTDiscriminator(n, bands=bands, rngs=rngs) for n in sizes])

    def __call__(self, x: jax.Array):
        return [d(x) for d in self.discs]


class PeriodDiscriminator(nnx.Module):
    """HiFi-GAN's period discriminator: the waveform folded into [T / p, p] columns, so
    each column holds every p-th sample and (k, 1) convs see one periodic phase."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 32, 64, 128), *, rngs: nnx.Rngs):
        self.period = period
        self.convs = nnx.List()
        cin = 1
        for c in channels:
            self.convs.append(nnx.Conv(cin, c, (5, 1), strides=(3, 1), padding="SAME", rngs=rngs))
            cin = c
        self.convs.append(nnx.Conv(cin, cin, (5, 1), padding="SAME", rngs=rngs))
        self.out = nnx.Conv(cin, 1, (3, 1), padding="SAME", rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        pad = (-x.shape[1]) % self.period
        x = jnp.pad(x, ((0, 0), (0, pad)), mode="reflect")
        h = x.reshape(x.shape[0], -1, self.period, 1)
        feats = []
        for conv in self.convs:
            h = jax.nn.leaky_relu(conv(h), 0.1)
            feats.append(h)
        return self.out(h), feats


class MultiPeriodDiscriminator(nnx.Module):
    def __init__(self, periods=(2, 3, 5, 7, 11), *, rngs: nnx.Rngs):
        self.discs = nnx.List([PeriodDiscriminator(p, rngs=rngs) for p in periods])

    def __call__(self, x: jax.Array):
        return [d(x) for d in self.discs]


class Discriminators(nnx.Module):
    """Several discriminators as one: their (logits, features) lists concatenated."""

    def __init__(self, *parts: nnx.Module):
        self.parts = nnx.List(parts)

    def __call__(self, x: jax.Array):
        return [out for part in self.parts for out in part(x)]


DISCRIMINATORS = ("msstft", "dac")  # EnCodec's MS-STFT; DAC's multi-period + multi-band MS-STFT


def make_discriminator(kind: str, *, rngs: nnx.Rngs) -> nnx.Module:
    if kind == "msstft":
        return Discriminators(MultiScaleSTFTDiscriminator(rngs=rngs))
    if kind == "dac":
        return Discriminators(MultiPeriodDiscriminator(rngs=rngs),
                              MultiScaleSTFTDiscriminator((512, 1024, 2048), bands=DAC_BANDS, rngs=rngs))
    raise ValueError(f"discriminator must be one of {DISCRIMINATORS}, not {kind!r}")


def adversarial_losses(disc_graph, disc_params, real: jax.Array, fake: jax.Array):
    """(generator hinge loss, feature matching, discriminator hinge loss).

    Generator terms run the discriminator with its parameters held constant; the
    discriminator term sees the generator's output held constant. So one optimizer step
    on the sum of all three trains each side on its own objective.
    """
    frozen = nnx.merge(disc_graph, jax.lax.stop_gradient(disc_params))
    gen, fm = 0.0, 0.0
    on_fake = frozen(fake)
    n = len(on_fake)
    for (logit_f, feat_f), (_, feat_r) in zip(on_fake, frozen(real)):
        gen = gen + jnp.mean(jax.nn.relu(1.0 - logit_f))
        fm = fm + sum(jnp.mean(jnp.abs(a - jax.lax.stop_gradient(b))) / jnp.maximum(jnp.mean(jnp.abs(b)), 1e-5)
                      for a, b in zip(feat_f, feat_r)) / len(feat_f)
    disc = nnx.merge(disc_graph, disc_params)
    d_loss = 0.0
    for (lr, _), (lf, _) in zip(disc(real), disc(jax.lax.stop_gradient(fake))):
        d_loss = d_loss + jnp.mean(jax.nn.relu(1.0 - lr)) + jnp.mean(jax.nn.relu(1.0 + lf))
    return gen / n, fm / n, d_loss / n
