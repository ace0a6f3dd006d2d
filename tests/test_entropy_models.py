"""The entropy-model family: training bits agree with the coder's bytes, tables are a
deterministic function of stored parameters, and the integer network is exact."""

import hashlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcodec.entropy import coder, intnet
from jaxcodec.entropy.models import Categorical, Conditional, FactorizedDensity, ScaleTable

N = 40_000


def _sample_from_tables(tables, rows, rng):
    """Values drawn from the integer tables themselves (escape symbol excluded)."""
    lo, hi = tables.coded_range
    out = np.empty(len(rows), np.int64)
    for k in np.unique(rows):
        sel = rows == k
        p = tables.freqs[k, :hi[k] - lo[k] + 1].astype(np.float64)
        out[sel] = lo[k] + rng.choice(len(p), sel.sum(), p=p / p.sum())
    return out


def _coded_bits(values, tables, rows):
    return 8 * len(coder.encode(values, tables, rows))


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "logistic"])
def test_conditional_training_bits_match_the_coder(kind):
    rng = np.random.default_rng(1)
    prior = Conditional(kind)
    scales = np.array([0.3, 1.0, 4.0, 30.0], np.float32).astype(np.float64)
    locs = np.array([0.0, 0.25, -1.5, 7.0])
    rows = rng.integers(0, 4, N)
    x = np.round(locs[rows] + scales[rows] * rng.standard_normal(N))  # any integers: an escape is priced too
    tables = prior.tables(scales, locs)
    train_bits = float(jnp.sum(prior.bits(jnp.asarray(x), jnp.asarray(scales[rows]), jnp.asarray(locs[rows]))))
    assert train_bits == pytest.approx(_coded_bits(x.astype(np.int64), tables, rows), rel=0.01)


def test_scale_table_training_bits_match_the_coder():
    rng = np.random.default_rng(2)
    table = ScaleTable()
    tables = table.tables()
    rows = rng.integers(0, table.count, N)
    x = _sample_from_tables(tables, rows, rng)
    train_bits = float(jnp.sum(table.bits(jnp.asarray(x, jnp.float32), jnp.asarray(rows, jnp.float32))))
    assert train_bits == pytest.approx(_coded_bits(x, tables, rows), rel=0.01)
    assert np.allclose(table.scales(), np.asarray(table.scale_at(jnp.arange(table.count, dtype=jnp.float32))),
                       rtol=1e-5)
    assert (table.index_of_scale(table.scales()) == np.arange(table.count)).all()


def _factorized(channels=5, seed=0):
    model = FactorizedDensity(channels)
    params = model.init(jax.random.key(seed))
    # a trained-looking density: channels of different widths and offsets
    params["matrix0"] = params["matrix0"] + jnp.linspace(1.0, 4.0, channels)[:, None, None]
    params["bias3"] = params["bias3"] + jnp.linspace(-3.0, 2.0, channels)[:, None, None]
    params["factor1"] = params["factor1"] + 0.7
    return model, params


def test_factorized_training_bits_match_the_coder():
    rng = np.random.default_rng(3)
    model, params = _factorized()
    tables = model.tables({k: np.asarray(v) for k, v in params.items()})
    rows = rng.integers(0, model.channels, N)
    x = _sample_from_tables(tables, rows, rng)
    values = np.zeros((N, model.channels), np.float32)
    values[np.arange(N), rows] = x
    bits = np.asarray(model.bits(params, jnp.asarray(values)))[np.arange(N), rows]
    assert float(bits.sum()) == pytest.approx(_coded_bits(x, tables, rows), rel=0.01)
    # jitted and eager bits agree; the density integrates to one over the coded range
    jitted = np.asarray(jax.jit(model.bits)(params, jnp.asarray(values)))[np.arange(N), rows]
    assert np.allclose(bits, jitted, atol=1e-4)


def test_categorical_training_bits_match_the_coder():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, (3, 50)).astype(np.float32)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    rows = rng.integers(0, 3, N)
    x = np.array([rng.choice(50, p=probs[r]) for r in rows])
    tables = Categorical().tables(probs)
    train_bits = float(jnp.sum(Categorical().bits(jnp.asarray(logits[rows]), jnp.asarray(x))))
    assert train_bits == pytest.approx(_coded_bits(x, tables, rows), rel=0.01)


_TABLES_SCRIPT = """
import hashlib, sys, jax, numpy as np
sys.path.insert(0, {here!r})
from test_entropy_models import _factorized
from jaxcodec.entropy.models import ScaleTable
model, params = _factorized()
t = model.tables({{k: np.asarray(v) for k, v in params.items()}})
s = ScaleTable().tables()
h = hashlib.sha256()
for a in (t.freqs, t.offsets, t.sizes, s.freqs, s.offsets, s.sizes):
    h.update(np.ascontiguousarray(a).tobytes())
print(h.hexdigest())
"""


def _tables_hash():
    model, params = _factorized()
    t = model.tables({k: np.asarray(v) for k, v in params.items()})
    s = ScaleTable().tables()
    h = hashlib.sha256()
    for a in (t.freqs, t.offsets, t.sizes, s.freqs, s.offsets, s.sizes):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_tables_are_identical_in_another_process_and_after_a_jitted_step():
    import os

    here = os.path.dirname(__file__)
    out = subprocess.run([sys.executable, "-c", _TABLES_SCRIPT.format(here=here)], capture_output=True, text=True,
                         check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.stdout.strip() == _tables_hash()
    # parameters that went through a jitted computation give the same tables
    model, params = _factorized()
    through = jax.jit(lambda p: jax.tree.map(lambda v: v * 1.0, p))(params)
    a = model.tables({k: np.asarray(v) for k, v in params.items()})
    b = model.tables({k: np.asarray(v) for k, v in through.items()})
    assert (a.freqs == b.freqs).all() and (a.offsets == b.offsets).all()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-3000, 3000), min_size=1, max_size=300), st.integers(0, 2 ** 31 - 1))
def test_round_trips_through_factorized_and_scale_tables(values, seed):
    rng = np.random.default_rng(seed)
    values = np.asarray(values, np.int64)
    model, params = _factorized()
    for tables in (model.tables({k: np.asarray(v) for k, v in params.items()}), ScaleTable().tables()):
        rows = rng.integers(0, tables.count, values.size)
        assert (coder.decode(coder.encode(values, tables, rows), tables, rows, dtype=np.int64) == values).all()


# ---------------------------------------------------------------------------------------
# integer networks


def _layer_and_input(symbols, kernel=3, up=1, seed=0):
    layer = intnet.IntLayer(6, 5, kernel, relu=True, up=up, symbols=symbols)
    p = layer.init(jax.random.key(seed))
    p["b"] = p["b"] + 0.3
    rng = np.random.default_rng(seed)
    x = rng.integers(-20, 21, (9, 7, 6)) if symbols else rng.integers(0, intnet.ACT_MAX + 1, (9, 7, 6))
    return layer, p, x.astype(np.float64)


@pytest.mark.parametrize("symbols,kernel,up", [(True, 3, 2), (False, 5, 1), (False, 1, 1)])
def test_integer_layer_runs_as_it_was_trained(symbols, kernel, up):
    layer, p, x = _layer_and_input(symbols, kernel, up)
    trained = np.asarray(intnet.apply(layer, p, jnp.asarray(x, jnp.float32)[None]))[0]
    exact = intnet.apply_exact(layer, intnet.export({k: np.asarray(v) for k, v in p.items()}), x)
    assert trained.shape == exact.shape
    assert np.mean(trained == exact) > 0.99  # float32 training differs at rounding ties only
    assert np.max(np.abs(trained - exact)) <= 1
    assert (exact == np.round(exact)).all() and exact.min() >= 0 and exact.max() <= intnet.ACT_MAX


def test_integer_layer_does_not_depend_on_the_order_of_its_sums():
    layer, p, x = _layer_and_input(False, 5)
    q = intnet.export({k: np.asarray(v) for k, v in p.items()})
    out = intnet.apply_exact(intnet.IntLayer(6, 5, 5, relu=False), q, x)
    # the same sums in another order: per input channel, in reverse, without BLAS
    w = q["w"].astype(np.float64)
    xp = np.pad(x, ((2, 2), (2, 2), (0, 0)))
    acc = np.zeros((9, 7, 5))
    for ci in reversed(range(6)):
        for dy in reversed(range(5)):
            for dx in range(5):
                acc += xp[dy:dy + 9, dx:dx + 7, ci:ci + 1] * w[dy, dx, ci][None, None, :]
    other = acc * (q["s"].astype(np.float64) * intnet.ACT_UNIT) + q["b"].astype(np.float64)
    assert (out == other).all()
