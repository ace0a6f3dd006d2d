"""A dependency-free progress bar with rate and ETA, for the command line."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _duration(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class ProgressBar:
    """Redraws one line on a terminal; prints a line per log record otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 28, every_s: float = 0.5):
        self.label, self.width, self.every_s = label, width, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = self.last = time.perf_counter()
        self.first_step: int | None = None
        self.status = ""

    def step(self, step: int, total: int) -> None:
        now = time.perf_counter()
        if self.first_step is None:
            self.first_step, self.t0 = step, now
        if not self.tty or (now - self.last < self.every_s and step < total):
            return
        self.last = now
        done = step - self.first_step
        rate = done / max(now - self.t0, 1e-9)
        eta = (total - step) / rate if rate > 0 else 0.0
        filled = int(self.width * step / total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {step}/{total} {rate:.1f} it/s "
                          f"ETA {_duration(eta)} {self.status}\033[K")
        if step >= total:
            self.stream.write("\n")
        self.stream.flush()

    def log(self, record: dict[str, Any]) -> None:
        keys = [k for k in ("psnr", "bpp", "bits", "loss") if k in record]
        self.status = " ".join(f"{k}={record[k]:.4g}" for k in keys)
        if not self.tty:
            self.stream.write(f"{self.label} epoch {record.get('epoch')} step {record.get('step')} "
                              f"{self.status} ({_duration(record.get('time_s', 0))})\n")
            self.stream.flush()
