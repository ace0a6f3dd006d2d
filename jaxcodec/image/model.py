"""The learned image codec's networks and its rate-distortion loss.

A mean-scale hyperprior (Minnen et al. 2018) with a checkerboard context (He et al. 2021),
variable rate through per-quality channel gains (Cui et al. 2021):

    y   = g_a(x) * gain[q]              analysis, 4 stride-2 5x5 convolutions with GDN
    z   = h_a(y)                        hyper analysis; z is coded with a factorized density
    f   = trunk(round(z))               integer network up to y's resolution
    anchors (i + j even):     (mean, scale index) = head(f, 0)
    the others:               (mean, scale index) = head(f, ctx(anchor symbols))
    y^  = round(y - mean) + mean        the symbols round(y - mean) are coded
    x^  = g_s(y^ / gain'[q])            synthesis: sub-pixel 3x3 convolutions with inverse GDN

Everything that picks a table (trunk, ctx, head) is an integer network (``entropy.intnet``)
that sees only coded integers: the decoder on any machine derives the same means and
tables as the encoder. The context takes the anchors' symbols rather than their values;
the values are a function of the symbols and ``f``, so no information is lost.
One model serves every quality: ``q`` picks the gains and the lambda it was trained for.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxcodec.entropy import intnet
from jaxcodec.entropy.intnet import IntLayer
from jaxcodec.entropy.models import FactorizedDensity, ScaleTable

# CompressAI's MSE ladder (distortion 255^2 * MSE): about 0.1 to 1.3 bits per pixel on Kodak.
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
STRIDE = 64  # g_a (16) x h_a (4): images are padded to a multiple of this


@dataclass(frozen=True)
class ImageModelConfig:
    channels: int = 64  # N: transform width
    latent: int = 96  # M: channels of y
    hyper: int = 64  # channels of z
    param_width: int = 96  # width of the integer entropy-parameter network
    lambdas: tuple[float, ...] = LAMBDAS
    scale_table: ScaleTable = ScaleTable()

    def __post_init__(self) -> None:
        if min(self.channels, self.latent, self.hyper, self.param_width) < 1 or not self.lambdas:
            raise ValueError("widths must be >= 1 and there must be at least one quality")
        if any(not (0 < v < 1e3) for v in self.lambdas) or list(self.lambdas) != sorted(self.lambdas):
            raise ValueError("lambdas must be positive and increasing (quality 1 is the smallest file)")

    @property
    def qualities(self) -> int:
        return len(self.lambdas)

    def param_layers(self) -> dict[str, IntLayer]:
        w = self.param_width
        return {"up1": IntLayer(self.hyper, w, 3, up=2, symbols=True), "up2": IntLayer(w, w, 3, up=2),
                "ctx": IntLayer(self.latent, w, 5, symbols=True), "head1": IntLayer(2 * w, w, 1),
                "head2": IntLayer(w, 2 * self.latent, 1, relu=False)}

    def z_prior(self) -> FactorizedDensity:
        return FactorizedDensity(self.hyper)

    def to_json(self) -> dict:
        t = self.scale_table
        return {"channels": self.channels, "latent": self.latent, "hyper": self.hyper,
                "param_width": self.param_width, "lambdas": list(self.lambdas),
                "scale_table": {"lo": t.lo, "hi": t.hi, "count": t.count}}

    @staticmethod
    def from_json(d: dict) -> ImageModelConfig:
        t = d["scale_table"]
        return ImageModelConfig(int(d["channels"]), int(d["latent"]), int(d["hyper"]), int(d["param_width"]),
                                tuple(float(v) for v in d["lambdas"]),
                                ScaleTable(float(t["lo"]), float(t["hi"]), int(t["count"])))


# ---------------------------------------------------------------------------------------
# transforms


class GDN(nnx.Module):
    """Simplified GDN (Johnston et al. 2019): x_i / (beta_i + sum_j gamma_ij |x_j|);
    the inverse multiplies instead. Absolute values keep beta and gamma positive."""

    def __init__(self, channels: int, inverse: bool = False):
        self.inverse = inverse
        self.beta = nnx.Param(jnp.ones((channels,)))
        self.gamma = nnx.Param(0.1 * jnp.eye(channels) + 1e-3)

    def __call__(self, x: jax.Array) -> jax.Array:
        norm = jnp.abs(self.beta[...]) + 1e-4 + jnp.abs(x) @ jnp.abs(self.gamma[...])
        return x * norm if self.inverse else x / norm


class Up(nnx.Module):
    """x2 upsampling as a 3x3 convolution to 4x the channels and depth-to-space: on XLA's
    CPU backend 2.8-5x faster to train than a 5x5 transposed convolution."""

    def __init__(self, cin: int, cout: int, rngs: nnx.Rngs):
        self.conv = nnx.Conv(cin, 4 * cout, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.conv(x)
        b, h, w, c = y.shape
        return y.reshape(b, h, w, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c // 4)


class Analysis(nnx.Module):
    def __init__(self, cfg: ImageModelConfig, rngs: nnx.Rngs):
        n, m = cfg.channels, cfg.latent
        self.convs = nnx.List([nnx.Conv(a, b, (5, 5), strides=2, padding="SAME", rngs=rngs)
                               for a, b in ((3, n), (n, n), (n, n), (n, m))])
        self.gdns = nnx.List([GDN(n) for _ in range(3)])

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x - 0.5  # pixels in [0, 1], centred
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < 3:
                x = self.gdns[i](x)
        return x


class Synthesis(nnx.Module):
    def __init__(self, cfg: ImageModelConfig, rngs: nnx.Rngs):
        n, m = cfg.channels, cfg.latent
        self.ups = nnx.List([Up(a, b, rngs) for a, b in ((m, n), (n, n), (n, n), (n, 3))])
        self.gdns = nnx.List([GDN(n, inverse=True) for _ in range(3)])

    def __call__(self, y: jax.Array) -> jax.Array:
        for i, up in enumerate(self.ups):
            y = up(y)
            if i < 3:
                y = self.gdns[i](y)
        return y + 0.5


class HyperAnalysis(nnx.Module):
    def __init__(self, cfg: ImageModelConfig, rngs: nnx.Rngs):
        m, n, h = cfg.latent, cfg.channels, cfg.hyper
        self.convs = nnx.List([nnx.Conv(m, n, (3, 3), padding="SAME", rngs=rngs),
                               nnx.Conv(n, n, (5, 5), strides=2, padding="SAME", rngs=rngs),
                               nnx.Conv(n, h, (5, 5), strides=2, padding="SAME", rngs=rngs)])

    def __call__(self, y: jax.Array) -> jax.Array:
        for i, conv in enumerate(self.convs):
            y = conv(y)
            if i < 2:
                y = jax.nn.leaky_relu(y)
        return y


TRANSFORMS = {"g_a": Analysis, "g_s": Synthesis, "h_a": HyperAnalysis}


def graphs(cfg: ImageModelConfig) -> dict[str, nnx.GraphDef]:
    return {k: nnx.split(nnx.eval_shape(lambda c=c: c(cfg, nnx.Rngs(0))))[0] for k, c in TRANSFORMS.items()}


def init_params(cfg: ImageModelConfig, seed: int = 0) -> tuple[dict[str, nnx.GraphDef], dict]:
    """Graph definitions and the trainable parameters of a fresh model."""
    rngs = nnx.Rngs(seed)
    defs, params = {}, {}
    for name, cls in TRANSFORMS.items():
        defs[name], params[name] = nnx.split(cls(cfg, rngs))
    keys = jax.random.split(jax.random.key(seed + 1), len(cfg.param_layers()) + 1)
    params["entropy"] = {k: layer.init(key) for (k, layer), key in zip(cfg.param_layers().items(), keys)}
    params["z_prior"] = cfg.z_prior().init(keys[-1])
    # Rate-distortion theory: the quantizer step goes as 1 / sqrt(lambda); the gains start there.
    lam = np.asarray(cfg.lambdas, np.float64)
    log_gain = 0.5 * np.log(lam / np.exp(np.mean(np.log(lam))))
    params["gain"] = jnp.asarray(np.repeat(log_gain[:, None], cfg.latent, 1), jnp.float32)
    params["inv_gain"] = -params["gain"]
    return defs, params


def checkerboard(h: int, w: int) -> np.ndarray:
    """True at the anchors (i + j even), decoded first."""
    return (np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0


# ---------------------------------------------------------------------------------------
# the entropy parameters, in training (float32, straight-through) and for coding (exact)


def _heads(cfg: ImageModelConfig, p: dict, f, ctx, run, xp):
    layers = cfg.param_layers()
    h = run(layers["head1"], p["head1"], xp.concatenate([f, ctx], -1))
    out = run(layers["head2"], p["head2"], h)
    return out[..., :cfg.latent], out[..., cfg.latent:]


def entropy_parameters(cfg: ImageModelConfig, p: dict, z_hat: jax.Array, y: jax.Array
                       ) -> tuple[jax.Array, jax.Array]:
    """Training: (mean, continuous scale index) of y [B, H, W, M] given round(z)."""
    layers = cfg.param_layers()
    f = intnet.apply(layers["up2"], p["up2"], intnet.apply(layers["up1"], p["up1"], z_hat))
    anchor = jnp.asarray(checkerboard(*y.shape[1:3]))[None, :, :, None]
    mu_a, t_a = _heads(cfg, p, f, jnp.zeros_like(f), intnet.apply, jnp)
    sym = jnp.round(y - mu_a)
    q_anchor = (y - mu_a + jax.lax.stop_gradient(sym - (y - mu_a))) * anchor  # straight-through symbols
    ctx = intnet.apply(layers["ctx"], p["ctx"], q_anchor) * (~anchor)
    mu_n, t_n = _heads(cfg, p, f, ctx, intnet.apply, jnp)
    return jnp.where(anchor, mu_a, mu_n), jnp.where(anchor, t_a, t_n)


def trunk_exact(cfg: ImageModelConfig, q: dict, z_hat: np.ndarray) -> np.ndarray:
    layers = cfg.param_layers()
    return intnet.apply_exact(layers["up2"], q["up2"], intnet.apply_exact(layers["up1"], q["up1"], z_hat))


def anchor_parameters_exact(cfg: ImageModelConfig, q: dict, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, table index) at every position as for an anchor (no context), float64."""
    mu, t = _heads(cfg, q, f, np.zeros_like(f), intnet.apply_exact, np)
    return mu, cfg.scale_table.index(t)


def other_parameters_exact(cfg: ImageModelConfig, q: dict, f: np.ndarray, anchor_symbols: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(mean, table index) of the non-anchors given the anchors' symbols [H, W, M]."""
    anchor = checkerboard(*f.shape[:2])[:, :, None]
    layers = cfg.param_layers()
    ctx = intnet.apply_exact(layers["ctx"], q["ctx"], anchor_symbols * anchor) * (~anchor)
    mu, t = _heads(cfg, q, f, ctx, intnet.apply_exact, np)
    return mu, cfg.scale_table.index(t)


# ---------------------------------------------------------------------------------------
# the rate-distortion loss


def _round_ste(x: jax.Array) -> jax.Array:
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def make_loss(cfg: ImageModelConfig, defs: dict[str, nnx.GraphDef]):
    """loss(params, batch, key, step): mean over the batch of lambda[q] * 255^2 * MSE + bpp.

    Rate: additive uniform noise on y and z (the differentiable proxy); the synthesis
    and the integer networks see straight-through rounded values, as decoding will.
    """
    lambdas = jnp.asarray(cfg.lambdas, jnp.float32)
    z_prior = cfg.z_prior()

    def loss_fn(params, batch, key, step):
        del step
        x, q = batch["x"], batch["q"]
        k_y, k_z = jax.random.split(key)
        g_a, g_s, h_a = (nnx.merge(defs[k], params[k]) for k in ("g_a", "g_s", "h_a"))
        y = g_a(x) * jnp.exp(params["gain"][q])[:, None, None, :]
        z = h_a(y)
        bits_z = z_prior.bits(params["z_prior"], z + jax.random.uniform(k_z, z.shape, minval=-0.5, maxval=0.5))
        mu, t = entropy_parameters(cfg, params["entropy"], _round_ste(z), y)
        noisy = y + jax.random.uniform(k_y, y.shape, minval=-0.5, maxval=0.5)
        bits_y = cfg.scale_table.bits(noisy, t, mu)
        y_hat = _round_ste(y - mu) + mu
        x_hat = g_s(y_hat * jnp.exp(params["inv_gain"][q])[:, None, None, :])
        pixels = x.shape[1] * x.shape[2]
        mse = jnp.mean((x - x_hat) ** 2, axis=(1, 2, 3))
        bpp = (jnp.sum(bits_y, axis=(1, 2, 3)) + jnp.sum(bits_z, axis=(1, 2, 3))) / pixels
        loss = jnp.mean(lambdas[q] * 255.0 ** 2 * mse + bpp)
        psnr = -10 * jnp.log10(jnp.maximum(mse, 1e-10))
        return loss, {"bpp": jnp.mean(bpp), "psnr": jnp.mean(psnr),
                      "bpp_z": jnp.mean(jnp.sum(bits_z, axis=(1, 2, 3)) / pixels)}

    return loss_fn
