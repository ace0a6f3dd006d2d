"""The shared trainer: learning, schedule, exact resume and data parallelism."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcodec.train import TrainConfig, Trainer, lr_schedule

TOY = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jaxcodec.train import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    Y = (X @ np.arange(1, 6, dtype=np.float32) + 0.3).astype(np.float32)

    def loss_fn(params, batch, key, step):
        noise = 0.01 * jax.random.normal(key, batch["y"].shape)
        err = batch["x"] @ params["w"] + params["b"] - batch["y"] + noise
        loss = jnp.mean(err ** 2)
        return loss, {"mse": loss}

    def sampler(step):
        idx = np.random.default_rng([1, step]).permutation(64)[:8]
        return {"x": X[idx], "y": Y[idx]}

    def make(steps=200, workdir=None, **kw):
        params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
        cfg = TrainConfig(steps=steps, lr=0.3, steps_per_epoch=40, **kw)
        return Trainer(loss_fn, params, cfg, sampler, workdir=workdir)
""")
exec(TOY)  # noqa: S102 - the toy problem is shared with the multi-device subprocess


def test_learns_and_logs_jsonl(tmp_path):
    t = make(workdir=tmp_path)  # noqa: F821
    params = t.run()
    t.close()
    assert np.allclose(np.asarray(params["w"]), np.arange(1, 6), atol=0.1)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[-1]["mse"] < lines[0]["mse"] and {"lr", "time_s", "loss", "step"} <= set(lines[0])


def test_schedule_warmup_then_cosine():
    s = lr_schedule(TrainConfig(steps=100, lr=1e-3, warmup=0.1))
    assert float(s(0)) == pytest.approx(1e-4)
    assert float(s(10)) == pytest.approx(1e-3)
    assert float(s(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(s(55)) == pytest.approx(0.5e-3, rel=1e-3)


def test_resume_matches_uninterrupted_run(tmp_path):
    full = make(steps=30)  # noqa: F821
    expected = full.run()

    class Stop(Exception):
        pass

    def stop_at_17(step, total):
        if step == 17:
            raise Stop

    first = make(steps=30, workdir=tmp_path, checkpoint_every=10)  # noqa: F821
    first.on_step = stop_at_17
    with pytest.raises(Stop):
        first.run()
    first.close()
    second = make(steps=30, workdir=tmp_path, checkpoint_every=10)  # noqa: F821
    assert second.restore() and second.step == 10
    resumed = second.run()
    second.close()
    for k in expected:
        np.testing.assert_array_equal(np.asarray(resumed[k]), np.asarray(expected[k]))


def test_two_devices_give_the_same_result():
    """Data parallelism over 2 (forced) host devices equals a single-device run."""
    script = TOY + textwrap.dedent("""
        assert len(jax.local_devices()) == NDEV, jax.local_devices()
        p = make(steps=40).run()
        print(" ".join(repr(float(v)) for v in np.asarray(p["w"]).tolist() + [float(p["b"])]))
    """)
    results = []
    for ndev in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={ndev}", JAX_PLATFORMS="cpu")
        out = subprocess.run([sys.executable, "-c", script.replace("NDEV", str(ndev))], env=env,
                             capture_output=True, text=True, check=True)
        results.append(np.array([float(v) for v in out.stdout.split()]))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_batch_must_split_over_devices():
    t = make()  # noqa: F821
    t._put_batch({"x": np.zeros((8, 5))})  # fine on any device count dividing 8
    assert len(jax.local_devices()) >= 1 and jnp.zeros(1).dtype == jnp.float32
