"""Entropy coder benchmark: jaxcodec's jitted rANS against constriction, same run, same data.

Cases (from the foundation issue):
  (a) 10M i.i.d. symbols of a 256-symbol discretized Laplace (one table);
  (b) 10M quantized-Gaussian symbols, per-symbol scale from 64 tables (hyperprior-like);
  (c) 10k symbols of the (a) distribution.

Throughput is the best of --repeats runs after a warm-up call (JIT compile time is shown
separately), from a NumPy array in to bytes out and back. Overhead is the compressed size
over the exact information content -sum log2 p under the float model; "vs tables" uses the
16-bit integer tables the coder actually uses, isolating the coder itself.

constriction's matching model for (b) is QuantizedGaussian with a per-symbol scale; a second
row codes (b) with 64 Categorical models, one call per table, symbols grouped by table (the
grouping and model construction are not timed), the fastest way we found to use it.

    python experiments/bench_entropy.py [--n 10000000] [--repeats 5] [--check-devices]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import constriction
import jax
import numpy as np

from jaxcodec.entropy import decode, encode, tables_from_distribution, tables_from_pmf
from jaxcodec.entropy.tables import bin_masses

LAPLACE_SCALE = 10.0
SCALE_TABLE = np.exp(np.linspace(np.log(0.11), np.log(256.0), 64))  # CompressAI's scale table


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def laplace_case(n: int, rng: np.random.Generator):
    values = np.arange(256) - 128
    pmf = bin_masses("laplace", values.astype(np.float64), 0.0, LAPLACE_SCALE)
    pmf /= pmf.sum()
    symbols = rng.choice(256, size=n, p=pmf)
    info = float(-np.log2(pmf[symbols]).sum())
    tables = tables_from_pmf(pmf)
    model = constriction.stream.model.Categorical(pmf, perfect=False)

    def c_enc():
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(symbols.astype(np.int32), model)
        return coder.get_compressed()

    def c_dec(words):
        return constriction.stream.stack.AnsCoder(words).decode(model, n)

    return dict(values=symbols, indexes=None, tables=tables, info=info, c_enc=c_enc, c_dec=c_dec,
                c_check=lambda out: np.array_equal(out, symbols))


def gaussian_case(n: int, rng: np.random.Generator):
    rows = rng.integers(0, len(SCALE_TABLE), n)
    sigma = SCALE_TABLE[rows]
    values = np.round(rng.normal(0.0, sigma)).astype(np.int64)
    info = float(-np.log2(bin_masses("gaussian", values.astype(np.float64), 0.0, sigma)).sum())
    tables = tables_from_distribution("gaussian", SCALE_TABLE)
    bound = int(np.abs(values).max()) + 1
    model = constriction.stream.model.QuantizedGaussian(-bound, bound)
    means = np.zeros(n)

    def c_enc():
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(values.astype(np.int32), model, means, sigma)
        return coder.get_compressed()

    def c_dec(words):
        return constriction.stream.stack.AnsCoder(words).decode(model, means, sigma)

    # Grouped variant: one Categorical per scale over the tables' own supports.
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(len(SCALE_TABLE) + 1))
    grouped = values[order]
    cats = []
    for k in range(len(SCALE_TABLE)):
        lo = int(tables.offsets[k])
        size = int(tables.sizes[k]) - 1
        support = lo + np.arange(size)
        pmf = np.maximum(bin_masses("gaussian", support.astype(np.float64), 0.0, SCALE_TABLE[k]), 1e-12)
        cats.append((lo, size, constriction.stream.model.Categorical(pmf / pmf.sum(), perfect=False)))
    clipped = [np.clip(grouped[bounds[k]:bounds[k + 1]] - cats[k][0], 0, cats[k][1] - 1).astype(np.int32)
               for k in range(len(SCALE_TABLE))]

    def g_enc():
        coder = constriction.stream.stack.AnsCoder()
        for k in reversed(range(len(SCALE_TABLE))):
            coder.encode_reverse(clipped[k], cats[k][2])
        return coder.get_compressed()

    def g_dec(words):
        coder = constriction.stream.stack.AnsCoder(words)
        return [coder.decode(cats[k][2], bounds[k + 1] - bounds[k]) for k in range(len(SCALE_TABLE))]

    return dict(values=values, indexes=rows, tables=tables, info=info, c_enc=c_enc, c_dec=c_dec,
                c_check=lambda out: np.array_equal(out, values), g_enc=g_enc, g_dec=g_dec)


def run_case(name: str, case: dict, repeats: int) -> dict:
    values, rows, tables = case["values"], case["indexes"], case["tables"]
    n = values.size
    t0 = time.perf_counter()
    data = encode(values, tables, rows)
    decoded = decode(data, tables, rows, count=n)
    first_call = time.perf_counter() - t0
    assert np.array_equal(decoded, values), f"{name}: round trip failed"
    enc_s, data = best_time(lambda: encode(values, tables, rows), repeats)
    dec_s, decoded = best_time(lambda: decode(data, tables, rows, count=n), repeats)
    assert np.array_equal(decoded, values), f"{name}: round trip failed"
    cenc_s, words = best_time(case["c_enc"], repeats)
    cdec_s, cout = best_time(lambda: case["c_dec"](words), repeats)
    assert case["c_check"](cout), f"{name}: constriction round trip failed"
    row = dict(name=name, n=n, bytes=len(data), info_bytes=case["info"] / 8,
               table_bytes=tables.information_bits(values, rows) / 8,
               enc=n / enc_s / 1e6, dec=n / dec_s / 1e6, cenc=n / cenc_s / 1e6, cdec=n / cdec_s / 1e6,
               cbytes=words.nbytes, first_call=first_call)
    if "g_enc" in case:
        genc_s, gwords = best_time(case["g_enc"], repeats)
        gdec_s, _ = best_time(lambda: case["g_dec"](gwords), repeats)
        row.update(genc=n / genc_s / 1e6, gdec=n / gdec_s / 1e6, gbytes=gwords.nbytes)
    return row


def check_devices(case: dict) -> str:
    """Encode on the accelerator and on the CPU: same bytes, and each decodes on the other."""
    accel = [d for d in jax.devices() if d.platform != "cpu"]
    if not accel:
        return "no accelerator: device cross-check skipped"
    cpu = jax.devices("cpu")[0]
    values, rows, tables = case["values"], case["indexes"], case["tables"]
    with jax.default_device(accel[0]):
        on_accel = encode(values, tables, rows)
    with jax.default_device(cpu):
        on_cpu = encode(values, tables, rows)
        back = decode(on_accel, tables, rows, count=values.size)
    with jax.default_device(accel[0]):
        back2 = decode(on_cpu, tables, rows, count=values.size)
    same = on_accel == on_cpu
    ok = np.array_equal(back, values) and np.array_equal(back2, values)
    return f"{accel[0].device_kind}: identical bytes={same}, cross-device round trips={ok}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="symbols in cases (a) and (b)")
    ap.add_argument("--small", type=int, default=10_000, help="symbols in case (c)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (best is kept)")
    ap.add_argument("--check-devices", action="store_true", help="also encode on GPU and decode on CPU")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    cases = {"(a) laplace-256": laplace_case(args.n, rng),
             "(b) gaussian-64-scales": gaussian_case(args.n, rng),
             "(c) small": laplace_case(args.small, rng)}
    rows = [run_case(name, case, args.repeats if case["values"].size > 100_000 else 20 * args.repeats)
            for name, case in cases.items()]

    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}); host: {platform.processor() or platform.machine()}, "
          f"jax {jax.__version__}, constriction {constriction.__version__ if hasattr(constriction, '__version__') else '?'}")
    print()
    print("| case | symbols | ours enc Msym/s | ours dec Msym/s | constriction enc | constriction dec "
          "| enc ratio | dec ratio | overhead vs model % | overhead vs tables % | constriction overhead % "
          "| first call s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['n']:,} | {r['enc']:.1f} | {r['dec']:.1f} | {r['cenc']:.1f} | {r['cdec']:.1f} "
              f"| {r['enc'] / r['cenc']:.2f} | {r['dec'] / r['cdec']:.2f} "
              f"| {100 * (r['bytes'] / r['info_bytes'] - 1):.4f} | {100 * (r['bytes'] / r['table_bytes'] - 1):.4f} "
              f"| {100 * (r['cbytes'] / r['info_bytes'] - 1):.4f} | {r['first_call']:.2f} |")
    for r in rows:
        if "genc" in r:
            print(f"\n{r['name']}, constriction with 64 grouped Categorical models instead: "
                  f"enc {r['genc']:.1f} Msym/s, dec {r['gdec']:.1f} Msym/s, "
                  f"overhead {100 * (r['gbytes'] / r['info_bytes'] - 1):.4f}%; "
                  f"ours/grouped: enc {r['enc'] / r['genc']:.2f}, dec {r['dec'] / r['gdec']:.2f}")
    if args.check_devices:
        print("\n" + check_devices(cases["(b) gaussian-64-scales"]))
    big = rows[:2]
    print(f"\nsummary: encode_ratio={min(r['enc'] / r['cenc'] for r in big):.2f} "
          f"decode_ratio={min(r['dec'] / r['cdec'] for r in big):.2f} "
          f"overhead_pct={max(100 * (r['bytes'] / r['info_bytes'] - 1) for r in big):.3f}")


if __name__ == "__main__":
    main()
