"""The ``.jxc`` container: one versioned, checksummed binary format for every codec.

Byte layout (all integers little-endian; see docs/format.md for the full table)::

    magic        8 bytes   89 4A 58 43 0D 0A 1A 0A   ("\\x89JXC\\r\\n\\x1a\\n")
    version      u16       FORMAT_VERSION
    codec id     u8 n, then n ASCII bytes [a-z0-9._-]
    header       u32 h, then h bytes of UTF-8 JSON (an object: the codec's config)
    sections     u16 s, then s entries: u8 m, m ASCII name bytes, u64 length, u32 CRC32
    head CRC     u32       CRC32 of every byte above
    payloads     the s section payloads, back to back, in entry order; then end of file

Every length is checked against the bytes actually present before anything is allocated,
so a hostile or damaged file can neither crash the reader nor make it allocate much.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaxcodec.data.media import atomic_path
from jaxcodec.errors import BitstreamError

MAGIC = b"\x89JXC\r\n\x1a\n"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 16 << 20
MAX_SECTIONS = 4096
_NAME = re.compile(rb"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Container:
    """A decoded .jxc file: which codec wrote it, its JSON config and its binary sections."""

    codec: str
    header: dict[str, Any]
    sections: Mapping[str, bytes] = field(default_factory=dict)
    damaged: frozenset[str] = frozenset()  # sections whose CRC failed (read with keep_damaged)

    def section(self, name: str) -> bytes:
        """A section's payload; a missing or damaged one is a BitstreamError, not a KeyError."""
        if name in self.damaged:
            raise BitstreamError(f"file is corrupt: CRC mismatch in section '{name}'")
        try:
            return self.sections[name]
        except KeyError:
            raise BitstreamError(f"{self.codec} file has no '{name}' section") from None


def _check_name(kind: str, name: str) -> bytes:
    raw = name.encode("ascii", errors="replace")
    if not _NAME.fullmatch(raw):
        raise ValueError(f"{kind} {name!r} must be 1-64 chars of [a-z0-9._-], starting alphanumeric")
    return raw


def pack(container: Container) -> bytes:
    """Serialize a container to bytes."""
    header = json.dumps(container.header, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
    return pack_parts(container.codec, header, container.sections)


def pack_parts(codec_id: str, header: bytes, sections: Mapping[str, bytes]) -> bytes:
    """The byte layout with valid CRCs around any header bytes (``pack`` gives them JSON;
    fuzzers give them anything)."""
    codec = _check_name("codec id", codec_id)
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(f"header is {len(header)} bytes; the limit is {MAX_HEADER_BYTES}")
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"at most {MAX_SECTIONS} sections")
    head = [MAGIC, struct.pack("<HB", FORMAT_VERSION, len(codec)), codec,
            struct.pack("<I", len(header)), header, struct.pack("<H", len(sections))]
    payloads = []
    for name, payload in sections.items():
        raw = _check_name("section name", name)
        payload = bytes(payload)
        head += [struct.pack("<B", len(raw)), raw, struct.pack("<QI", len(payload), zlib.crc32(payload))]
        payloads.append(payload)
    head_bytes = b"".join(head)
    return b"".join([head_bytes, struct.pack("<I", zlib.crc32(head_bytes)), *payloads])


class _Reader:
    """Bounds-checked cursor: every read names what was being read when data ran out."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise BitstreamError(f"file is truncated: {what} needs {n} bytes at offset {self.pos}, "
                                 f"only {len(self.data) - self.pos} remain")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def name(self, what: str) -> str:
        (n,) = self.unpack("<B", f"{what} length")
        raw = self.take(n, what)
        if not _NAME.fullmatch(raw):
            raise BitstreamError(f"file is corrupt: invalid {what} {raw!r}")
        return raw.decode("ascii")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a header")


def unpack(data: bytes, codecs: Collection[str] | None = None, keep_damaged: bool = False) -> Container:
    """Parse and verify a container; raises BitstreamError naming what is wrong.

    `codecs` lists the codec ids the caller can decode; any other id is rejected. With
    `keep_damaged`, a section whose CRC fails is kept but marked: reading it through
    `Container.section` raises, so a codec can decode what is intact around it.
    """
    data = bytes(data)
    r = _Reader(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise BitstreamError("not a jaxcodec file: wrong magic bytes (expected a .jxc file)")
    r.take(len(MAGIC), "magic")
    (version,) = r.unpack("<H", "format version")
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unsupported .jxc format version {version}; this jaxcodec reads "
                             f"version {FORMAT_VERSION} (a newer jaxcodec may read this file)")
    codec = r.name("codec id")
    (header_len,) = r.unpack("<I", "header length")
    if header_len > MAX_HEADER_BYTES:
        raise BitstreamError(f"file is corrupt: header length {header_len} exceeds {MAX_HEADER_BYTES}")
    header_raw = r.take(header_len, "header")
    (count,) = r.unpack("<H", "section count")
    if count > MAX_SECTIONS:
        raise BitstreamError(f"file is corrupt: {count} sections exceeds {MAX_SECTIONS}")
    entries = []
    for i in range(count):
        name = r.name(f"section {i} name")
        length, crc = r.unpack("<QI", f"section '{name}' length and CRC")
        entries.append((name, length, crc))
    head_end = r.pos
    (head_crc,) = r.unpack("<I", "head CRC")
    if zlib.crc32(data[:head_end]) != head_crc:
        raise BitstreamError("file is corrupt: head CRC mismatch (header or section table damaged)")
    if codecs is not None and codec not in codecs:
        known = ", ".join(sorted(codecs)) or "none"
        raise BitstreamError(f"unknown codec '{codec}' (this jaxcodec decodes: {known})")
    try:
        header = json.loads(header_raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # bad JSON, huge ints, deep nesting
        raise BitstreamError(f"file is corrupt: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise BitstreamError("file is corrupt: header must be a JSON object")
    sections: dict[str, bytes] = {}
    damaged = set()
    for name, length, crc in entries:
        if name in sections:
            raise BitstreamError(f"file is corrupt: section '{name}' appears twice")
        payload = r.take(length, f"section '{name}'")
        if zlib.crc32(payload) != crc:
            if not keep_damaged:
                raise BitstreamError(f"file is corrupt: CRC mismatch in section '{name}'")
            damaged.add(name)
        sections[name] = payload
    if r.pos != len(data):
        raise BitstreamError(f"file has {len(data) - r.pos} trailing bytes after its last section")
    return Container(codec, header, sections, frozenset(damaged))


def write(path: str | os.PathLike, container: Container) -> int:
    """Write atomically (temp file in the same folder, fsynced, then renamed over `path`).

    A failure at any point leaves `path` as it was. Returns the number of bytes written.
    """
    data = pack(container)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return len(data)


def read(path: str | os.PathLike, codecs: Collection[str] | None = None, keep_damaged: bool = False) -> Container:
    """Read and verify a .jxc file (see `unpack`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return unpack(path.read_bytes(), codecs, keep_damaged)


# ---------------------------------------------------------------------------------------
# header fields: every value a codec reads from a header goes through one of these, so a
# forged file fails with a BitstreamError that names the field, before anything is sized
# from it.

# Decoded output may be at most this many bytes per byte of file (plus a fixed allowance):
# far above what any real .jxc reaches (Bunny 1280x640 at 0.05 bpp: ~500x), far below a bomb.
MAX_EXPANSION = 20_000
OUTPUT_ALLOWANCE = 64 << 20


def _bad(where: str, key: str, why: str) -> BitstreamError:
    return BitstreamError(f"{where} header field '{key}' {why}")


def field_int(d: Any, key: str, lo: int, hi: int, where: str) -> int:
    """An integer in [lo, hi] (JSON booleans and floats are refused)."""
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, int) or isinstance(v, bool):
        raise _bad(where, key, f"must be an integer, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise _bad(where, key, f"is {v}, outside [{lo}, {hi}]")
    return v


def field_float(d: Any, key: str, lo: float, hi: float, where: str) -> float:
    """A finite number in [lo, hi]."""
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise _bad(where, key, f"must be a number, got {type(v).__name__}")
    if not lo <= float(v) <= hi:  # also false for NaN
        raise _bad(where, key, f"is {v}, outside [{lo:g}, {hi:g}]")
    return float(v)


def field_str(d: Any, key: str, where: str, choices: Collection[str] | None = None, max_len: int = 256) -> str:
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, str) or len(v) > max_len:
        raise _bad(where, key, "must be a short string")
    if choices is not None and v not in choices:
        raise _bad(where, key, f"is {v!r}; expected one of {sorted(choices)}")
    return v


def field_list(d: Any, key: str, lo_len: int, hi_len: int, where: str) -> list:
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, list) or not lo_len <= len(v) <= hi_len:
        raise _bad(where, key, f"must be a list of {lo_len} to {hi_len} entries")
    return v


def field_ints(d: Any, key: str, lo_len: int, hi_len: int, lo: int, hi: int, where: str) -> tuple[int, ...]:
    """A list of integers, each in [lo, hi]."""
    items = field_list(d, key, lo_len, hi_len, where)
    return tuple(field_int({key: v}, key, lo, hi, where) for v in items)


def field_dict(d: Any, key: str, where: str) -> dict:
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, dict):
        raise _bad(where, key, "must be a JSON object")
    return v


def check_output_size(nbytes: float, file_bytes: int, what: str) -> None:
    """Refuse a decode whose output the file could not honestly describe (a bomb)."""
    limit = MAX_EXPANSION * file_bytes + OUTPUT_ALLOWANCE
    if nbytes > limit:
        raise BitstreamError(f"file claims {what} of {nbytes / 1e6:,.0f} MB from {file_bytes:,} bytes "
                             f"(more than {MAX_EXPANSION:,}x its size): refusing a forged or damaged header")
