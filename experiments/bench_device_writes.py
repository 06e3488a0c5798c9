"""Device-write speed: C-EP-1h, C-VF-1h and EP-1h on one preset per response law vs ideal
synapses, measured side by side in one process (``neurosim.bench`` interleaves device and ideal
runs), 1 thread, written to experiments/results/bench_device_writes.json (the speed results page
renders its table from that file). ``--fused false`` runs both sides with the torch step
(``compute.fused: false``): the ratio then isolates the write against the same step code, while
the default compares against the ideal training users run, whose phases are compiled.

    python experiments/bench_device_writes.py --data-dir /work/shared/data
    python experiments/bench_device_writes.py --data-dir /work/shared/data --fused false \
        --out experiments/results/bench_device_writes_torch_step.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch

import neurosim
from neurosim.hardware import pulse_kernels
from neurosim.io import atomic_write_json

QUIET = ["synapses.params.write_noise_std=0", "synapses.params.dw_min_std=0"]
LAWS = {"constant": ("levels_64", []), "soft_bounds": ("aihwkit_reram_sb", []),
        "linear_step": ("aihwkit_ecram", []), "exp_step": ("aihwkit_reram_es", []),
        "nonlinear": ("pcmo", []), "differential (refresh)": ("aihwkit_pcm", []),
        # the two noisiest presets without their write and c2c noise: the noise, which moves the
        # network's states at every step so that most devices get pulses, is what their writes
        # cost, not the law
        "soft_bounds, noise off": ("aihwkit_reram_sb", QUIET), "exp_step, noise off": ("aihwkit_reram_es", QUIET)}
OUT = Path(__file__).parent / "results" / "bench_device_writes.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--batch-sizes", default="20,128")
    parser.add_argument("--estimators", default="cep,cvf,ep", help="comma-separated: cep, cvf, ep")
    parser.add_argument("--laws", default=";".join(LAWS), help="semicolon-separated, from: " + "; ".join(LAWS))
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fused", choices=["true", "false"], default="true",
                        help="compute.fused of both the device and the ideal runs (default true)")
    args = parser.parse_args()
    unknown = [law for law in args.laws.split(";") if law not in LAWS]
    if unknown:
        parser.error(f"--laws: unknown {unknown}; known: {'; '.join(LAWS)}")
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    configs = {"cep": "mnist_fc1_cep", "cvf": "mnist_fc1_cvf", "ep": "mnist_fc1_ep"}
    rows = []
    for estimator in args.estimators.split(","):
        for law in args.laws.split(";"):
            device, extra = LAWS[law]
            for row in neurosim.bench(configs[estimator], batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
                                      estimators=[estimator], samples=args.samples, rounds=args.rounds,
                                      overrides=[f"data.dir={args.data_dir}", f"synapses.device={device}",
                                                 f"compute.fused={args.fused}", *extra]):
                row["law"] = law
                rows.append(row)
                print(f"{estimator} {law:<24} {device:<18} batch {row['batch_size']:>4}: "
                      f"{row['vs_ideal']:.2f}x ideal", flush=True)
    atomic_write_json(Path(args.out), {"command": " ".join([Path(sys.executable).name] + sys.argv),
                            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                            "machine": f"{platform.machine()}, {torch.get_num_threads()} thread, {platform.processor() or platform.platform()}",
                            "torch": torch.__version__,
                            "kernels": pulse_kernels.available(),  # compiled device writes (numba) on
                            "fused": args.fused == "true",  # compiled relaxation phases on both sides
                            "load": f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end "
                                    f"on {os.cpu_count()} cores",
                            "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
