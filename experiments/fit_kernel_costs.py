"""What the compiled factored count costs, fitted on real C-EP writes: the constants that decide
when it declines (``KERNEL_DENSE_DENSITY``, ``KERNEL_ROW_COST`` in ``neurosim.hardware.arrays``)
are set from this.

A synthetic update (``bench_pulse_paths.py``) has no rows that reach half a pulse; C-EP's W_1
updates on the noisier presets have dozens, and those rows, which the count forms itself, are
what made it slower than forming the whole update. So: a short C-EP-1h run (784-512-10, batch
20, 1 thread) per preset, every tenth rank-B write of W_1 kept and every first one (with whether it was the first
write with its input: C-EP's first nudged step of a batch, where the count searches cumulative
sums, alias tables not built yet); each kept write then timed, in turn, two ways (best of 5):
the compiled factored count with its switch lifted, and the formed path a declined write takes
(the update formed by one matrix product, then the compiled formed count). A least-squares fit
of the factored time on (1, points of later writes, points of first writes, devices in formed
rows) gives the cost of a point (two kinds) and of a formed row's device; with the formed path's
time per device:

- ``KERNEL_DENSE_DENSITY`` = (formed path per device) / (one point): above this many points per
  device (counting a formed row's devices at ``KERNEL_ROW_COST`` points each), forming pays;
- ``KERNEL_FIRST_DENSITY``: the same for a first write (its points cost a search);
- ``KERNEL_ROW_COST`` = (one formed row's device) / (one point).

    python experiments/fit_kernel_costs.py --data-dir /work/shared/data

writes experiments/results/kernel_costs.json (the speed page renders it) and prints the fitted
constants beside the ones in the code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmeta import load_now, record
from neurosim.backends.torch import TorchBackend
from neurosim.config import load_config
from neurosim.hardware import arrays, pulse_kernels
from neurosim.io import atomic_write_json

OUT = Path(__file__).parent / "results" / "kernel_costs.json"
PRESETS = ["aihwkit_reram_sb", "aihwkit_reram_es", "aihwkit_ecram", "aihwkit_pcm", "pcmo"]


def kept_writes(preset: str, data_dir: str, samples: int, every: int) -> list[dict]:
    """The factors of every first and ``every``-th other rank-B write of W_1 of a short C-EP run on ``preset``
    (all of them, also those the count declines before reading the input), and whether it was
    the first write with its input (C-EP's first nudged step of a batch: no alias tables yet)."""
    config = load_config("mnist_fc1_cep", [f"data.dir={data_dir}", f"synapses.device={preset}",
                                           "train.batch_size=20", f"data.train_subset={samples}",
                                           "data.test_subset=1"])
    backend = TorchBackend(config)
    backend.build()
    kept, calls, last, real = [], [0], [None], arrays.factored_pulse_counts

    def keep(delta, factor, rounding, generator):
        if isinstance(delta, arrays.OuterProduct) and delta.left.shape[1] * delta.right.shape[1] >= 100_000:
            # C-EP hands the same input to a batch's K writes (a buffer refilled in place per batch)
            seen = (delta.right, delta.right._version)
            first = last[0] is None or last[0][0] is not seen[0] or last[0][1] != seen[1]
            last[0] = seen
            calls[0] += 1
            # every first write (one in K: a stride could step over them all) and every N-th other
            if first or calls[0] % every == 0:
                kept.append({"left": delta.left.clone(), "factor": float(delta.scale * factor),
                             "right": delta.right.clone(), "first": first})
        return real(delta, factor, rounding, generator)

    arrays.factored_pulse_counts = keep
    try:
        backend.bench(samples)
    finally:
        arrays.factored_pulse_counts = real
    return kept


def best_us(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e6 * min(times)


def time_write(w: dict) -> dict:
    """One kept write: its expected points and formed rows, and the two paths' times (the
    factored count with what a write reads of its input: a search of the cumulative sums at
    the first write with it, alias tables after)."""
    left, factor, right = w["left"], w["factor"], w["right"]
    magnitude = right.abs()
    sums, row_max = magnitude.sum(1, dtype=torch.float64), magnitude.amax(1)
    tables = pulse_kernels.input_tables(magnitude, {"uses": 0 if w["first"] else 1})
    rt = right.t().contiguous()
    weights = left.abs().double() * abs(factor)
    bound = weights.t() @ row_max.double()  # [out]: a row is formed where this reaches 1/2
    formed = bound >= 0.5
    points = arrays.RATE * float((weights[:, ~formed].sum(1) * sums).sum())
    every_row = arrays.RATE * float((weights.sum(1) * sums).sum())  # what the first write's check reads
    forced = lambda: pulse_kernels.factored_counts(left, factor, right, rt, sums, row_max, tables,  # noqa: E731
                                                   "stochastic", None, float("inf"), 0.0)
    buffer = torch.empty(left.shape[1], right.shape[1], dtype=right.dtype)

    def formed_path():
        signed = torch.mm(left.t(), right, out=buffer).mul_(factor)
        pulse_kernels.formed_counts(signed, "stochastic", None)

    accepted = forced() is not None  # beyond one row in eight formed it always declines
    return {"points": points, "points_every_row": every_row, "formed_rows": int(formed.sum()),
            "devices": left.shape[1] * right.shape[1], "row_devices": int(formed.sum()) * right.shape[1],
            "first": w["first"], "factored_us": best_us(forced) if accepted else None,
            "formed_us": best_us(formed_path)}


def picks_factored(r: dict, constants: dict) -> bool:
    """Whether the code, with these constants, counts the write from its factors: a first write
    is checked before the input is read (its points over every row) at KERNEL_FIRST_DENSITY."""
    if r["factored_us"] is None:
        return False
    density = constants["KERNEL_FIRST_DENSITY"] if r["first"] else constants["KERNEL_DENSE_DENSITY"]
    if r["first"] and r["points_every_row"] > density * r["devices"]:
        return False
    return r["points"] + constants["KERNEL_ROW_COST"] * r["row_devices"] <= density * r["devices"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--samples", type=int, default=4000, help="training samples per preset's run")
    parser.add_argument("--every", type=int, default=10, help="keep every N-th W_1 write")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if not pulse_kernels.available():
        parser.error("the compiled counts are off (numba missing or NEUROSIM_KERNELS=torch): nothing to fit")
    torch.set_num_threads(1)
    load_start = load_now()
    rows = []
    for preset in args.presets.split(","):
        writes = kept_writes(preset, args.data_dir, args.samples, args.every)
        timed = [time_write(w) | {"preset": preset} for w in writes]
        rows += timed
        factored = [r["factored_us"] for r in timed if r["factored_us"] is not None]
        print(f"{preset}: {len(timed)} writes, median {np.median([r['points'] for r in timed]):.0f} points, "
              f"{np.median([r['formed_rows'] for r in timed]):.0f} formed rows; factored "
              f"{np.median(factored) if factored else float('nan'):.0f} us, formed {np.median([r['formed_us'] for r in timed]):.0f} us "
              "(medians)", flush=True)
    fit = [r for r in rows if r["factored_us"] is not None]
    design = np.array([[1.0, 0.0 if r["first"] else r["points"], r["points"] if r["first"] else 0.0,
                        r["row_devices"]] for r in fit])
    coef, *_ = np.linalg.lstsq(design, np.array([r["factored_us"] for r in fit]), rcond=None)
    fixed_us, point_us, first_point_us, row_device_us = (float(c) for c in coef)
    formed_device_us = float(np.median([r["formed_us"] / r["devices"] for r in rows]))
    fitted = {"KERNEL_DENSE_DENSITY": formed_device_us / point_us,
              "KERNEL_FIRST_DENSITY": formed_device_us / first_point_us,
              "KERNEL_ROW_COST": row_device_us / point_us}
    in_code = {"KERNEL_DENSE_DENSITY": arrays.KERNEL_DENSE_DENSITY, "KERNEL_FIRST_DENSITY": arrays.KERNEL_FIRST_DENSITY,
               "KERNEL_ROW_COST": arrays.KERNEL_ROW_COST}
    # how often the constants in the code pick the cheaper path, on these writes
    right = sum(1 for r in rows if picks_factored(r, in_code)
                == (r["factored_us"] is not None and r["factored_us"] <= r["formed_us"]))
    spent = sum(r["factored_us"] if picks_factored(r, in_code) else r["formed_us"] for r in rows)
    cheapest = sum(min(r["formed_us"], r["factored_us"] or float("inf")) for r in rows)
    for name in fitted:
        print(f"{name}: fitted {fitted[name]:.4g} (1/{1 / fitted[name]:.0f}), in the code {in_code[name]:.4g}")
    print(f"the code's constants pick the cheaper path in {right} of {len(rows)} writes "
          f"({spent / 1e3:.1f} ms against {cheapest / 1e3:.1f} ms always picking the cheaper)")
    atomic_write_json(Path(args.out), {
        **record(load_start), "kernels": True,
        "fit": {"fixed_us": fixed_us, "point_ns": 1e3 * point_us, "first_point_ns": 1e3 * first_point_us,
                "row_device_ns": 1e3 * row_device_us, "formed_device_ns": 1e3 * formed_device_us},
        "fitted": fitted, "in_code": in_code, "picked_cheaper": [right, len(rows)],
        "picked_ms": spent / 1e3, "cheapest_ms": cheapest / 1e3, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
