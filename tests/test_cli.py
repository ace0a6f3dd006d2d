"""The jaxcodec command: help everywhere, real round trips, clear errors."""

import subprocess
import sys

import pytest

from jaxcodec.cli import build_parser, main


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
