"""What an analog chip would learn: C-EP and C-VF on simulated devices against ideal synapses (issue 6).

Two studies, each one or more ``neurosim chip`` calls (``neurosim.chip``: every run through the
sweep engine, resumable, with its report.html / report.md / report.json), summarised in the
``summary.json``, ``table.md`` and plots that the results pages read:

- ``presets``: C-EP-1h (``mnist_fc1_cep``, the paper's settings) on ideal synapses and on every
  shipped device preset; C-VF-1h (``mnist_fc1_cvf``) and EP-1h (``mnist_fc1_ep``: one write per
  batch) on a subset. One chip study per estimator (``presets/<estimator>/``), because each runs
  its own device list;
- ``properties``: C-EP-1h on one reference device (constant steps, ``BASE_DEVICE``), changing one
  property at a time: number of states, up/down asymmetry, cycle-to-cycle noise, device-to-device
  spread, stuck devices, read noise. Each variant is a device file (``properties/devices/``) and
  all of them are one chip study. Plots: test error against the property, with ideal training
  and the reference device as lines.

Runs are short (``TRAIN_SAMPLES`` samples for ``EPOCHS`` epochs, full test set, one torch thread
each): they rank devices and show trends, not the accuracy of a 100-epoch run. Running the script
again continues where it stopped (finished runs are read back).

    python experiments/device_comparison.py --data-dir ../shared/data [--study presets|properties|all] [--workers N]

The same presets study for a device of one's own is one command:
``neurosim chip mnist_fc1_cep --devices mine.yaml --epochs 3 --subset 10000 --out DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import yaml

import neurosim
from neurosim import presets as catalog
from neurosim.hardware.devices import device_config
from neurosim.io import atomic_write, atomic_write_json, atomic_write_text
from neurosim.run.plots import plot_error_curves
from neurosim.studies.chip import ChipResult

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


def parse_device(entry: str) -> tuple[str, str, dict]:
    """'preset' or 'label=preset:key=value,key=value' (a preset with overrides, e.g. the reference
    device of the property sweeps) -> (label, preset, {key: value})."""
    label, _, spec = entry.partition("=") if ":" in entry else (entry, "", entry)
    device, _, params = spec.partition(":")
    pairs = [p.partition("=") for p in params.split(",") if p]
    return label, device, {k: yaml.safe_load(v) for k, _, v in pairs}


def device_file(folder: Path, label: str, preset: str, params: dict) -> str:
    """A preset with ``params`` changed, written as a device file of its own named ``label`` (what
    ``neurosim chip --devices`` takes); a plain preset stays its name."""
    if not params:
        return preset
    record = dataclasses.replace(device_config(preset, params), name=label,
                                 description=f"{preset} with {params}")
    path = folder / f"{label}.yaml"
    text = yaml.safe_dump(dataclasses.asdict(record), sort_keys=False)
    if not path.is_file() or path.read_text() != text:  # unchanged files keep their runs' config
        atomic_write_text(path, text)
    return str(path)


def chip_rows(result: ChipResult, estimator: str) -> list[dict]:
    """The rows of one estimator as summary.json keeps them (diverged: test error 1, no curve)."""
    rows = []
    for row in result.rows:
        if row["estimator"] != estimator:
            continue
        run = next(r for r in result.runs if r["estimator"] == estimator and r["device"] == row["device"])
        if run["status"] != "done":
            rows.append({"device": row["device"], "test_error": 1.0, "curve": [], "diverged": True,
                         "status": run["status"]})
            continue
        rows.append({"device": row["device"], "test_error": run["test_error"], "curve": run["curve"],
                     "pulses": run.get("pulses", 0), "pulses_per_device_mean": run.get("pulses_per_device_mean", 0.0),
                     "pulses_per_device_max": run.get("pulses_per_device_max", 0),
                     "energy_joules": run.get("energy_joules", 0.0), "seconds": run["wall_seconds"]})
    return rows


def presets_study(out: Path, common: list[str], workers: int | None) -> None:
    devices = ["ideal"] + [d for d in catalog.available("devices") if d != "ideal"]
    for estimator, config in ESTIMATORS.items():
        entries = [parse_device(e) for e in SUBSETS.get(estimator, devices)]
        listed = [device_file(out / "devices", label, preset, params) for label, preset, params in entries]
        result = neurosim.chip(config, listed, epochs=EPOCHS, subset=TRAIN_SAMPLES, overrides=common,
                               workers=workers, out=out / estimator)
        rows = chip_rows(result, result.rows[0]["estimator"])
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
        atomic_write_text(out / estimator / "table.md", text + "\n")
        print(text)
        series = [{"label": r["device"], "errors": r["curve"], "style": "k--" if r["device"] == "ideal" else "o-"}
                  for r in rows if r["curve"]]
        plot_error_curves(series, out / estimator / "curves.png",
                          f"{LABELS[estimator]}-1h on devices ({TRAIN_SAMPLES} samples, {EPOCHS} epochs): test error",
                          size=(7, 4.5), legend_size=6, columns=2)
        print(f"report: {result.report['html']}")


def properties_study(out: Path, common: list[str], workers: int | None) -> None:
    name, params = BASE_DEVICE
    variants = {"reference": dict(params)}
    for prop, (key, values, _) in PROPERTIES.items():
        for value in values:
            variants[f"{prop}_{value}"] = {**params, key: value}
    files = [device_file(out / "devices", label, name, p) for label, p in variants.items()]
    result = neurosim.chip(ESTIMATORS["cep"], files, epochs=EPOCHS, subset=TRAIN_SAMPLES, overrides=common,
                           workers=workers, out=out)
    runs = {r["device"]: r for r in chip_rows(result, result.rows[0]["estimator"])}
    ideal, reference = runs.pop("ideal"), runs["reference"]
    summary = {"base_device": {"preset": name, **params}, "ideal": ideal["test_error"],
               "reference": reference["test_error"], "epochs": EPOCHS, "train_samples": TRAIN_SAMPLES,
               "properties": {}}
    for prop, (key, values, _) in PROPERTIES.items():
        rows = [{"value": REFERENCE_VALUES[key], **_drop_device(reference)}]
        rows += [{"value": value, **_drop_device(runs[f"{prop}_{value}"])} for value in values]
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
    atomic_write_text(out / "table.md", text + "\n")
    print(text)
    plot_properties(summary, out / "properties.png")
    print(f"report: {result.report['html']}")


def _drop_device(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "device"}


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
    parser.add_argument("--workers", type=int, help="local worker processes (default: one per core; 0: this process)")
    args = parser.parse_args()
    common = ["compute.threads=1"] + ([f"data.dir={args.data_dir}"] if args.data_dir else [])
    out = Path(args.out)
    if args.study in ("properties", "all"):
        properties_study(out / "properties", common, args.workers)
    if args.study in ("presets", "all"):
        presets_study(out / "presets", common, args.workers)


if __name__ == "__main__":
    main()
