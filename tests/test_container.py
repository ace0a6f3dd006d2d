"""The .jxc container: round trips, and every kind of damage gives a BitstreamError."""

import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcodec import container
from jaxcodec.container import MAGIC, Container
from jaxcodec.errors import BitstreamError

CODECS = {"test-codec", "bytes"}


def small_file() -> bytes:
    c = Container("test-codec", {"frames": 3, "name": "x"}, {"tables": b"\x01\x02\x03", "payload": b"hello jxc"})
    return container.pack(c)


names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(codec=names, header=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
       sections=st.dictionaries(names, st.binary(max_size=300), max_size=6))
def test_pack_unpack_roundtrip(codec, header, sections):
    c = Container(codec, header, sections)
    back = container.unpack(container.pack(c), {codec})
    assert back.codec == codec and back.header == header and dict(back.sections) == sections


def test_every_single_byte_flip_is_detected():
    data = small_file()
    for i in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= mask
            with pytest.raises(BitstreamError):
                container.unpack(bytes(bad), CODECS)


def test_every_truncation_is_detected():
    data = small_file()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            container.unpack(data[:cut], CODECS)


@pytest.mark.parametrize("tail", [b"\x00", b"garbage", small_file()])
def test_trailing_garbage(tail):
    with pytest.raises(BitstreamError, match="trailing"):
        container.unpack(small_file() + tail, CODECS)


def test_specific_messages():
    data = small_file()
    with pytest.raises(BitstreamError, match="magic"):
        container.unpack(b"RIFF" + data[4:], CODECS)
    with pytest.raises(BitstreamError, match="version 7"):
        container.unpack(data[:8] + struct.pack("<H", 7) + data[10:], CODECS)
    with pytest.raises(BitstreamError, match="unknown codec 'test-codec'"):
        container.unpack(data, {"bytes"})
    bad = bytearray(data)
    bad[-1] ^= 0x20  # inside the last payload
    with pytest.raises(BitstreamError, match="CRC mismatch in section 'payload'"):
        container.unpack(bytes(bad), CODECS)
    with pytest.raises(BitstreamError, match="magic"):
        container.unpack(b"", CODECS)


def forge(sections: list[tuple[bytes, int, int]], header: bytes = b"{}", payload: bytes = b"") -> bytes:
    """A file with a valid head CRC but arbitrary (possibly hostile) section lengths."""
    head = MAGIC + struct.pack("<HB", 1, 4) + b"test" + struct.pack("<I", len(header)) + header
    head += struct.pack("<H", len(sections))
    for name, length, crc in sections:
        head += struct.pack("<B", len(name)) + name + struct.pack("<QI", length, crc)
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def test_absurd_lengths_do_not_allocate_or_hang():
    hostile = forge([(b"payload", 2**63, 0)], payload=b"abc")
    with pytest.raises(BitstreamError, match="truncated"):
        container.unpack(hostile, {"test"})
    with pytest.raises(BitstreamError, match="not valid JSON"):
        container.unpack(forge([], header=b"{not json"), {"test"})
    with pytest.raises(BitstreamError, match="JSON object"):
        container.unpack(forge([], header=b"[1, 2]"), {"test"})
    with pytest.raises(BitstreamError, match="twice"):
        container.unpack(forge([(b"a", 0, 0), (b"a", 0, 0)]), {"test"})


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "clip.jxc"
    path.write_bytes(b"previous contents")

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        container.write(path, Container("test-codec", {}, {"payload": b"x" * 1000}))
    assert path.read_bytes() == b"previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.jxc"]  # no temp file left behind


def test_write_then_read(tmp_path):
    c = Container("test-codec", {"a": [1, 2]}, {"payload": bytes(range(256))})
    n = container.write(tmp_path / "x.jxc", c)
    assert n == (tmp_path / "x.jxc").stat().st_size
    assert oct((tmp_path / "x.jxc").stat().st_mode & 0o777) != "0o600"
    back = container.read(tmp_path / "x.jxc", CODECS)
    assert back.section("payload") == bytes(range(256))
    with pytest.raises(BitstreamError, match="no 'tables' section"):
        back.section("tables")
    with pytest.raises(FileNotFoundError):
        container.read(tmp_path / "missing.jxc")


def test_invalid_names_rejected_on_write():
    with pytest.raises(ValueError, match="codec id"):
        container.pack(Container("Bad Codec", {}, {}))
    with pytest.raises(ValueError, match="section name"):
        container.pack(Container("ok", {}, {"no spaces": b""}))
