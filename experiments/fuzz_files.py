"""Fuzz the .jxc reader of every codec with damaged and forged files.

Mutants of the checked-in fixtures (tests/data): raw byte damage (flips, truncations,
splices) and edits with every CRC recomputed (header values set to edge cases, raw NaN /
huge integers / deep nesting, sections dropped, renamed, swapped, emptied or grown,
payload bytes changed). Each case runs in a worker process under a memory limit and a
time limit; every case must end in BitstreamError or a clean decode. Prints counts by
outcome per codec and the first example of each failure kind; exits 1 if any case
crashed, hung, ran over the limits or raised anything else.

    python experiments/fuzz_files.py --cases 10000 --workers 2
    python experiments/fuzz_files.py --atheris 20000   # coverage-guided, CRCs repaired

With --atheris N (when atheris is installed), libFuzzer mutates the fixtures instead,
guided by coverage, and every input has its CRCs recomputed before it is read; any
exception but BitstreamError stops it with the input saved as crash-*.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import resource
import sys
import time

import numpy as np

TIME_LIMIT_S = 2.0  # per case, after the worker's first (compiling) decode of a codec
HARD_LIMIT_S = 30.0  # a case still running then is killed and counted as a hang
MEMORY_LIMIT = 1 << 30  # bytes of address space a case may add


def _worker(conn, limit: int) -> None:
    from jaxcodec.fixtures import NAMES, decode_fixture, fixture_bytes, outcome
    from jaxcodec import container

    for name in NAMES:  # warm up: compile each codec's decoder once, outside the limits
        decode_fixture(container.unpack(fixture_bytes(name)))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + limit, hard))
    conn.send("ready")
    while True:
        data = conn.recv()
        if data is None:
            return
        t0 = time.perf_counter()
        try:
            result = outcome(data)
        except MemoryError:
            result = "BUG: MemoryError"
        conn.send((result, time.perf_counter() - t0))


class Worker:
    def __init__(self, ctx):
        self.ctx = ctx
        self.start()

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, MEMORY_LIMIT), daemon=True)
        self.proc.start()
        if not self.conn.poll(600) or self.conn.recv() != "ready":
            raise RuntimeError("fuzz worker did not start")

    def result(self) -> tuple[str, float]:
        """The outcome of the case sent last; a dead or stuck worker is replaced."""
        if self.conn.poll(HARD_LIMIT_S):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        alive = self.proc.is_alive()
        self.proc.kill()
        self.proc.join()
        code = self.proc.exitcode
        self.start()
        return ("BUG: hang" if alive else f"BUG: crash (exit {code})"), HARD_LIMIT_S


def run_atheris(runs: int) -> int:
    import tempfile

    import atheris

    with atheris.instrument_imports():
        from jaxcodec.codecs import load_codecs
        from jaxcodec.fixtures import FIXTURE_DIR, NAMES, outcome, repair_crcs

        load_codecs()  # the codec modules load lazily: instrument them too
    corpus = tempfile.mkdtemp(prefix="jxc-corpus-")
    for name in NAMES:
        (__import__("pathlib").Path(corpus) / f"{name}.jxc").write_bytes((FIXTURE_DIR / f"{name}.jxc").read_bytes())

    def one_input(data: bytes) -> None:
        result = outcome(repair_crcs(data))
        if result.startswith("BUG"):
            raise RuntimeError(result)

    atheris.Setup([sys.argv[0], f"-runs={runs}", f"-rss_limit_mb={MEMORY_LIMIT >> 20 << 2}",
                   f"-timeout={int(HARD_LIMIT_S)}", corpus], one_input)
    atheris.Fuzz()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10000, help="mutants per codec")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--atheris", type=int, default=0, metavar="RUNS",
                    help="instead: coverage-guided fuzzing with atheris for RUNS executions")
    args = ap.parse_args()
    if args.atheris:
        return run_atheris(args.atheris)

    from jaxcodec.fixtures import NAMES, fixture_bytes, mutant

    ctx = mp.get_context("spawn")
    workers = [Worker(ctx) for _ in range(args.workers)]
    counts: dict[str, collections.Counter] = {}
    examples: dict[str, str] = {}
    t_start = time.perf_counter()
    for name in NAMES:
        seed = fixture_bytes(name)
        rng = np.random.default_rng([args.seed, NAMES.index(name)])
        counts[name] = collections.Counter()
        cases = [mutant(seed, rng) for _ in range(args.cases)]
        for i in range(0, len(cases), len(workers)):
            batch = cases[i:i + len(workers)]
            for w, (kind, data) in zip(workers, batch):  # one case per worker, in lock step
                w.conn.send(data)
            for w, (kind, data) in zip(workers, batch):
                result, seconds = w.result()
                if seconds > TIME_LIMIT_S and not result.startswith("BUG"):
                    result = f"BUG: slow ({result})"
                counts[name][f"{kind}: {result[:60]}"] += 1
                if result.startswith("BUG") and result not in examples:
                    examples[result] = f"{name} {kind}"
        print(f"{name}: {args.cases} cases done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)
    for w in workers:
        w.conn.send(None)

    print("| codec | mutation | outcome | cases |")
    print("|---|---|---|---|")
    bugs = 0
    for name, counter in counts.items():
        for key, n in sorted(counter.items()):
            kind, result = key.split(": ", 1)
            print(f"| {name} | {kind} | {result} | {n} |")
            bugs += n if result.startswith("BUG") else 0
    for result, where in examples.items():
        print(f"first {result!r}: {where}")
    total = sum(sum(c.values()) for c in counts.values())
    print(f"summary: cases={total} bugs={bugs} seconds={time.perf_counter() - t_start:.0f}")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
