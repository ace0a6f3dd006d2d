"""Work spread over processes (hosts) with JAX's own multi-process runtime.

One process per host (or per accelerator) runs the same command with the same
coordinator address; `jax.distributed.initialize` connects them, and every later call
here sees all of them. Work is shared by index (item i goes to process i mod P), and what
each process made is gathered with one collective, so every process ends with the same
result in the same order, whatever P is.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TypeVar

import jax
import numpy as np

from jaxcodec.errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")


def initialize(coordinator: str, processes: int, process_id: int) -> None:
    """Join a run of `processes` processes; process 0 serves the coordinator at host:port."""
    if not re.fullmatch(r"[^\s:]+:\d{1,5}", coordinator):
        raise InputError(f"--coordinator must be HOST:PORT (got {coordinator!r})")
    if processes < 1 or not 0 <= process_id < processes:
        raise InputError(f"--process-id must be 0 to {processes - 1} for --num-processes {processes}")
    jax.distributed.initialize(coordinator, num_processes=processes, process_id=process_id)
    log.info("process %d of %d joined %s; devices: %d here, %d in all", process_id, processes, coordinator,
             len(jax.local_devices()), len(jax.devices()))


def my_share(items: Sequence[T]) -> list[tuple[int, T]]:
    """(index, item) of the items this process takes: every P-th from its own index."""
    p, n = jax.process_index(), jax.process_count()
    return [(i, x) for i, x in enumerate(items) if i % n == p]


def gather_bytes(data: bytes) -> list[bytes]:
    """Every process's `data`, in process order (one all-gather of lengths, one of bytes)."""
    if jax.process_count() == 1:
        return [data]
    from jax.experimental.multihost_utils import process_allgather

    lengths = np.asarray(process_allgather(np.array([len(data)], np.int64))).reshape(-1)
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[:len(data)] = np.frombuffer(data, np.uint8)
    rows = np.asarray(process_allgather(padded))
    return [rows[i, :n].tobytes() for i, n in enumerate(lengths)]
