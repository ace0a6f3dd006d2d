"""A dependency-free progress display with rate and ETA, for the command line and scripts.

On a terminal it redraws one line (``compiling`` until the first step is done, then the
rate measured after compilation); elsewhere (CI logs, pipes) it prints a line per logged
epoch. ``note`` prints a message line; a run whose ETA exceeds ``warn_after_s`` is
announced once, so an hours-long encode does not start silently.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def duration(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 28, every_s: float = 0.5,
                 warn_after_s: float = 3600.0):
        self.label, self.width, self.every_s, self.warn_after_s = label, width, every_s, warn_after_s
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = self.last = time.perf_counter()
        self.calls = 0
        self.first_step = 0
        self.warned = False
        self.status = ""

    def note(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    def step(self, step: int, total: int) -> None:
        now = time.perf_counter()
        self.calls += 1
        if self.calls == 1:  # before the first step: XLA is compiling
            self._draw(step, total, "compiling...")
            return
        if self.calls == 2:  # the rate is measured from here, compilation excluded
            self.first_step, self.t0, self.last = step, now, now
            return
        done = step - self.first_step
        eta = (total - step) * (now - self.t0) / max(done, 1)
        if not self.warned and done >= 3 and eta > self.warn_after_s:
            self.warned = True
            self.note(f"{self.label}: this run will take about {duration(eta)} on this machine "
                      "(Ctrl-C stops it; where it has a work folder, --resume continues it)")
        if now - self.last < self.every_s and step < total:
            return
        self.last = now
        self._draw(step, total, f"{done / max(now - self.t0, 1e-9):.1f} it/s ETA {duration(eta)} {self.status}")

    def _draw(self, step: int, total: int, text: str) -> None:
        if not self.tty:
            return
        filled = int(self.width * step / max(total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {step}/{total} {text}\033[K")
        if step >= total:
            self.stream.write("\n")
        self.stream.flush()

    def log(self, record: dict[str, Any]) -> None:
        keys = [k for k in record if k in ("psnr", "bpp", "bits", "loss") or k.startswith("eval_")]
        self.status = " ".join(f"{k}={record[k]:.4g}" for k in keys)
        if not self.tty:
            self.stream.write(f"{self.label} epoch {record.get('epoch')} step {record.get('step')} "
                              f"{self.status} ({duration(record.get('time_s', 0))})\n")
            self.stream.flush()
