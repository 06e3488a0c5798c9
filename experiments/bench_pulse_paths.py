"""Which stochastic-rounding path is cheapest at which pulse density: the thresholds of
``neurosim.hardware.arrays`` (``DENSE_DENSITY`` for the factored count in torch,
``KERNEL_DENSE_DENSITY`` for the compiled one, ``FORMED_DENSE_DENSITY`` for a formed update) are
set from this.

One C-EP-sized update of W_1 (784-512, batch 20): x a batch of MNIST digits, du normal, scaled so
that the expected pulses per device sweep from 0.1% to 5%. At each density, in turn and round
after round (1 torch thread, best time of each kept, so a shared machine's drift hits all):

- torch factored: ``factored_pulse_counts`` from the factors, torch operations (where its rows
  allow; its density switch lifted, to time it beyond it);
- torch formed, sparse: the update formed into a buffer, ``pulse_counts``' sparse path (forced);
- torch formed, dense: the update formed, ``dense_counts`` (a draw for every device);
- kernel factored and kernel formed: the same two counts compiled (``pulse_kernels``, numba).

Also recorded: which path the thresholds pick there, with and without the kernels. Times include
forming the update where a path needs it, as a write does.

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
from neurosim.hardware import arrays, pulse_kernels
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
    kernels = pulse_kernels.available()
    rows = []
    for target in TARGETS:
        # stochastic rounding's expected pulses: mean of p (floor(p) + frac(p) = p)
        scale = target / float(base.mean())
        update = arrays.OuterProduct(du, x, scale)
        p = base * scale

        def lifted(fn, kernels):
            def run():
                saved = (arrays.KERNELS, arrays.DENSE_DENSITY, arrays.KERNEL_DENSE_DENSITY,
                         arrays.KERNEL_FIRST_DENSITY, arrays.FORMED_DENSE_DENSITY)
                arrays.KERNELS = kernels
                arrays.DENSE_DENSITY = arrays.KERNEL_DENSE_DENSITY = arrays.FORMED_DENSE_DENSITY = float("inf")
                arrays.KERNEL_FIRST_DENSITY = float("inf")
                try:
                    return fn()
                finally:
                    (arrays.KERNELS, arrays.DENSE_DENSITY, arrays.KERNEL_DENSE_DENSITY,
                     arrays.KERNEL_FIRST_DENSITY, arrays.FORMED_DENSE_DENSITY) = saved
            return run

        def factored():
            return arrays.factored_pulse_counts(update, 1.0, "stochastic", g)

        def formed():
            return arrays.pulse_counts(arrays.pulse_units(update, 1.0, buffer), "stochastic", g, buffer)

        def formed_dense():
            return arrays.dense_counts(arrays.pulse_units(update, 1.0, buffer).abs_().view(-1), g)

        paths = {"factored": lifted(factored, False), "formed_sparse": lifted(formed, False),
                 "formed_dense": formed_dense}
        if kernels:
            paths |= {"kernel_factored": lifted(factored, True), "kernel_formed": lifted(formed, True)}
        candidates = arrays.RATE * float(p.sum()) / size  # the density pulse_counts' switch reads
        # the factored count's switch reads its bound's: sum_b |du_b|_1 |x_b|_1 >= sum p
        bound = arrays.RATE * scale * float((du.abs().sum(1) * x.abs().sum(1)).sum()) / size
        accepts = paths["factored"]() is not None  # its rows allow it (density aside)
        timings: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, fn in paths.items():
                if accepts or "factored" not in name:
                    timings[name].append(best_ms(fn, args.repeats))
        best = {name: min(times) for name, times in timings.items() if times}
        torch_best = {k: v for k, v in best.items() if not k.startswith("kernel")}
        picked = ("factored" if accepts and bound <= arrays.DENSE_DENSITY else
                  "formed_dense" if candidates > arrays.FORMED_DENSE_DENSITY else "formed_sparse")
        row = {"pulses_per_device": round(float(p.mean()), 5), "candidates_per_device": round(candidates, 5),
               "factored_candidates_per_device": round(bound, 5),
               "factored_accepts": accepts, **{f"{name}_ms": round(ms, 3) for name, ms in best.items()},
               "cheapest": min(torch_best, key=torch_best.get), "picked": picked}
        if kernels:
            kernel_best = {k: v for k, v in best.items() if k.startswith("kernel")}
            # what the compiled count decides with the code's thresholds, asked directly (it weighs
            # its points and the rows it would form); the second call, as at C-EP's later steps,
            # where what it read of the input is reused
            saved = arrays.KERNELS
            arrays.KERNELS = True
            try:
                arrays.factored_pulse_counts(update, 1.0, "stochastic", g)
                kernel_accepts = arrays.factored_pulse_counts(update, 1.0, "stochastic", g) is not None
            finally:
                arrays.KERNELS = saved
            row |= {"kernel_cheapest": min(kernel_best, key=kernel_best.get),
                    "kernel_picked": "kernel_factored" if kernel_accepts else "kernel_formed"}
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    atomic_write_json(Path(args.out), {
        **record(load_start, "1 thread"),
        "shape": [args.hidden, x.shape[1]], "batch_size": args.batch_size,
        "thresholds": {"DENSE_DENSITY": arrays.DENSE_DENSITY, "FORMED_DENSE_DENSITY": arrays.FORMED_DENSE_DENSITY,
                       "KERNEL_DENSE_DENSITY": arrays.KERNEL_DENSE_DENSITY, "KERNEL_FIRST_DENSITY": arrays.KERNEL_FIRST_DENSITY,
                       "KERNEL_ROW_COST": arrays.KERNEL_ROW_COST},
        "kernels": kernels,
        "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
