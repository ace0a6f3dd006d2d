"""Run test code in fresh Python processes: with forced host devices, or as several JAX
processes joined through a coordinator on 127.0.0.1 (as on a cluster, one per host)."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _env(devices: int = 1) -> dict[str, str]:
    return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
                PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def run_with_devices(devices: int, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=_env(devices), capture_output=True,
                          text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(argv_of, count: int = 2, devices: int = 1, timeout: float = 600
                  ) -> list[subprocess.CompletedProcess]:
    """Start `argv_of(process_id, coordinator)` for every process at once (each with
    `devices` host devices); wait for all."""
    coordinator = f"127.0.0.1:{free_port()}"
    procs = [subprocess.Popen(argv_of(i, coordinator), env=_env(devices), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(count)]
    done = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            p.kill()
    return done
