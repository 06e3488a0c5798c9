"""Which stochastic-rounding path is cheapest at which pulse density: the thresholds of
``neurosim.hardware.arrays`` (``DENSE_DENSITY`` for the factored count, ``FORMED_DENSE_DENSITY``
for a formed update) are set from this.

One C-EP-sized update of W_1 (784-512, batch 20): x a batch of MNIST digits, du normal, scaled so
that the expected pulses per device sweep from 0.1% to 5%. At each density, in turn and round
after round (1 torch thread, best time of each kept, so a shared machine's drift hits all three):

- factored: ``factored_pulse_counts`` from the factors (where it accepts the update);
- formed, sparse: the update formed into a buffer, ``pulse_counts``' sparse path (forced);
- formed, dense: the update formed, ``dense_counts`` (a draw for every device).

Also recorded: which path the thresholds pick there. Times include forming the update where a
path needs it, as a write does.

    python experiments/bench_pulse_paths.py --data-dir /work/shared/data

writes experiments/results/bench_pulse_paths.json (the speed page renders it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from benchmeta import load_now, record

from neurosim.data import load_dataset
from neurosim.hardware import arrays
from neurosim.io import atomic_write_json

OUT = Path(__file__).parent / "results" / "bench_pulse_paths.json"
TARGETS = (0.001, 0.002, 0.004, 0.007, 0.01, 0.017, 0.03, 0.05)
"""Expected pulses per device, sum of p over the devices / devices (C-EP on ecram: about 0.03%,
on aihwkit_reram_sb about 1.6%)."""


def best_ms(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with MNIST (as neurosim train --data-dir)")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15, help="timings per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = load_now()
    g = torch.Generator().manual_seed(0)
    x = load_dataset("mnist", "train", args.data_dir, subset=args.batch_size, download=False).images
    du = torch.randn(args.batch_size, args.hidden, generator=g)
    size = args.hidden * x.shape[1]
    buffer = torch.empty(args.hidden, x.shape[1])
    base = arrays.pulse_units(arrays.OuterProduct(du, x, 1.0), 1.0).abs_()
    rows = []
    for target in TARGETS:
        # stochastic rounding's expected pulses: mean of p (floor(p) + frac(p) = p)
        scale = target / float(base.mean())
        update = arrays.OuterProduct(du, x, scale)
        p = base * scale

        def factored():
            return arrays.factored_pulse_counts(update, 1.0, "stochastic", g)

        def formed_sparse():
            saved = arrays.FORMED_DENSE_DENSITY
            arrays.FORMED_DENSE_DENSITY = float("inf")
            try:
                return arrays.pulse_counts(arrays.pulse_units(update, 1.0, buffer), "stochastic", g, buffer)
            finally:
                arrays.FORMED_DENSE_DENSITY = saved

        def formed_dense():
            return arrays.dense_counts(arrays.pulse_units(update, 1.0, buffer).abs_().view(-1), g)

        accepts = factored() is not None

        candidates = arrays.RATE * float(p.sum()) / size  # the density pulse_counts' switch reads
        # the factored count's switch reads its bound's: sum_b |du_b|_1 |x_b|_1 >= sum p
        bound = arrays.RATE * scale * float((du.abs().sum(1) * x.abs().sum(1)).sum()) / size
        timings: dict[str, list[float]] = {"factored": [], "formed_sparse": [], "formed_dense": []}
        for _ in range(args.rounds):
            if accepts:
                timings["factored"].append(best_ms(factored, args.repeats))
            timings["formed_sparse"].append(best_ms(formed_sparse, args.repeats))
            timings["formed_dense"].append(best_ms(formed_dense, args.repeats))
        best = {name: min(times) for name, times in timings.items() if times}
        picked = ("factored" if accepts else
                  "formed_dense" if candidates > arrays.FORMED_DENSE_DENSITY else "formed_sparse")
        row = {"pulses_per_device": round(float(p.mean()), 5), "candidates_per_device": round(candidates, 5),
               "factored_candidates_per_device": round(bound, 5),
               "factored_accepts": accepts, **{f"{name}_ms": round(ms, 3) for name, ms in best.items()},
               "cheapest": min(best, key=best.get), "picked": picked}
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    atomic_write_json(Path(args.out), {
        **record(load_start, "1 thread"),
        "shape": [args.hidden, x.shape[1]], "batch_size": args.batch_size,
        "thresholds": {"DENSE_DENSITY": arrays.DENSE_DENSITY, "FORMED_DENSE_DENSITY": arrays.FORMED_DENSE_DENSITY},
        "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
