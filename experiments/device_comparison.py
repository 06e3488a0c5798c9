"""C-EP-1h on simulated devices against ideal synapses: a first, short comparison (issue 6).

Trains `mnist_fc1_cep` (the paper's C-EP-1h settings, every per-step update sent through the
device) on each preset for a few epochs on the first N training samples, and writes a table:
device, final test error, gap to ideal, total programming pulses, pulses per device, energy.
Short runs (the defaults below) show the ranking, not the accuracy a 100-epoch run reaches.

    python experiments/device_comparison.py --data-dir ../shared/data [--out experiments/results/device_comparison]

Finished runs in the output folder are read back (an interrupted comparison resumes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import neurosim
from neurosim.io import atomic_write, atomic_write_json
from neurosim.plots import plot_error_curves

BASE = "mnist_fc1_cep"
DEVICES = ["ideal", "levels_256", "levels_64", "levels_16", "taox_hfox", "epiram", "ag_a_si", "alox_hfo2", "pcmo"]
EPOCHS = 5
TRAIN_SAMPLES = 10000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="experiments/results/device_comparison")
    args = parser.parse_args()
    out = Path(args.out)
    common = [f"train.epochs={EPOCHS}", f"data.train_subset={TRAIN_SAMPLES}"]
    if args.data_dir:
        common.append(f"data.dir={args.data_dir}")
    rows = []
    for device in DEVICES:
        run_dir = out / device
        if not (run_dir / "result.json").is_file():
            neurosim.train(BASE, out=run_dir, overrides=common + [f"synapses.device={device}"], progress=False,
                           resume=(run_dir / "checkpoint.pt").is_file())
        result = json.loads((run_dir / "result.json").read_text())
        history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        pulses = result.get("synapses", {})
        rows.append({"device": device, "test_error": result["test_error"],
                     "curve": [r["test_error"] for r in history], "pulses": pulses.get("pulses", 0),
                     "pulses_per_device_mean": pulses.get("pulses_per_device_mean", 0.0),
                     "pulses_per_device_max": pulses.get("pulses_per_device_max", 0),
                     "energy_joules": pulses.get("energy_joules", 0.0)})
    ideal = rows[0]["test_error"]
    for row in rows:
        row["gap_to_ideal"] = row["test_error"] - ideal
    atomic_write_json(out / "summary.json", {"base": BASE, "epochs": EPOCHS, "train_samples": TRAIN_SAMPLES,
                                             "rows": rows})
    table = ["| device | test error | gap to ideal | pulses | pulses per device (mean / max) |",
             "|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| `{r['device']}` | {100 * r['test_error']:.2f}% | {100 * r['gap_to_ideal']:+.2f} | "
                     f"{r['pulses']:,} | {r['pulses_per_device_mean']:.1f} / {r['pulses_per_device_max']} |")
    text = "\n".join(table)
    atomic_write(out / "table.md", lambda h: h.write(text + "\n"), "w")
    print(text)
    plot(rows, out / "device_comparison.png")


def plot(rows: list[dict], path: Path) -> None:
    series = [{"label": r["device"], "errors": r["curve"], "style": "k--" if r["device"] == "ideal" else "o-"}
              for r in rows]
    plot_error_curves(series, path, f"C-EP-1h on devices ({TRAIN_SAMPLES} samples, {EPOCHS} epochs): test error",
                      size=(6, 4), legend_size=7, columns=2)


if __name__ == "__main__":
    main()
