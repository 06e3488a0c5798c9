"""What an analog chip would learn: C-EP and C-VF on simulated devices against ideal synapses (issue 6).

Two studies, each a list of short training runs (every per-step update of C-EP/C-VF sent through
the device, ``neurosim.hardware.synapses``), written into one folder per run and summarised as tables and
plots:

- ``presets``: C-EP-1h (``mnist_fc1_cep``, the paper's settings) on ideal synapses and on every
  shipped device preset; C-VF-1h (``mnist_fc1_cvf``) and EP-1h (``mnist_fc1_ep``: one write per
  batch) on a subset;
- ``properties``: C-EP-1h on one reference device (constant steps, ``BASE_DEVICE``), changing one
  property at a time: number of states, up/down asymmetry, cycle-to-cycle noise, device-to-device
  spread, stuck devices, read noise. Plots: test error against the property, with ideal training
  and the reference device as lines.

Runs are short (``TRAIN_SAMPLES`` samples for ``EPOCHS`` epochs, full test set): they rank devices
and show trends, not the accuracy of a 100-epoch run. Every run is a ``neurosim.train`` call with
``--set`` overrides (its config.yaml is in its folder), one torch thread each; finished runs are
read back, so an interrupted study resumes where it stopped.

    python experiments/device_comparison.py --data-dir ../shared/data [--study presets|properties|all]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import neurosim
from neurosim import presets as catalog
from neurosim.errors import DivergenceError
from neurosim.io import atomic_write, atomic_write_json
from neurosim.run.plots import plot_error_curves

EPOCHS = 3
TRAIN_SAMPLES = 10000
ESTIMATORS = {"cep": "mnist_fc1_cep", "cvf": "mnist_fc1_cvf", "ep": "mnist_fc1_ep"}
LABELS = {"cep": "C-EP", "cvf": "C-VF", "ep": "EP"}
BASE_DEVICE = ("levels_256", {"states": 1024})
"""Reference device of the property sweeps: 1024 equal steps over [-0.6, 0.6] (a step of 1.2e-3, the
size of aihwkit's ReRAM/ECRAM presets' dw_min once scaled to this range), no noise."""
PROPERTIES: dict[str, tuple[str, list, bool]] = {
    # name: (device parameter, values besides the reference's own, log axis)
    "states": ("states", [16, 64, 256, 4096], True),
    "asymmetry": ("up_down", [0.1, 0.3, 0.6], False),
    "c2c_noise": ("dw_min_std", [0.3, 1.0, 3.0], False),
    "d2d_spread": ("dw_min_dtod", [0.1, 0.3, 0.6], False),
    "stuck_fraction": ("stuck_fraction", [0.01, 0.05, 0.2], False),
    "read_noise": ("read_noise_std", [0.005, 0.02, 0.05], False),
}
REFERENCE_VALUES = {"states": 1024, "up_down": 0.0, "dw_min_std": 0.0, "dw_min_dtod": 0.0, "stuck_fraction": 0.0,
                    "read_noise_std": 0.0}
"""The reference device's own value of each swept parameter (its run is the sweep's point there)."""
SUBSETS = {"cvf": ["ideal", "levels_256", "levels_64", "taox_tio2", "aihwkit_ecram", "ag_a_si"],
           "ep": ["ideal", "levels_256", "levels_64", "ag_a_si", "aihwkit_pcm",
                  "reference=levels_256:states=1024", "reference_up_down_0.1=levels_256:states=1024,up_down=0.1"]}
"""C-VF and EP (one write per batch instead of one per nudged step) run on a subset of the devices:
the machine time of full second and third tables is better spent elsewhere."""


def run(out: Path, config: str, overrides: list[str], common: list[str]) -> dict:
    """One training run (or its saved result); a diverged run is reported, not fatal."""
    if not (out / "result.json").is_file():
        started = time.perf_counter()
        try:
            neurosim.train(config, out=out, overrides=common + overrides, progress=False,
                           resume=(out / "checkpoint.pt").is_file())
        except DivergenceError as exc:
            print(f"  {out.name}: diverged ({exc})", file=sys.stderr)
            return {"test_error": 1.0, "curve": [], "diverged": True}
        print(f"  {out}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    result = json.loads((out / "result.json").read_text())
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    device = result.get("synapses", {})
    return {"test_error": result["test_error"], "curve": [r["test_error"] for r in history],
            "pulses": device.get("pulses", 0), "pulses_per_device_mean": device.get("pulses_per_device_mean", 0.0),
            "pulses_per_device_max": device.get("pulses_per_device_max", 0),
            "energy_joules": device.get("energy_joules", 0.0), "seconds": result["wall_seconds"]}


def parse_device(entry: str) -> tuple[str, str, list[str]]:
    """'preset' or 'label=preset:key=value,key=value' (a preset with overrides, e.g. the reference
    device of the property sweeps) -> (label, preset, ['key=value', ...])."""
    label, _, spec = entry.partition("=") if ":" in entry else (entry, "", entry)
    device, _, params = spec.partition(":")
    return label, device, [p for p in params.split(",") if p]


def presets_study(out: Path, common: list[str]) -> None:
    devices = ["ideal"] + [d for d in catalog.available("devices") if d != "ideal"]
    for estimator, config in ESTIMATORS.items():
        rows = []
        for entry in SUBSETS.get(estimator, devices):
            label, device, params = parse_device(entry)
            overrides = [f"synapses.device={device}"] + [f"synapses.params.{k}" for k in params]
            rows.append({"device": label, **run(out / estimator / label, config, overrides, common)})
        ideal = rows[0]["test_error"]
        for row in rows:
            row["gap_to_ideal"] = row["test_error"] - ideal
        atomic_write_json(out / estimator / "summary.json", {"config": config, "epochs": EPOCHS,
                                                             "train_samples": TRAIN_SAMPLES, "rows": rows})
        lines = [f"{LABELS[estimator]}-1h (`{config}`), {TRAIN_SAMPLES} training samples, {EPOCHS} epochs:", "",
                 "| device | test error | gap to ideal | pulses | pulses per device (mean / max) | energy (J) |",
                 "|---|---|---|---|---|---|"]
        for r in rows:
            energy = f"{r['energy_joules']:.3g}" if r.get("energy_joules") else "n/a"
            lines.append(f"| `{r['device']}` | {100 * r['test_error']:.2f}% | {100 * r['gap_to_ideal']:+.2f} | "
                         f"{r.get('pulses', 0):,} | {r.get('pulses_per_device_mean', 0):.1f} / "
                         f"{r.get('pulses_per_device_max', 0):,} | {energy} |")
        text = "\n".join(lines)
        atomic_write(out / estimator / "table.md", lambda h, t=text: h.write(t + "\n"), "w")
        print(text)
        series = [{"label": r["device"], "errors": r["curve"], "style": "k--" if r["device"] == "ideal" else "o-"}
                  for r in rows if r["curve"]]
        plot_error_curves(series, out / estimator / "curves.png",
                          f"{LABELS[estimator]}-1h on devices ({TRAIN_SAMPLES} samples, {EPOCHS} epochs): test error",
                          size=(7, 4.5), legend_size=6, columns=2)


def properties_study(out: Path, common: list[str]) -> None:
    name, params = BASE_DEVICE
    base = [f"synapses.device={name}"] + [f"synapses.params.{k}={v}" for k, v in params.items()]
    ideal = run(out / "ideal", ESTIMATORS["cep"], ["synapses.device=ideal"], common)
    reference = run(out / "reference", ESTIMATORS["cep"], base, common)
    summary = {"base_device": {"preset": name, **params}, "ideal": ideal["test_error"],
               "reference": reference["test_error"], "epochs": EPOCHS, "train_samples": TRAIN_SAMPLES,
               "properties": {}}
    for prop, (key, values, _) in PROPERTIES.items():
        rows = [{"value": REFERENCE_VALUES[key], **reference}]
        for value in values:
            rows.append({"value": value, **run(out / f"{prop}_{value}", ESTIMATORS["cep"],
                                               base + [f"synapses.params.{key}={value}"], common)})
        rows.sort(key=lambda r: r["value"])
        summary["properties"][prop] = {"parameter": key, "rows": rows}
    atomic_write_json(out / "summary.json", summary)
    lines = [f"C-EP-1h on a {params} {name} device, one property changed at a time "
             f"({TRAIN_SAMPLES} samples, {EPOCHS} epochs); ideal synapses: {100 * ideal['test_error']:.2f}%, "
             f"reference device: {100 * reference['test_error']:.2f}%", "",
             "| property | parameter | value | test error | gap to ideal | pulses |", "|---|---|---|---|---|---|"]
    for prop, entry in summary["properties"].items():
        for r in entry["rows"]:
            lines.append(f"| {prop} | `{entry['parameter']}` | {r['value']} | {100 * r['test_error']:.2f}% | "
                         f"{100 * (r['test_error'] - ideal['test_error']):+.2f} | {r.get('pulses', 0):,} |")
    text = "\n".join(lines)
    atomic_write(out / "table.md", lambda h: h.write(text + "\n"), "w")
    print(text)
    plot_properties(summary, out / "properties.png")


def plot_properties(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    props = summary["properties"]
    fig, axes = plt.subplots(2, 3, figsize=(10, 6), dpi=100)
    for ax, (prop, entry) in zip(axes.flat, props.items()):
        values = [r["value"] for r in entry["rows"]]
        errors = [100 * r["test_error"] for r in entry["rows"]]
        ax.plot(values, errors, "o-", label="device")
        ax.axhline(100 * summary["ideal"], color="k", ls="--", lw=1, label="ideal")
        ax.axhline(100 * summary["reference"], color="gray", ls=":", lw=1, label="reference device")
        if PROPERTIES[prop][2]:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(f"{prop} ({entry['parameter']})")
        ax.set_ylabel("test error (%)")
        ax.grid(True, alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"C-EP-1h, one device property at a time ({summary['train_samples']} samples, "
                 f"{summary['epochs']} epochs)", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="experiments/results/device_comparison")
    parser.add_argument("--study", choices=["presets", "properties", "all"], default="all")
    args = parser.parse_args()
    common = [f"train.epochs={EPOCHS}", f"data.train_subset={TRAIN_SAMPLES}", "compute.threads=1"]
    if args.data_dir:
        common.append(f"data.dir={args.data_dir}")
    out = Path(args.out)
    if args.study in ("properties", "all"):
        properties_study(out / "properties", common)
    if args.study in ("presets", "all"):
        presets_study(out / "presets", common)


if __name__ == "__main__":
    main()
