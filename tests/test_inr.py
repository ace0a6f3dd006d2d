"""NeRV / HNeRV architecture, checked against the HNeRV paper's Bunny configurations."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxcodec.inr.layers import conv_few_outputs, pixel_shuffle
from jaxcodec.inr.models import (
    INRConfig, INRDecoder, choose_grid, decoder_param_count, make_encoder, nerv_code, hnerv_config, nerv_config,
    stored_param_count,
)


@pytest.mark.parametrize("budget,fc_dim", [(0.35e6, 32), (0.75e6, 48), (1.5e6, 68), (3e6, 97)])
def test_hnerv_bunny_sizes_match_the_paper(budget, fc_dim):
    """HNeRV paper / code, Bunny 1280x640, 132 frames: c2 = 32 / 48 / 68 / 97."""
    cfg = hnerv_config(640, 1280, 132, budget)
    assert cfg.strides == (5, 4, 4, 2, 2) and cfg.fc_hw == (2, 4)
    assert cfg.kernels == (1, 3, 5, 5, 5)
    assert cfg.fc_dim == fc_dim
    assert abs(stored_param_count(cfg) / budget - 1) < 0.06


def test_hnerv_1_5m_third_block_holds_half_the_parameters():
    cfg = hnerv_config(640, 1280, 132, 1.5e6)
    assert cfg.widths[:3] == (57, 48, 40)
    third = 5 * 5 * 48 * 40 * 16 + 40 * 16
    assert 0.45 < third / stored_param_count(cfg) < 0.55


@pytest.mark.parametrize("budget", [0.35e6, 0.75e6, 1.5e6, 3e6])
def test_nerv_bunny_config(budget):
    cfg = nerv_config(640, 1280, 132, budget)
    assert cfg.strides == (5, 4, 2, 2) and cfg.fc_hw == (8, 16) and cfg.kernels == (3, 3, 3, 3)
    assert abs(stored_param_count(cfg) / budget - 1) < 0.1


@pytest.mark.parametrize("hw,strides", [((640, 1280), (5, 4, 4, 2, 2)), ((480, 960), (5, 4, 3, 2, 2)),
                                        ((960, 1920), (5, 4, 4, 3, 2)), ((160, 320), (5, 2, 2, 2, 2))])
def test_strides_follow_the_paper(hw, strides):
    assert choose_grid(*hw, short_cells=2, stages=5) == (strides, *hw)


def test_odd_sizes_are_padded_up():
    strides, ph, pw = choose_grid(38, 70, short_cells=2, stages=5)
    assert ph >= 38 and pw >= 70 and ph % np.prod(strides) == 0 and pw % np.prod(strides) == 0


def test_pixel_shuffle_matches_torch_semantics():
    x = np.arange(1 * 2 * 3 * 8, dtype=np.float32).reshape(1, 2, 3, 8)  # C = 2, r = 2
    y = np.asarray(pixel_shuffle(jnp.asarray(x), 2))
    assert y.shape == (1, 4, 6, 2)
    for c in range(2):
        for i in range(2):
            for j in range(2):  # torch: out[c, h*r+i, w*r+j] = in[c*r*r + i*r + j, h, w]
                np.testing.assert_array_equal(y[0, i::2, j::2, c], x[0, :, :, c * 4 + i * 2 + j])


@pytest.mark.parametrize("kernel", [(3, 3), (5, 3)])
def test_rgb_head_convolution_and_its_faster_gradient(kernel):
    """The head's convolution computes exactly what nnx.Conv computes (files decode as before)
    and its hand-written backward pass equals XLA's gradient of the same convolution."""
    rng = np.random.default_rng(0)
    conv = nnx.Conv(7, 3, kernel, padding="SAME", rngs=nnx.Rngs(0))
    conv.bias[...] = jnp.asarray(rng.normal(size=3), jnp.float32)
    x = jnp.asarray(rng.normal(size=(2, 9, 13, 7)), jnp.float32)
    k, b = conv.kernel[...], conv.bias[...]
    np.testing.assert_array_equal(np.asarray(conv_few_outputs(x, k, b)), np.asarray(conv(x)))
    target = jnp.asarray(rng.uniform(size=(2, 9, 13, 3)), jnp.float32)

    def loss(head):
        return lambda x, k, b: jnp.mean((jnp.tanh(head(x, k, b)) - target) ** 2)

    def xla(x, k, b):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b

    plain = jax.grad(loss(xla), argnums=(0, 1, 2))(x, k, b)
    fast = jax.grad(loss(conv_few_outputs), argnums=(0, 1, 2))(x, k, b)
    for f, p in zip(fast, plain):
        np.testing.assert_allclose(np.asarray(f), np.asarray(p), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_forward_shapes_and_range(kind):
    cfg = (hnerv_config if kind == "hnerv" else nerv_config)(32, 64, 4, 40_000)
    frames = jnp.ones((2, cfg.height, cfg.width, 3)) * 0.5
    code = make_encoder(cfg, nnx.Rngs(1))(frames) if kind == "hnerv" else nerv_code(cfg, jnp.arange(2.0))
    out = INRDecoder(cfg, rngs=nnx.Rngs(0))(code)
    assert out.shape == (2, cfg.height, cfg.width, 3)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("patch,coarse_whole", [((8, 8), True), ((13, 21), False), ((1, 1), True), ((1, 1), False),
                                                ((40, 80), True)])
def test_hinerv_patches_equal_the_whole_frame(patch, coarse_whole):
    """Rendering HiNeRV patch by patch (windows with halos, masked beyond the frame edge)
    gives the whole-frame rendering, at interior and edge patches alike, whether the coarse
    levels run whole or windowed."""
    import jax

    from jaxcodec.inr.hinerv import tile_offsets, window_plan
    from jaxcodec.inr.models import hinerv_config, make_decoder

    cfg = hinerv_config(38, 70, 6, 20_000)
    dec = make_decoder(cfg, nnx.Rngs(0))
    for blocks in [dec.base, *dec.stages]:  # full layer scale: every conv shapes the output
        for block in blocks:
            block.gamma[...] = jnp.ones_like(block.gamma[...])
    graph, state = nnx.split(dec)
    t = jnp.array([0.0, 2.5, 5.0])
    whole = np.asarray(dec(t))
    plan = window_plan(cfg, patch, coarse_whole)
    assert (plan.full > 0) == coarse_whole
    render = jax.jit(lambda offset: nnx.merge(graph, state)(t, plan, offset))
    tiles = tile_offsets(cfg.height, cfg.width, patch)
    if len(tiles) > 40:  # the four corners and a random sample of the rest
        pick = np.random.default_rng(0).choice(len(tiles), 36, replace=False)
        tiles = np.concatenate([tiles[[0, -1]], tiles[tiles[:, 0] == 0][-1:], tiles[tiles[:, 1] == 0][-1:],
                                tiles[pick]])
    else:
        tiled = np.full_like(whole, np.nan)
        for y, x in tiles:
            tiled[:, y:y + patch[0], x:x + patch[1]] = 0.0
        assert not np.isnan(tiled).any()  # the tiles cover the frame
    for y, x in tiles:
        got = np.asarray(render(jnp.array([[y, x]] * 3)))
        np.testing.assert_allclose(got, whole[:, y:y + patch[0], x:x + patch[1]], atol=1e-6)


@pytest.mark.parametrize("make", [hnerv_config, nerv_config])
def test_the_conditioned_decoder_fits_its_budget_and_reads_the_frame_index(make):
    """HNeRV-Boost's conditional decoder: sized within --params, and the frame index (not
    only the code) changes the output, so frames sharing a code still differ."""
    cfg = make(160, 320, 32, 0.2e6, cond_dim=8)
    assert 0.9 < stored_param_count(cfg) / 0.2e6 <= 1.0
    for c in (cfg, make(160, 320, 32, 0.2e6)):  # the sizing formula counts what the module holds
        _, state = nnx.split(nnx.eval_shape(lambda c=c: INRDecoder(c, rngs=nnx.Rngs(0))))
        assert decoder_param_count(c) == sum(x.size for x in jax.tree_util.tree_leaves(state))
    assert cfg.fc_dim < make(160, 320, 32, 0.2e6).fc_dim  # the conditioning is paid for in width
    assert INRConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    assert "cond_dim" not in make(160, 320, 32, 0.2e6).to_json()  # files without it keep their bytes
    small = make(32, 64, 8, 0.1e6, cond_dim=8)
    dec = INRDecoder(small, rngs=nnx.Rngs(0))
    code = (jnp.ones((2, *small.embedding_shape)) if small.kind == "hnerv"
            else nerv_code(small, jnp.zeros(2)))  # one code for both frames
    out = np.asarray(dec(code, jnp.asarray([0.0, 5.0])))
    assert out.shape == (2, 32, 64, 3) and np.abs(out[0] - out[1]).max() > 1e-3
    with pytest.raises(ValueError, match="frame indices"):
        dec(code)
    with pytest.raises(ValueError, match="budget"):
        make(160, 320, 32, 0.02e6, cond_dim=64)
