"""Checked-in files keep decoding; forged and damaged files end in BitstreamError.

The fixtures in tests/data are real .jxc files of every codec (experiments/make_fixtures.py);
the attacks below are the header rewrites (CRCs recomputed) that once crashed, hung or
allocated gigabytes; the slice at the end runs the fuzz harness's mutants in-process.
"""

import hashlib
import json

import numpy as np
import pytest

from jaxcodec import container
from jaxcodec.codecs import load_codecs
from jaxcodec.entropy import coder
from jaxcodec.entropy.tables import tables_from_distribution, tables_from_pmf
from jaxcodec.errors import BitstreamError
from jaxcodec.fixtures import NAMES, decode_fixture, fixture_bytes, mutant, outcome, FIXTURE_DIR


@pytest.mark.parametrize("name", NAMES)
def test_checked_in_files_still_decode(name):
    """Format stability: a file written by an earlier jaxcodec decodes to what it did then."""
    index = json.loads((FIXTURE_DIR / "fixtures.json").read_text())[name]
    data = fixture_bytes(name)
    assert hashlib.sha256(data).hexdigest() == index["sha256"]
    out = decode_fixture(container.unpack(data, load_codecs()))
    expected = np.load(FIXTURE_DIR / f"{name}.expected.npy")
    assert list(out.shape) == index["shape"]
    if name == "bytes":
        np.testing.assert_array_equal(out, expected)
    elif name.startswith("audio"):  # float synthesis: stored as float16, other CPUs may round differently
        np.testing.assert_allclose(out, expected.astype(np.float32), atol=2e-3)
    else:  # frames rendered in float32 then rounded: identical here, at most 1 level elsewhere
        diff = np.abs(out.astype(np.int16) - expected.astype(np.int16))
        assert diff.max() <= 1 and np.mean(diff == 0) > 0.999


def test_coder_golden_bytes():
    """The coder's output on fixed inputs is fixed (any change breaks every old file)."""
    rng = np.random.default_rng(1234)
    laplace = tables_from_distribution("laplace", np.array([0.7, 3.0, 40.0]))
    idx = rng.integers(0, 3, 5000)
    values = np.round(rng.laplace(0, np.array([0.7, 3.0, 40.0])[idx])).astype(np.int64)
    values[:5] = [10**6, -10**6, 0, 70000, -3]  # escapes
    stream = coder.encode(values, laplace, idx)
    assert hashlib.sha256(stream).hexdigest()[:32] == GOLDEN["laplace"]
    cat = tables_from_pmf(np.array([[0.5, 0.25, 0.125, 0.125], [0.1, 0.2, 0.3, 0.4]]))
    sym = rng.integers(0, 4, 3000)
    assert hashlib.sha256(coder.encode(sym, cat, sym % 2)).hexdigest()[:32] == GOLDEN["categorical"]
    np.testing.assert_array_equal(coder.decode(stream, laplace, idx, dtype=np.int64), values)


GOLDEN = {"laplace": "f09dfa61d0288e65c6062f1ec2893845", "categorical": "3dfb142876aae7f7317afe8e0045b811"}


def _forge(name: str, edit) -> bytes:
    """A fixture whose header was edited and whose CRCs were recomputed."""
    c = container.unpack(fixture_bytes(name))
    header = json.loads(json.dumps(c.header))
    text = edit(header)
    raw = text if isinstance(text, str) else json.dumps(header)
    return container.pack_parts(c.codec, raw.encode(), dict(c.sections))


def _set(path, value):
    def edit(h):
        target = h
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
    return edit


ATTACKS = [
    ("nerv", _set(("model", "pe_levels"), 2**63 - 1)),
    ("nerv", _set(("model", "frames"), 30000)),
    ("nerv", _set(("video", "frames"), -1)),
    ("nerv", _set(("model", "fc_hw"), [2])),
    ("nerv", _set(("model", "kernels", 0), 0)),
    ("nerv", _set(("video", "fps"), None)),
    ("nerv", _set(("model", "strides"), "22")),
    ("hnerv", _set(("model", "frames"), 3_000_000)),
    ("hnerv", _set(("video", "frames"), 3_000_000)),
    ("hnerv", _set(("tensors", 0, "scale"), 5e-324)),
    ("hnerv", _set(("tensors", 0, "scale"), 2147483647)),
    ("hnerv", _set(("tensors", 1, "scale"), 1e30)),
    ("hnerv", _set(("embed", "scales"), [1.0])),
    ("hnerv", lambda h: json.dumps(h).replace('"fps": 25.0', '"fps": NaN')),
    ("audio", _set(("frames",), 30_000_000)),
    ("audio", _set(("length",), 200_000_000)),
    ("audio", _set(("channels",), 10**6)),
    ("audio", _set(("stages",), [3])),
    ("audio", lambda h: json.dumps(h).replace('"sample_rate": 48000', '"sample_rate": 1e309')),
    ("audio", _set(("prior",), "context")),  # without the context prior's id
    ("audio-context", _set(("context",), "00000000")),
    ("audio-context", _set(("context",), 5)),
    ("audio-context", _set(("frames",), 3_000_000)),
    ("audio-context", _set(("stages",), 24)),
    ("audio-context", _set(("prior",), "depth")),
    ("audio-compact", _set(("n",), 200_000_000)),
    ("audio-compact", _set(("n",), 1)),
    ("audio-compact", _set(("r",), 1)),  # 2 s of samples at 1 Hz: more code frames than the codes hold
    ("audio-compact", _set(("q",), [12])),
    ("audio-compact", _set(("k",), 10**6)),
    ("audio-compact", _set(("x",), "00000000")),
    ("audio-compact", _set(("p",), "depth")),  # 'p' beside 'x'
    ("audio-compact", _set(("p",), "context")),
    ("audio-compact", _set(("frames",), 100)),  # a field the compact layout does not have
    ("audio-compact", _set(("m",), None)),
    ("audio-compact", _set(("x",), "8565aa73")),  # another prior of the model: the stream's end state disagrees
    ("audio-levels", _set(("x",), "c4df2fd0")),
    ("bytes", _set(("size",), "1")),
    ("bytes", _set(("size",), 10**12)),
    ("bytes", lambda h: json.dumps(h)[:-1] + ', "deep": ' + "[" * 2000 + "]" * 2000 + "}"),
    ("bytes", lambda h: json.dumps(h)[:-1] + ', "big": ' + "9" * 5000 + "}"),
]


@pytest.mark.parametrize("name,edit", ATTACKS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ATTACKS)])
def test_forged_headers_are_refused(name, edit):
    assert outcome(_forge(name, edit)) == "rejected"


def test_steps_section_is_bounded():
    """Raw float16 steps: an edit to a huge or negative step is caught, not rendered."""
    c = container.unpack(fixture_bytes("nerv"))
    steps = bytearray(c.sections["steps"])
    steps[0:2] = np.float16(-0.5).tobytes()
    forged = container.pack(container.Container(c.codec, c.header, {**c.sections, "steps": bytes(steps)}))
    with pytest.raises(BitstreamError, match="steps section"):
        decode_fixture(container.unpack(forged, load_codecs()))


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_slice(name):
    """A slice of experiments/fuzz_files.py: damaged or forged, never anything but an error."""
    rng = np.random.default_rng([7, NAMES.index(name)])
    seed = fixture_bytes(name)
    results = {}
    for _ in range(60):
        kind, data = mutant(seed, rng)
        result = outcome(data)
        results.setdefault(result, kind)
    assert set(results) <= {"rejected", "decoded"}, results
