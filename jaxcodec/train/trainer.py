"""The rate-distortion trainer shared by every codec.

A codec supplies a loss ``loss_fn(params, batch, key, step) -> (loss, metrics)`` (typically
distortion + lambda * rate, with scalar metrics such as psnr and bits), the initial
``params`` (any pytree, NNX state included) and a host-side ``sampler(step) -> batch``.
Codecs with non-trainable state (EMA codebooks, running statistics) pass ``state=`` and a
loss ``loss_fn(params, state, batch, key, step) -> (loss, (metrics, new_state))``; state
is carried and checkpointed with the parameters but gets no gradient.
The trainer owns everything else:

- Adam with HNeRV's schedule: linear warm-up from ``warmup_start * lr`` over the first
  ``warmup`` fraction of steps, then cosine decay to 0;
- one jitted train step; randomness is ``fold_in(seed, step)``, so a run resumed from a
  checkpoint follows exactly the path of an uninterrupted one;
- data parallelism over every device of every process (or the ``devices`` given):
  batches are split along their leading axis with a ``NamedSharding`` over a 1-D mesh,
  parameters are replicated, and XLA inserts the gradient all-reduce. Multi-process runs
  (`jaxcodec.distributed.initialize` first) have every process's sampler return the same
  global batch; each process puts only its devices' rows;
- Orbax checkpoints every ``checkpoint_every`` steps, at the end and on Ctrl-C, resumable;
  the epoch's running metric sums are saved with each, so a resumed run logs the same
  ``metrics.jsonl`` as an uninterrupted one (records past the checkpoint are dropped);
- ``metrics.jsonl``: one line per epoch with the mean of every metric, lr and time;
- evaluation through ``eval_fn(params, state) -> metrics`` every ``eval_every`` steps
  (0: at the end), logged with the epoch it closes;
- callbacks ``on_step(step, total)`` (called once before the first step, while XLA
  compiles) and ``on_log(record)`` for progress displays.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcodec.errors import InputError

log = logging.getLogger(__name__)

LossFn = Callable[[Any, Any, jax.Array, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    lr: float = 1e-3
    warmup: float = 0.1
    warmup_start: float = 0.1
    steps_per_epoch: int = 100
    checkpoint_every: int = 0  # 0: only at the end (when a workdir is given)
    eval_every: int = 0  # 0: only at the end (when an eval_fn is given)
    grad_clip: float = 0.0
    seed: int = 0
    # (top-level params key, lr multiplier): groups that train faster or slower than the rest,
    # e.g. quantization steps that must travel far in few steps
    lr_scale: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.steps < 1 or self.steps_per_epoch < 1:
            raise ValueError("steps and steps_per_epoch must be >= 1")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError("warmup is a fraction of the steps in [0, 1)")


def lr_schedule(cfg: TrainConfig) -> optax.Schedule:
    warm = int(round(cfg.warmup * cfg.steps))
    cosine = optax.cosine_decay_schedule(cfg.lr, max(cfg.steps - warm, 1))
    if warm == 0:
        return cosine
    ramp = optax.linear_schedule(cfg.warmup_start * cfg.lr, cfg.lr, warm)
    return optax.join_schedules([ramp, cosine], [warm])


def _scale_groups(scales: dict[str, float]) -> optax.GradientTransformation:
    """Multiply the updates of top-level parameter groups (a dict of params) by constants."""
    def update(updates, state, params=None):
        del params
        return {k: jax.tree.map(lambda u, m=scales[k]: u * m, v) if k in scales else v
                for k, v in updates.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """Clipping and Adam on all parameters as one flat vector: per leaf, their handful of
    operations each made thousands in a compiled step (INRs have hundreds of small leaves)."""
    parts = [optax.clip_by_global_norm(cfg.grad_clip)] if cfg.grad_clip > 0 else []
    parts.append(optax.adam(lr_schedule(cfg), b1=0.9, b2=0.999))
    tx = optax.flatten(optax.chain(*parts))
    return optax.chain(tx, _scale_groups(dict(cfg.lr_scale))) if cfg.lr_scale else tx


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named 'data' over `devices` (default: every device of every process)."""
    return Mesh(np.array(jax.devices() if devices is None else list(devices)), ("data",))


@functools.lru_cache(maxsize=16)
def _compiled_step(loss_fn: LossFn, cfg: TrainConfig, has_state: bool) -> Callable:
    """The jitted train step of a loss and config: shared by every Trainer that trains the
    same loss function object with an equal config (e.g. a video's groups of pictures), so
    XLA compiles it once and the process does not grow with each new Trainer."""
    tx = make_optimizer(cfg)
    base_key = jax.random.key(cfg.seed)
    if not has_state:
        def stateful(params, state, batch, key, step):
            loss, metrics = loss_fn(params, batch, key, step)
            return loss, (metrics, state)
    else:
        stateful = loss_fn

    def train_step(params, opt_state, state, batch, step):
        key = jax.random.fold_in(base_key, step)
        (loss, (metrics, state)), grads = jax.value_and_grad(stateful, has_aux=True)(params, state, batch, key, step)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, state, dict(metrics, loss=loss)

    return jax.jit(train_step, donate_argnums=(0, 1, 2))


class Trainer:
    def __init__(self, loss_fn: LossFn, params: Any, cfg: TrainConfig, sampler: Callable[[int], Any], *,
                 state: Any = None, devices: Sequence[jax.Device] | None = None,
                 workdir: str | Path | None = None, eval_fn: Callable[[Any, Any], dict[str, float]] | None = None,
                 on_step: Callable[[int, int], None] | None = None,
                 on_log: Callable[[dict[str, Any]], None] | None = None):
        self.cfg, self.sampler, self.eval_fn = cfg, sampler, eval_fn
        self.on_step, self.on_log = on_step, on_log
        self.workdir = None if workdir is None else Path(workdir)
        self.mesh = data_mesh(devices)
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.batch_sharding = NamedSharding(self.mesh, PartitionSpec("data"))
        self.tx = make_optimizer(cfg)
        self.schedule = lr_schedule(cfg)
        self.params = jax.device_put(params, self.replicated)
        self.opt_state = jax.device_put(self.tx.init(self.params), self.replicated)
        self.has_state = state is not None
        self.state = jax.device_put(state if self.has_state else {}, self.replicated)
        self.step = 0
        self._sums: dict[str, Any] = {}  # metric sums and step count of the epoch under way
        self._count = 0
        self._train_step = _compiled_step(loss_fn, cfg, self.has_state)
        self._manager = None
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._manager = ocp.CheckpointManager(
                (self.workdir / "checkpoints").absolute(),
                options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
                item_handlers=ocp.StandardCheckpointHandler())  # known up front: restore reads metadata first

    def set_loss(self, loss_fn: LossFn) -> None:
        """Train on with another loss over the same params (e.g. after freezing part of a
        model); the optimizer state, schedule and step go on."""
        self._train_step = _compiled_step(loss_fn, self.cfg, self.has_state)

    # -- checkpoints ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"params": self.params, "opt_state": self.opt_state, "state": self.state}

    def save(self) -> None:
        if self._manager is None or self._manager.latest_step() == self.step:
            return
        self._manager.save(self.step, args=ocp.args.StandardSave(self._state()), force=True)
        self._manager.wait_until_finished()
        running = {"step": self.step, "count": self._count, "sums": {k: float(v) for k, v in self._sums.items()}}
        (self.workdir / "running.json").write_text(json.dumps(running))

    def restore(self) -> bool:
        """Resume from the latest checkpoint in the workdir; False if there is none."""
        if self._manager is None or self._manager.latest_step() is None:
            return False
        step = self._manager.latest_step()
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.replicated),
                                self._state())
        def mismatch(detail: object) -> InputError:
            return InputError(f"the checkpoint in {self.workdir} was made for another model or options ({detail}); "
                              "resume with the same options, or start afresh in a new folder")

        # Shapes first, from the checkpoint's metadata: a mismatch found inside orbax's read
        # surfaces as an error only after its reader threads were abandoned mid-flight.
        stored = [tuple(leaf.shape) for leaf in jax.tree.leaves(self._manager.item_metadata(step).tree)
                  if hasattr(leaf, "shape")]
        wanted = [tuple(x.shape) for x in jax.tree.leaves(abstract)]
        if stored != wanted:
            first = next((i for i, (a, b) in enumerate(zip(stored, wanted)) if a != b), min(len(stored), len(wanted)))
            raise mismatch(f"{len(stored)} arrays stored, {len(wanted)} expected; array {first} differs")
        try:
            state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError, TypeError) as exc:
            raise mismatch(exc) from None
        self.params, self.opt_state, self.state = state["params"], state["opt_state"], state["state"]
        self.step = int(step)
        running = self.workdir / "running.json"
        if running.is_file():
            r = json.loads(running.read_text())
            if r.get("step") == self.step:
                self._sums = {k: jnp.asarray(v) for k, v in r["sums"].items()}
                self._count = int(r["count"])
        metrics = self.workdir / "metrics.jsonl"
        if metrics.is_file():  # records logged after the checkpoint will be logged again
            kept = [x for x in metrics.read_text().splitlines() if x.strip() and json.loads(x)["step"] <= self.step]
            metrics.write_text("".join(x + "\n" for x in kept))
        log.info("resumed from step %d of %d", step, self.cfg.steps)
        return True

    # -- training -------------------------------------------------------------------------

    def _put_batch(self, batch: Any) -> Any:
        n = self.mesh.size
        lead = jax.tree_util.tree_leaves(batch)[0].shape[0]
        if lead % n:
            raise ValueError(f"batch size {lead} must be a multiple of the {n} devices")
        if jax.process_count() == 1:
            return jax.device_put(batch, self.batch_sharding)
        return jax.tree.map(lambda x: jax.make_array_from_callback(x.shape, self.batch_sharding,
                                                                   lambda index: x[index]), batch)

    def _log_epoch(self, epoch: int, t0: float) -> None:
        """One metrics.jsonl record: the means over the epoch's steps (then the sums restart)."""
        sums, count = self._sums, self._count
        self._sums, self._count = {}, 0
        record: dict[str, Any] = {"epoch": epoch, "step": self.step,
                                  "lr": float(self.schedule(self.step - 1)), "time_s": round(time.perf_counter() - t0, 3)}
        record.update({k: float(v) / count for k, v in sums.items()})
        due = self.step == self.cfg.steps or (self.cfg.eval_every and self.step % self.cfg.eval_every == 0)
        if self.eval_fn is not None and due:
            record.update({f"eval_{k}": v for k, v in self.eval_fn(self.params, self.state).items()})
        if self.workdir is not None:
            with open(self.workdir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        if self.on_log is not None:
            self.on_log(record)

    def run(self, resume: bool = False, more_steps: int = 0) -> Any:
        """Train to `cfg.steps` (continuing from a checkpoint if `resume`); returns params.
        With `more_steps`, stop after that many steps (and save a checkpoint): a chunk of a
        long run on a machine lent for a while, continued later with `resume`.

        Ctrl-C saves a checkpoint (when there is a workdir) before the interrupt goes on.
        """
        if resume:
            self.restore()
        end = min(self.cfg.steps, self.step + more_steps) if more_steps else self.cfg.steps
        t0 = time.perf_counter()
        if self.on_step is not None:
            self.on_step(self.step, self.cfg.steps)
        try:
            while self.step < end:
                batch = self._put_batch(self.sampler(self.step))
                self.params, self.opt_state, self.state, metrics = self._train_step(
                    self.params, self.opt_state, self.state, batch, jnp.int32(self.step))
                self.step += 1
                self._sums = metrics if not self._sums else jax.tree.map(jnp.add, self._sums, metrics)
                self._count += 1
                if self.on_step is not None:
                    self.on_step(self.step, self.cfg.steps)
                if self.step % self.cfg.steps_per_epoch == 0 or self.step == self.cfg.steps:
                    self._log_epoch(-(-self.step // self.cfg.steps_per_epoch), t0)
                if self._manager is not None and self.cfg.checkpoint_every and \
                        self.step % self.cfg.checkpoint_every == 0 and self.step < self.cfg.steps:
                    self.save()
        except KeyboardInterrupt:
            try:
                self.save()
            except Exception as exc:  # interrupted inside a step: its donated buffers may be gone
                log.warning("interrupted; no checkpoint could be saved (%s)", exc)
            raise
        self.save()
        return self.params

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()



RUN_FILES = ("checkpoints", "metrics.jsonl", "running.json", "model.npz", "prune")


def prepare_run_folder(folder: str | Path, resume: bool, overwrite: bool) -> Path:
    """Make sure a run folder is fresh, or is being resumed, or may be replaced.

    A new run into a folder that holds another run's files would silently mix the two
    (appended metrics, a replaced model): that needs --resume or --overwrite.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a run folder")
    found = [name for name in RUN_FILES if (folder / name).exists()]
    if found and not resume:
        if not overwrite:
            raise InputError(f"{folder} already holds a run ({', '.join(found)}): pass --resume to continue it "
                             "or -y/--overwrite to start afresh")
        import shutil

        for name in found:
            path = folder / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if resume and not (folder / "checkpoints").is_dir():
        raise InputError(f"nothing to resume: {folder} holds no checkpoints")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
