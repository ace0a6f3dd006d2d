"""Residual VQ training state: dead-code restarts with batches smaller than the codebook."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.audio import rvq


def _train_steps(cfg, state, batches, key):
    step = jax.jit(lambda s, x, k: rvq.quantize(cfg, s, x, jnp.full((x.shape[0],), cfg.stages), k, train=True)[3])
    for i, x in enumerate(batches):
        state = step(state, x, jax.random.fold_in(key, i))
    return state


def test_small_batches_keep_used_codes_and_restart_unused_ones():
    """16 vectors a batch for 64 codes: every used code is seen well under twice a batch, so an
    absolute threshold of 2 would restart all of them at every step; the relative one keeps the
    32 used codes on their clusters and restarts only the 32 codes no vector ever chose."""
    cfg = rvq.RVQConfig(stages=1, codebook_size=64, dim=4, decay=0.9)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(64, 4)).astype(np.float32) * 3
    state = rvq.state_from_codebooks(centers[None])
    batches = [jnp.asarray(centers[rng.integers(0, 32, 16)] + 0.01 * rng.normal(size=(16, 4)), jnp.float32)[None]
               for _ in range(120)]
    books = np.asarray(_train_steps(cfg, state, batches, jax.random.key(1))["codebooks"][0])
    np.testing.assert_allclose(books[:32], centers[:32], atol=0.05)
    moved = np.linalg.norm(books[32:] - centers[32:], axis=1) > 0.5
    assert moved.all()
    # restarted codes are vectors the stage saw: each lies on one of the used clusters
    nearest_used = np.min(np.linalg.norm(books[32:, None] - centers[None, :32], axis=2), axis=1)
    assert nearest_used.max() < 0.1


def test_state_from_codebooks_resumes_without_kmeans():
    cfg = rvq.RVQConfig(stages=2, codebook_size=8, dim=3)
    books = np.random.default_rng(2).normal(size=(2, 8, 3)).astype(np.float32) * np.array([1, 0.01])[:, None, None]
    state = rvq.state_from_codebooks(books)
    x = jnp.asarray(books[0][None, :5] + books[1][None, :5])  # each row: code i of both stages
    _, codes, *_ = rvq.quantize(cfg, state, x, jnp.array([2]), jax.random.key(0), train=False)
    np.testing.assert_array_equal(np.asarray(codes[0]), np.stack([np.arange(5)] * 2, 1))


def test_factorized_lookup_is_by_cosine_and_trains_its_projections():
    """DAC's factorized codes: the first stage's choice ignores the latent's scale (cosine in
    the projected space), codes stay unit vectors through EMA updates, gradients reach w_in
    and w_out, and inference picks the codes training picked."""
    cfg = rvq.RVQConfig(stages=3, codebook_size=16, dim=6, code_dim=2, kmeans_iters=3)
    proj = rvq.init_projections(cfg, jax.random.key(0))
    state = rvq.init_state(cfg, jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (2, 20, 6))
    full = jnp.full((2,), cfg.stages)
    _, codes, _, state, _ = rvq.quantize(cfg, state, x, full, jax.random.key(3), train=True, proj=proj)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(state["codebooks"]), axis=-1), 1.0, rtol=1e-5)
    books = rvq.effective_codebooks(state["codebooks"], proj)
    lookup = {"w_in": proj["w_in"], "codes": state["codebooks"]}
    first = rvq.encode_codes(cfg, books, x, 1, lookup)
    np.testing.assert_array_equal(first, rvq.encode_codes(cfg, books, 7.5 * x, 1, lookup))
    _, trained_codes, *_ = rvq.quantize(cfg, state, x, full, proj=proj)
    np.testing.assert_array_equal(rvq.encode_codes(cfg, books, x, 3, lookup), trained_codes)

    def loss(p):
        out, _, commit, _, _ = rvq.quantize(cfg, state, x, full, proj=p)
        return jnp.sum(out ** 2) + commit

    grads = jax.grad(loss)(proj)
    assert float(jnp.abs(grads["w_in"]).sum()) > 0 and float(jnp.abs(grads["w_out"]).sum()) > 0
    with np.testing.assert_raises(ValueError):
        rvq.quantize(cfg, state, x, full)


def test_group_residual_codes_are_level_major_and_decode_what_training_quantized():
    """HiFi-Codec's group-residual VQ: two groups of the latent's channels, each its own stack."""
    cfg = rvq.RVQConfig(stages=3, codebook_size=8, dim=6, groups=2, kmeans_iters=3)
    state = rvq.init_state(cfg, jax.random.key(0))
    assert state["codebooks"].shape == (6, 8, 3)
    x = jax.random.normal(jax.random.key(1), (2, 10, 6))
    out, codes, _, state, ppl = rvq.quantize(cfg, state, x, jnp.array([3, 3]), jax.random.key(2), train=True)
    assert codes.shape == (2, 10, 6) and ppl.shape == (6,) and bool(state["initialized"])
    out, codes, *_ = rvq.quantize(cfg, state, x, jnp.array([3, 3]))
    books = state["codebooks"]
    np.testing.assert_array_equal(rvq.encode_codes(cfg, books, x, 3), codes)
    np.testing.assert_allclose(rvq.decode_codes(books, codes, 2), out, atol=1e-6)
    np.testing.assert_array_equal(rvq.encode_codes(cfg, books, x, 1), codes[..., :2])  # first level, both groups
    # group 1 sees only the latent's last three channels
    moved = x.at[..., :3].add(5.0)
    np.testing.assert_array_equal(rvq.encode_codes(cfg, books, moved, 3)[..., 1::2], codes[..., 1::2])
    with np.testing.assert_raises(ValueError):
        rvq.RVQConfig(dim=6, groups=4)
