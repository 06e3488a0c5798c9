"""C-EP on simulated devices with beta < 0: the device_comparison presets study, nudged the other way.

With beta > 0 C-EP's per-step updates feed back positively on the phase that produces them
(experiments/cep_feedback.py): the summed update overshoots EP's, and on a device every per-step
overshoot becomes programming pulses through a nonlinear, quantised response. With beta < 0 the
feedback is negative. This script reruns the C-EP-1h rows of ``device_comparison.py --study presets``
(``mnist_fc1_cep``, the paper's rates, 3 epochs on the first 10,000 samples, full test set, seed 0, one
thread) with ``estimator.beta=-0.2`` and writes a table beside the beta = +0.2 rows already in
``experiments/results/device_comparison/presets/cep/``.

    python experiments/device_negbeta.py --data-dir ../shared/data [--devices ideal,levels_64,...]

Finished runs are read back, so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import neurosim
from neurosim.io import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
PLUS = RESULTS / "device_comparison" / "presets" / "cep"
DEVICES = ["ideal", "levels_16", "levels_64", "levels_256", "ag_a_si", "alox_hfo2", "epiram", "pcmo",
           "taox_tio2", "taox_hfox", "aihwkit_ecram", "aihwkit_capacitor"]
OVERRIDES = ["estimator.beta=-0.2", "data.train_subset=10000", "train.epochs=3", "compute.threads=1"]


def last_metrics(folder: Path) -> dict | None:
    path = folder / "metrics.jsonl"
    if not (folder / "result.json").exists() or not path.exists():
        return None
    return json.loads(path.read_text().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--devices", default=",".join(DEVICES))
    parser.add_argument("--out", default=str(RESULTS / "device_negbeta"))
    args = parser.parse_args()
    out = Path(args.out)
    devices = args.devices.split(",")
    for device in devices:
        if last_metrics(out / device) is None:
            print(f"training {device} at beta = -0.2", flush=True)
            extra = [f"data.dir={args.data_dir}"] if args.data_dir else []
            neurosim.train("mnist_fc1_cep", out=out / device, progress=False,
                           overrides=OVERRIDES + [f"synapses.device={device}"] + extra)
    ideal = {sign: last_metrics(folder / "ideal") for sign, folder in (("+", PLUS), ("-", out))}
    lines = ["| device | test error, beta +0.2 | gap to ideal | pulses | test error, beta -0.2 | gap to ideal | pulses |",
             "|---|---|---|---|---|---|---|"]
    for device in devices:
        plus, minus = last_metrics(PLUS / device), last_metrics(out / device)
        if plus is None or minus is None:
            continue
        cells = []
        for sign, row in (("+", plus), ("-", minus)):
            gap = 100 * (row["test_error"] - ideal[sign]["test_error"]) if ideal[sign] else float("nan")
            cells += [f"{100 * row['test_error']:.2f}%", f"{gap:+.2f}", f"{row.get('pulses', 0):,}"]
        lines.append(f"| `{device}` | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(out / "summary.md", table)
    print(table)


if __name__ == "__main__":
    main()
