"""``bytes``: lossless order-0 coding of any file's bytes.

The smallest complete codec: a byte histogram quantized to a 16-bit table (stored in the
file, 512 bytes) and the bytes rANS-coded with it. It compresses to the file's order-0
entropy and serves as the reference round trip of container, tables and coder.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxcodec import container
from jaxcodec.codecs import CodecEntry, Command, Progress, decode_boundary, register
from jaxcodec.container import Container, check_output_size, field_int, field_str
from jaxcodec.data.media import atomic_path
from jaxcodec.entropy import coder
from jaxcodec.entropy.tables import CodingTables, quantize_pmf
from jaxcodec.errors import BitstreamError, InputError

CODEC_ID = "bytes"


def encode(data: bytes) -> Container:
    symbols = np.frombuffer(data, np.uint8)
    counts = np.bincount(symbols, minlength=256).astype(np.float64)
    freqs = quantize_pmf(counts if symbols.size else np.ones(256))
    tables = CodingTables(freqs, 0, 256, escape=False)
    header = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return Container(CODEC_ID, header, {"table": freqs.astype("<u2").tobytes(),
                                        "payload": coder.encode(symbols, tables)})


@decode_boundary(CODEC_ID)
def decode(c: Container) -> bytes:
    size = field_int(c.header, "size", 0, 1 << 48, CODEC_ID)
    digest = field_str(c.header, "sha256", CODEC_ID, max_len=64)
    table = c.section("table")
    if len(table) != 512:
        raise BitstreamError("bytes file has a damaged table section")
    check_output_size(size, len(table) + len(c.section("payload")), "a payload")
    freqs = np.frombuffer(table, "<u2").astype(np.uint32)
    try:
        tables = CodingTables(freqs, 0, 256, escape=False)
    except ValueError as exc:
        raise BitstreamError(f"bytes file has an invalid table: {exc}") from None
    data = coder.decode(c.section("payload"), tables, count=size).astype(np.uint8).tobytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise BitstreamError("decoded bytes do not match the checksum in the header")
    return data


@decode_boundary(CODEC_ID)
def _describe(c: Container) -> dict[str, Any]:
    size = field_int(c.header, "size", 0, 1 << 48, CODEC_ID)
    coded = len(c.section("payload"))
    return {"original bytes": size, "coded payload bytes": coded,
            "bits per byte": round(8 * coded / size, 4) if size else 0.0}


def _decode_to(c: Container, output: Path, args: argparse.Namespace) -> str:
    data = decode(c)
    with atomic_path(output) as tmp:
        tmp.write_bytes(data)
    return f"wrote {len(data)} bytes to {output}"


def _encode_command(args: argparse.Namespace, progress: Progress) -> str:
    src = Path(args.input)
    if src.is_dir():
        raise InputError(f"{src} is a folder: the bytes codec compresses one file")
    t0 = time.perf_counter()
    size = container.write(args.output, encode(src.read_bytes()))
    return (f"wrote {args.output}: {size:,} bytes ({size * 8 / max(src.stat().st_size, 1):.3f} bits per input "
            f"byte) in {time.perf_counter() - t0:.2f} s")


register(CodecEntry(CODEC_ID, "lossless order-0 coding of a file's bytes", _describe, _decode_to,
                    encode=Command(lambda group: None, _encode_command)))
