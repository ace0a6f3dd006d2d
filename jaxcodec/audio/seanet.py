"""SEANet encoder and decoder (SoundStream / EnCodec), 1-D convolutions in Flax NNX.

Encoder: conv k7 -> per stride r: residual unit (dilated k3 -> k1, ELU) and a strided
conv (kernel 2r) doubling the channels -> ELU -> conv k7 to the latent dimension.
The decoder mirrors it with transposed convolutions. ``causal=True`` pads only on the
left (streaming); the default pads symmetrically. Layout is [batch, time, channels].
``activation="snake"`` replaces every ELU by DAC's Snake, x + sin^2(a x) / a with a learned
per channel: a periodic bias that suits waveforms. EnCodec's LSTM and weight
normalization are left out to keep CPU training fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from jaxcodec.audio import config_json


@dataclass(frozen=True)
class SEANetConfig:
    sample_rate: int = 16000
    channels: int = 32
    strides: tuple[int, ...] = (2, 4, 5, 8)
    latent_dim: int = 64
    residual_layers: int = 1
    dilation_base: int = 2
    causal: bool = False
    activation: str = "elu"  # or "snake"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {self.activation!r}")

    @property
    def hop(self) -> int:
        out = 1
        for s in self.strides:
            out *= s
        return out

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def to_json(self) -> dict:
        return config_json(self, ("activation",))

    @staticmethod
    def from_json(d: dict) -> SEANetConfig:
        d = dict(d)
        d["strides"] = tuple(int(s) for s in d["strides"])
        return SEANetConfig(**d)


def snake(x: jax.Array, alpha: jax.Array) -> jax.Array:
    """Snake (Ziyin et al. 2020, used by BigVGAN and DAC): x + sin^2(alpha x) / alpha."""
    return x + jnp.sin(alpha * x) ** 2 / (alpha + 1e-9)


class Snake(nnx.Module):
    def __init__(self, channels: int):
        self.alpha = nnx.Param(jnp.ones((channels,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return snake(x, self.alpha[...])


class ELU(nnx.Module):
    """ELU as a module (no parameters), so both activations plug in the same way."""

    def __init__(self, channels: int):
        del channels

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.elu(x)


ACTIVATIONS = {"elu": ELU, "snake": Snake}


class Conv1d(nnx.Module):
    """Conv with explicit padding: causal (left only) or centred, so lengths are exact."""

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1, dilation: int = 1,
                 causal: bool = False, rngs: nnx.Rngs):
        total = (kernel - 1) * dilation - (stride - 1)
        total = max(total, 0)
        self.pad = (total, 0) if causal else (total - total // 2, total // 2)
        self.conv = nnx.Conv(cin, cout, (kernel,), strides=(stride,), kernel_dilation=(dilation,),
                             padding="VALID", rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(jnp.pad(x, ((0, 0), self.pad, (0, 0))))


class ConvTranspose1d(nnx.Module):
    """Upsampling by `stride` with kernel 2 * stride; output length = input * stride."""

    def __init__(self, cin: int, cout: int, stride: int, *, causal: bool, rngs: nnx.Rngs):
        self.stride, self.causal = stride, causal
        self.conv = nnx.ConvTranspose(cin, cout, (2 * stride,), strides=(stride,), padding="VALID", rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.conv(x)  # length (T - 1) * s + 2s = T * s + s
        extra = y.shape[1] - x.shape[1] * self.stride
        left = 0 if self.causal else extra // 2
        return y[:, left:left + x.shape[1] * self.stride]


class ResidualUnit(nnx.Module):
    def __init__(self, dim: int, dilation: int, causal: bool, activation: str = "elu", *, rngs: nnx.Rngs):
        hidden = dim // 2
        act = ACTIVATIONS[activation]
        self.act1, self.act2 = act(dim), act(hidden)
        self.conv1 = Conv1d(dim, hidden, 3, dilation=dilation, causal=causal, rngs=rngs)
        self.conv2 = Conv1d(hidden, dim, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.conv2(self.act2(self.conv1(self.act1(x))))


class SEANetEncoder(nnx.Module):
    def __init__(self, cfg: SEANetConfig, *, rngs: nnx.Rngs):
        c = cfg.channels
        act = ACTIVATIONS[cfg.activation]
        self.first = Conv1d(1, c, 7, causal=cfg.causal, rngs=rngs)
        self.units = nnx.List()
        self.downs = nnx.List()
        self.acts = nnx.List()
        for s in cfg.strides:
            self.units.append(nnx.List([ResidualUnit(c, cfg.dilation_base ** j, cfg.causal, cfg.activation, rngs=rngs)
                                        for j in range(cfg.residual_layers)]))
            self.acts.append(act(c))
            self.downs.append(Conv1d(c, 2 * c, 2 * s, stride=s, causal=cfg.causal, rngs=rngs))
            c *= 2
        self.last_act = act(c)
        self.last = Conv1d(c, cfg.latent_dim, 7, causal=cfg.causal, rngs=rngs)

    def __call__(self, wav: jax.Array) -> jax.Array:
        """[B, N] samples (N a multiple of the hop) -> [B, N / hop, latent_dim]."""
        x = self.first(wav[..., None])
        for units, act, down in zip(self.units, self.acts, self.downs):
            for unit in units:
                x = unit(x)
            x = down(act(x))
        return self.last(self.last_act(x))


class SEANetDecoder(nnx.Module):
    def __init__(self, cfg: SEANetConfig, *, rngs: nnx.Rngs):
        c = cfg.channels * 2 ** len(cfg.strides)
        act = ACTIVATIONS[cfg.activation]
        self.first = Conv1d(cfg.latent_dim, c, 7, causal=cfg.causal, rngs=rngs)
        self.ups = nnx.List()
        self.units = nnx.List()
        self.acts = nnx.List()
        for s in reversed(cfg.strides):
            self.acts.append(act(c))
            self.ups.append(ConvTranspose1d(c, c // 2, s, causal=cfg.causal, rngs=rngs))
            c //= 2
            self.units.append(nnx.List([ResidualUnit(c, cfg.dilation_base ** j, cfg.causal, cfg.activation, rngs=rngs)
                                        for j in range(cfg.residual_layers)]))
        self.last_act = act(c)
        self.last = Conv1d(c, 1, 7, causal=cfg.causal, rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        """[B, T, latent_dim] -> [B, T * hop] samples."""
        x = self.first(z)
        for act, up, units in zip(self.acts, self.ups, self.units):
            x = up(act(x))
            for unit in units:
                x = unit(x)
        return self.last(self.last_act(x))[..., 0]
