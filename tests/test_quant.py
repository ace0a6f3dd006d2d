"""Quantization-aware training of INR weights: the rate it trains on is the rate it pays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcodec.entropy import coder
from jaxcodec.inr import quant


@pytest.mark.parametrize("rel_step", [1 / 64, 1 / 16, 1 / 4])
@pytest.mark.parametrize("dist", ["normal", "laplace"])
def test_training_bits_match_the_coders_bytes(rel_step, dist):
    """The noisy-proxy Laplace bits of fake_quant are within 2% of the bytes the rANS coder
    writes for the integers the file stores (a 3x3x64x64 kernel, several precisions)."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal if dist == "normal" else rng.laplace)(size=(3, 3, 64, 64)).astype(np.float32) * 0.05
    log_rel = jnp.full((64,), np.log(rel_step), jnp.float32)
    trained = np.mean([float(quant.fake_quant(jnp.asarray(w), log_rel, jax.random.key(i))[1]) for i in range(4)])
    q = quant.quantize(w, quant.steps_f16(w, np.asarray(log_rel)))
    tables = quant.WEIGHT_PRIOR.tables(np.array([quant.laplace_scale_of(q)], np.float64))
    coded = 8 * len(coder.encode(q.reshape(-1), tables))
    assert trained == pytest.approx(coded, rel=0.02)


def test_quantized_weights_decode_to_the_straight_through_values():
    """What the network trains with (STE rounding) is what the decoder multiplies back, up
    to the float16 rounding of the stored steps (which can move a value at a rounding
    boundary to the neighbouring integer, never further)."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    log_rel = jnp.asarray(rng.uniform(-4, -1, 16), jnp.float32)
    w_hat, _ = quant.fake_quant(jnp.asarray(w), log_rel, jax.random.key(0))
    step16 = quant.steps_f16(w, np.asarray(log_rel))
    back = quant.dequantize(quant.quantize(w, step16), step16)
    err = np.abs(np.asarray(w_hat) - back)
    assert np.all(err <= 1.01 * step16.astype(np.float32) + 1e-6)
    assert np.mean(err <= 2e-3 * np.abs(back) + 1e-6) > 0.99
