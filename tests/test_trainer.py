"""The shared trainer: learning, schedule, exact resume and data parallelism."""

import json
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcodec.train import TrainConfig, Trainer, lr_schedule

import toy_regression as toy
from jaxcodec.errors import InputError
from processes import run_processes, run_with_devices
from toy_regression import make

TESTS = Path(__file__).resolve().parent


def test_learns_and_logs_jsonl(tmp_path):
    t = make(workdir=tmp_path)
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


def _records(path):
    return [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in path.read_text().splitlines()]


def test_resume_matches_uninterrupted_run(tmp_path):
    full = make(steps=30, workdir=tmp_path / "full", steps_per_epoch=8)
    expected = full.run()
    full.close()

    class Stop(Exception):
        pass

    def stop_at_17(step, total):
        if step == 17:
            raise Stop

    first = make(steps=30, workdir=tmp_path / "cut", checkpoint_every=10, steps_per_epoch=8)
    first.on_step = stop_at_17
    with pytest.raises(Stop):
        first.run()
    first.close()
    second = make(steps=30, workdir=tmp_path / "cut", checkpoint_every=10, steps_per_epoch=8)
    assert second.restore() and second.step == 10
    resumed = second.run()
    second.close()
    for k in expected:
        np.testing.assert_array_equal(np.asarray(resumed[k]), np.asarray(expected[k]))
    # the epoch cut by the interruption is averaged over all its steps, and logged once
    assert _records(tmp_path / "cut" / "metrics.jsonl") == _records(tmp_path / "full" / "metrics.jsonl")


def test_chunks_of_more_steps_add_up_to_the_uninterrupted_run(tmp_path):
    """A run cut into chunks (a lent machine's few minutes each) ends where one run ends."""
    full = make(steps=20, workdir=tmp_path / "full", steps_per_epoch=5)
    expected = full.run()
    full.close()
    for chunk in range(3):  # 8 + 8 + 4 steps
        part = make(steps=20, workdir=tmp_path / "chunks", steps_per_epoch=5)
        params = part.run(resume=chunk > 0, more_steps=8)
        assert part.step == min(8 * (chunk + 1), 20)
        part.close()
    for k in expected:
        np.testing.assert_array_equal(np.asarray(params[k]), np.asarray(expected[k]))


def test_resume_after_the_end_and_ctrl_c_checkpoint(tmp_path):
    done = make(steps=12, workdir=tmp_path)
    done.run()
    done.close()
    again = make(steps=12, workdir=tmp_path)
    again.run(resume=True)  # the final checkpoint exists already: nothing to redo, no error
    again.close()

    def interrupt(step, total):
        if step == 5:
            raise KeyboardInterrupt

    cut = make(steps=20, workdir=tmp_path / "cut")
    cut.on_step = interrupt
    with pytest.raises(KeyboardInterrupt):
        cut.run()
    cut.close()
    back = make(steps=20, workdir=tmp_path / "cut")
    assert back.restore() and back.step == 5
    back.close()


def test_resume_with_other_options_is_a_clear_error(tmp_path):
    first = make(steps=4, workdir=tmp_path)
    first.run()
    first.close()
    other = Trainer(toy.loss_fn, {"w": jnp.zeros(7), "b": jnp.zeros(())}, TrainConfig(steps=4), toy.sampler,
                    workdir=tmp_path)
    with pytest.raises(InputError, match="another model or options"):
        other.restore()
    other.close()


def test_eval_fn_runs_every_n_steps_and_at_the_end(tmp_path):
    seen = []

    def evaluate(params, state):
        seen.append(float(params["b"]))
        return {"b": float(params["b"])}

    cfg = TrainConfig(steps=50, lr=0.3, steps_per_epoch=10, eval_every=20, grad_clip=0.5)
    t = Trainer(toy.loss_fn, {"w": jnp.zeros(5), "b": jnp.zeros(())}, cfg, toy.sampler, workdir=tmp_path,
                eval_fn=evaluate)
    t.run()
    t.close()
    records = _records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if "eval_b" in r] == [20, 40, 50] and len(seen) == 3


def test_two_devices_give_the_same_result():
    """Data parallelism over 2 (forced) host devices equals a single-device run."""
    results = []
    for ndev in (1, 2):
        out = run_with_devices(ndev, f"""
            import jax, numpy as np
            from toy_regression import make
            assert len(jax.local_devices()) == {ndev}, jax.local_devices()
            p = make(steps=40).run()
            print(" ".join(repr(float(v)) for v in np.asarray(p["w"]).tolist() + [float(p["b"])]))
        """)
        assert out.returncode == 0, out.stderr
        results.append(np.array([float(v) for v in out.stdout.split()]))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_two_processes_give_the_same_result():
    """Data parallelism over 2 processes of one device each (joined on 127.0.0.1, as two
    hosts would be) equals a single-process run: each process puts its half of the batch."""
    code = textwrap.dedent("""
        import sys, jax, numpy as np
        from jaxcodec import distributed
        from toy_regression import make
        distributed.initialize(sys.argv[2], 2, int(sys.argv[1]))
        assert len(jax.local_devices()) == 1 and len(jax.devices()) == 2
        p = make(steps=40).run()
        print(" ".join(repr(float(v)) for v in np.asarray(p["w"]).tolist() + [float(p["b"])]))
    """)
    runs = run_processes(lambda i, coordinator: [sys.executable, "-c", code, str(i), coordinator])
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    single = run_with_devices(1, """
        import numpy as np
        from toy_regression import make
        p = make(steps=40).run()
        print(" ".join(repr(float(v)) for v in np.asarray(p["w"]).tolist() + [float(p["b"])]))
    """)
    assert single.returncode == 0, single.stderr
    want = np.array([float(v) for v in single.stdout.split()])
    for r in runs:  # both processes hold the same replicated parameters (gloo's log lines come first)
        got = [float(v) for v in r.stdout.strip().splitlines()[-1].split()]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batch_must_split_over_devices():
    """With 2 devices a batch of 3 cannot be split: a clear error, before any step runs."""
    out = run_with_devices(2, """
        from toy_regression import make
        try:
            make(steps=2, batch=3).run()
        except ValueError as exc:
            print("refused:", exc)
    """)
    assert out.returncode == 0, out.stderr
    assert "refused: batch size 3 must be a multiple of the 2 devices" in out.stdout


def test_lr_scale_speeds_up_or_freezes_a_parameter_group():
    """A group's updates are multiplied by its lr_scale (Adam's first step moves each weight by ~lr)."""
    import jax
    from jaxcodec.train.trainer import make_optimizer

    params = {"fast": jnp.ones(3), "slow": jnp.ones(3), "frozen": jnp.ones(3), "plain": jnp.ones(3)}
    grads = jax.tree.map(jnp.ones_like, params)
    tx = make_optimizer(TrainConfig(steps=10, lr=1e-2, warmup=0.0, grad_clip=1.0,
                                    lr_scale=(("fast", 10.0), ("slow", 0.1), ("frozen", 0.0))))
    updates, _ = tx.update(grads, tx.init(params), params)
    moved = {k: float(-v[0]) for k, v in updates.items()}
    assert moved["plain"] == pytest.approx(1e-2, rel=1e-3)
    assert moved["fast"] == pytest.approx(1e-1, rel=1e-3) and moved["slow"] == pytest.approx(1e-3, rel=1e-3)
    assert moved["frozen"] == 0.0
