"""A toy regression for the trainer's tests, importable by subprocesses with other device counts."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxcodec.train import TrainConfig, Trainer

rng = np.random.default_rng(0)
X = rng.standard_normal((64, 5)).astype(np.float32)
Y = (X @ np.arange(1, 6, dtype=np.float32) + 0.3).astype(np.float32)


def loss_fn(params, batch, key, step):
    noise = 0.01 * jax.random.normal(key, batch["y"].shape)
    err = batch["x"] @ params["w"] + params["b"] - batch["y"] + noise
    loss = jnp.mean(err ** 2)
    return loss, {"mse": loss}


def sampler(step, batch=8):
    idx = np.random.default_rng([1, step]).permutation(64)[:batch]
    return {"x": X[idx], "y": Y[idx]}


def make(steps=200, workdir=None, steps_per_epoch=40, batch=8, **kw):
    params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
    cfg = TrainConfig(steps=steps, lr=0.3, steps_per_epoch=steps_per_epoch, **kw)
    return Trainer(loss_fn, params, cfg, lambda step: sampler(step, batch), workdir=workdir)
