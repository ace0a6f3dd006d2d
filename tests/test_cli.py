"""The jaxcodec command: help everywhere, real round trips, clear errors."""

import subprocess
import sys

import numpy as np
import pytest

from jaxcodec.cli import build_parser, main
from jaxcodec.fixtures import FIXTURE_DIR


def test_help_for_every_subcommand(capsys):
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no public API
    for name in [None, *subcommands]:
        with pytest.raises(SystemExit) as exc:
            main(["--help"] if name is None else [name, "--help"])
        assert exc.value.code == 0
        assert "usage: jaxcodec" in capsys.readouterr().out


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "jaxcodec.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("jaxcodec ")


def test_bytes_roundtrip_and_info(tmp_path, capsys):
    src = tmp_path / "input.bin"
    src.write_bytes(b"jaxcodec " * 500 + bytes(range(256)))
    assert main(["encode", str(src), "-o", str(tmp_path / "f.jxc")]) == 0
    assert main(["info", str(tmp_path / "f.jxc")]) == 0
    out = capsys.readouterr().out
    assert "codec: bytes" in out and "payload" in out
    assert main(["decode", str(tmp_path / "f.jxc"), "-o", str(tmp_path / "back.bin")]) == 0
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.jxc")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.jxc"
    junk.write_bytes(b"not a jaxcodec file at all")
    assert main(["info", str(junk)]) == 2
    assert "wrong magic" in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "missing.bin"), "-o", str(tmp_path / "x.jxc")]) == 2
    assert not (tmp_path / "x.jxc").exists()


# ---------------------------------------------------------------------------------------
# what a new user hits: every mistake is one line and a non-zero exit, before any work

def _err(capsys) -> str:
    return capsys.readouterr().err


def test_output_location_is_checked_before_any_work(tmp_path, capsys):
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 100)
    assert main(["encode", str(src), "-o", str(tmp_path / "nodir" / "t.jxc")]) == 2
    assert "does not exist" in _err(capsys)
    assert main(["encode", str(src), "-o", str(tmp_path)]) == 2
    assert "is a folder" in _err(capsys)
    (tmp_path / "t.jxc").write_bytes(b"old")
    assert main(["encode", str(src), "-o", str(tmp_path / "t.jxc")]) == 2
    assert "already exists" in _err(capsys) and (tmp_path / "t.jxc").read_bytes() == b"old"
    stale = tmp_path / ".t.jxc.k3j2.tmp.jxc"  # left by a killed earlier write
    stale.write_bytes(b"half")
    assert main(["encode", str(src), "-o", str(tmp_path / "t.jxc"), "-y"]) == 0
    assert not stale.exists() and (tmp_path / "t.jxc").read_bytes()[:4] == b"\x89JXC"


def test_bad_numbers_are_refused_by_the_parser(tmp_path, capsys):
    for flags in (["--epochs", "0"], ["--kbps", "nan"], ["--params", "-3k"], ["--lambda", "inf"]):
        with pytest.raises(SystemExit) as exc:
            main(["encode", "in.mp4", "-o", str(tmp_path / "x.jxc"), *flags])
        assert exc.value.code == 2
        assert "error: argument" in _err(capsys)


def test_decode_outputs(tmp_path, capsys):
    audio, video = str(FIXTURE_DIR / "audio.jxc"), str(FIXTURE_DIR / "nerv.jxc")
    assert main(["decode", audio, "-o", str(tmp_path / "a.raw")]) == 2
    assert "cannot write audio as .raw" in _err(capsys)
    assert main(["decode", audio, "-o", str(tmp_path)]) == 2
    assert "is a folder" in _err(capsys)
    assert main(["decode", video, "-o", str(tmp_path / "v.webm")]) == 2
    assert "cannot write .webm" in _err(capsys)
    for suffix in (".y4m", ".gif", ".mkv"):
        assert main(["decode", video, "-o", str(tmp_path / f"v{suffix}")]) == 0
        assert (tmp_path / f"v{suffix}").stat().st_size > 100
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(9):  # an older, longer sequence
        (frames / f"frame_{i + 1:05d}.png").write_bytes(b"old")
    assert main(["decode", video, "-o", str(frames)]) == 2
    assert "already holds 9 frames" in _err(capsys)
    assert main(["decode", video, "-o", str(frames), "-y"]) == 0
    assert len(list(frames.glob("frame_*.png"))) == 4  # nothing old mixed in
    target = tmp_path / "elsewhere.wav"
    target.write_bytes(b"keep")
    (tmp_path / "link.wav").symlink_to(target)
    assert main(["decode", audio, "-o", str(tmp_path / "link.wav"), "-y"]) == 0
    assert target.read_bytes() == b"keep" and not (tmp_path / "link.wav").is_symlink()


def test_unexpected_errors_are_one_line(monkeypatch, tmp_path, capsys):
    from jaxcodec.codecs import bytes_order0

    def boom(*_):
        raise RuntimeError("something broke")

    monkeypatch.setattr(bytes_order0, "encode", boom)
    src = tmp_path / "in.bin"
    src.write_bytes(b"abc")
    assert main(["encode", str(src), "-o", str(tmp_path / "x.jxc")]) == 1
    err = _err(capsys)
    assert "internal error: RuntimeError: something broke" in err and "Traceback" not in err


def test_train_refuses_to_mix_runs(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("{}\n")
    assert main(["train", "audio", "--data", str(data), "-o", str(run)]) == 2
    assert "already holds a run" in _err(capsys)
    assert main(["train", "audio", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "r2")]) == 2
    assert "no such data folder" in _err(capsys)
    assert main(["train", "audio", "--data", str(data), "-o", str(tmp_path / "r3"), "--resume"]) == 2
    assert "nothing to resume" in _err(capsys)


def test_tiny_odd_video_encodes_and_evaluates(tmp_path, capsys):
    """17x9 frames: the short side is under 16 px, MS-SSIM and the model must cope."""
    from jaxcodec.data.video import write_video

    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, (1, 9, 17, 3), dtype=np.uint8), 3, axis=0)
    write_video(tmp_path / "tiny", frames)
    out = str(tmp_path / "tiny.jxc")
    assert main(["encode", str(tmp_path / "tiny"), "-o", out, "--inr", "nerv", "--params", "1k",
                 "--epochs", "2"]) == 0
    assert "smallest nerv" in _err(capsys)  # the budget could not be honoured, and it says so
    assert main(["info", out]) == 0  # no --lambda: the family's, recorded in the file
    assert "2 epochs, lambda 0.002" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "tiny"), out, "--json"]) == 0
    assert '"ms_ssim"' in capsys.readouterr().out
