"""Does torch.compile pay for the relaxation step on the CPU?

Issue 20 asked to fuse each layer's step with torch.compile where it pays, with an eager
fallback. This measures it: the no-grad step of EP-1h (``mnist_fc1_ep``, 784-512-10) at batch 20
and 128 and of the P-conv (``mnist_conv_ep``) at batch 20, eager against
``torch.compile(model.step)`` (inductor, static shapes), on a fixed drive and state. Per variant:
the compile time (first call), the largest difference of the states after ``--steps`` steps (the
compiled kernels fuse and reorder float operations, so they are not bit for bit the eager step),
and the time per step, the variants in turn over ``--rounds`` rounds (1 thread), median of the
per-round ratios eager / compiled.

    python experiments/bench_compile.py

writes experiments/results/bench_compile.json (the speed page renders it).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from neurosim.config import load_config
from neurosim.core.network import build_network
from neurosim.io import atomic_write_json

OUT = Path(__file__).parent / "results" / "bench_compile.json"
CASES = [("mnist_fc1_ep", 20), ("mnist_fc1_ep", 128), ("mnist_conv_ep", 20)]


def run(step, state, drive, steps):
    for _ in range(steps):
        state = step(state, drive)
    return state


@torch.no_grad()
def case(config: str, batch: int, steps: int, rounds: int, repeats: int) -> dict:
    model = build_network(load_config(config)).model
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, model.sizes[0], generator=g)
    drive, state = model.prepare(x), model.init_state(batch)
    eager = run(model.step, state, drive, steps)
    t = time.perf_counter()
    compiled_step = torch.compile(model.step, dynamic=False)
    compiled = run(compiled_step, state, drive, steps)
    compile_seconds = time.perf_counter() - t
    diff = max(float((a - b).abs().max()) for a, b in zip(eager, compiled))
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(rounds):
        for name, step in (("eager", model.step), ("compiled", compiled_step)):
            t = time.perf_counter()
            for _ in range(repeats):
                run(step, state, drive, steps)
            times[name].append((time.perf_counter() - t) / (repeats * steps))
    ratios = [e / c for e, c in zip(times["eager"], times["compiled"])]
    row = {"config": config, "batch_size": batch, "steps": steps, "compile_seconds": round(compile_seconds, 1),
           "max_abs_difference": diff, "eager_us_per_step": round(statistics.median(times["eager"]) * 1e6, 1),
           "compiled_us_per_step": round(statistics.median(times["compiled"]) * 1e6, 1),
           "speedup_median": round(statistics.median(ratios), 3),
           "speedup_range": [round(min(ratios), 3), round(max(ratios), 3)]}
    print(f"{config} batch {batch}: eager {row['eager_us_per_step']} us, compiled {row['compiled_us_per_step']} us "
          f"per step ({row['speedup_median']:.2f}x), compile {row['compile_seconds']} s, max |diff| {diff:.1e}",
          flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    rows = [case(config, batch, args.steps, args.rounds, 20 if "fc1" in config else 1) for config, batch in CASES]
    atomic_write_json(args.out, {
        "rows": rows, "threads": 1, "command": "python experiments/bench_compile.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
        "load": f"load average {load_start:.1f} at start and {os.getloadavg()[0]:.1f} at end",
        "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
