"""``bytes``: lossless order-0 coding of any file's bytes.

The smallest complete codec: a byte histogram quantized to a 16-bit table (stored in the
file, 512 bytes) and the bytes rANS-coded with it. It compresses to the file's order-0
entropy and serves as the reference round trip of container, tables and coder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from jaxcodec import container
from jaxcodec.codecs import CodecEntry, register
from jaxcodec.container import Container
from jaxcodec.entropy import coder
from jaxcodec.entropy.tables import CodingTables, quantize_pmf
from jaxcodec.errors import BitstreamError

CODEC_ID = "bytes"


def encode(data: bytes) -> Container:
    symbols = np.frombuffer(data, np.uint8)
    counts = np.bincount(symbols, minlength=256).astype(np.float64)
    freqs = quantize_pmf(counts if symbols.size else np.ones(256))
    tables = CodingTables(freqs, 0, 256, escape=False)
    header = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return Container(CODEC_ID, header, {"table": freqs.astype("<u2").tobytes(),
                                        "payload": coder.encode(symbols, tables)})


def decode(c: Container) -> bytes:
    size = c.header.get("size")
    if not isinstance(size, int) or size < 0:
        raise BitstreamError("bytes file header has no valid 'size'")
    table = c.section("table")
    if len(table) != 512:
        raise BitstreamError("bytes file has a damaged table section")
    freqs = np.frombuffer(table, "<u2").astype(np.uint32)
    try:
        tables = CodingTables(freqs, 0, 256, escape=False)
    except ValueError as exc:
        raise BitstreamError(f"bytes file has an invalid table: {exc}") from None
    data = coder.decode(c.section("payload"), tables, count=size).astype(np.uint8).tobytes()
    if hashlib.sha256(data).hexdigest() != c.header.get("sha256"):
        raise BitstreamError("decoded bytes do not match the checksum in the header")
    return data


def _describe(c: Container) -> dict[str, Any]:
    size = c.header.get("size", 0)
    coded = len(c.sections.get("payload", b""))
    return {"original bytes": size, "coded payload bytes": coded,
            "bits per byte": round(8 * coded / size, 4) if size else 0.0}


def _decode_to(c: Container, output: Path, **_: Any) -> str:
    data = decode(c)
    output.write_bytes(data)
    return f"wrote {len(data)} bytes to {output}"


register(CodecEntry(CODEC_ID, "lossless order-0 coding of a file's bytes", _describe, _decode_to))
