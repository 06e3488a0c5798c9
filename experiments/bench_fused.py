"""Compiled relaxation phases (``compute.fused``) against the torch step, side by side.

Each case is a short real training-step measurement (``neurosim bench`` in a fresh process:
MNIST batches, the config's T and K) with ``compute.fused`` true and false in turn, round after round, so that a
drift of a shared machine's speed hits both; the ratio fused / eager of samples/s is taken
within each round, and its median and range are reported. Cases: EP-1h at batch 20 (1 thread,
the papers' setting and the reference comparison's) and at batch 128 (2 threads, samples shared
among threads), BPTT-1h (only its no-grad free-phase prefix compiles), C-EP-1h (its free phase;
the nudged phase writes weights at every step and stays in torch; at batch 128 on 2 threads,
compiled phases beside torch's threaded ones) and VF-1h.

    python experiments/bench_fused.py --data-dir ../shared/data

writes experiments/results/bench_fused.json (the speed page renders it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmeta import load_now, record

from neurosim.io import atomic_write_json

OUT = Path(__file__).parent / "results" / "bench_fused.json"
CASES = [("mnist_fc1_ep", "ep", 20, 1), ("mnist_fc1_ep", "ep", 128, 2), ("mnist_fc1_bptt", "bptt", 20, 1),
         ("mnist_fc1_cep", "cep", 20, 1), ("mnist_fc1_cep", "cep", 128, 2), ("mnist_fc1_cvf", "vf", 20, 1)]


def measure(config: str, estimator: str, batch: int, threads: int, fused: bool, samples: int,
            data_dir: str) -> float:
    """samples/s of one case in a fresh process (``neurosim bench``), as a user's run would be:
    numba's threads and torch's start there as they would in a training."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run([sys.executable, "-m", "neurosim", "bench", config, "--estimators", estimator,
                        "--batch-sizes", str(batch), "--samples", str(samples), "--data-dir", data_dir,
                        "--set", f"compute.threads={threads}", "--set", f"compute.fused={str(fused).lower()}",
                        "--json", str(out)], check=True, capture_output=True)
        return json.loads(out.read_text())[0]["samples_per_second"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    start = load_now()
    rows = []
    for config, estimator, batch, threads in CASES:
        rounds = []
        for _ in range(args.rounds):
            fused = measure(config, estimator, batch, threads, True, args.samples, args.data_dir)
            eager = measure(config, estimator, batch, threads, False, args.samples, args.data_dir)
            rounds.append({"fused": round(fused, 1), "eager": round(eager, 1), "ratio": round(fused / eager, 3)})
            print(config, estimator, batch, threads, rounds[-1], flush=True)
        ratios = [r["ratio"] for r in rounds]
        rows.append({"config": config, "estimator": estimator, "batch_size": batch, "threads": threads,
                     "rounds": rounds, "fused_median": statistics.median(r["fused"] for r in rounds),
                     "eager_median": statistics.median(r["eager"] for r in rounds),
                     "ratio_median": round(statistics.median(ratios), 2),
                     "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)]})
    atomic_write_json(args.out, {**record(start, "1 or 2 threads (per row)"), "samples": args.samples,
                                 "rows": rows})
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
