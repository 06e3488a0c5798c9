"""Issue 19: fit every published measurement set in experiments/devices/measured/ with
``neurosim devices fit`` and keep the fitted presets, fit records and plots as results.

Each dataset is a folder with ``data.csv`` (neurosim's long measurement form), ``SOURCE.md``
(citation, licence, protocol) and ``convert.py`` (how data.csv was made from the published
files). For each, this runs the same call as

    neurosim devices fit experiments/devices/measured/NAME/data.csv --name NAME \
        --out experiments/results/device_fits/NAME.yaml

and writes ``experiments/results/device_fits/summary.json`` (what the docs' results page reads).

    python experiments/fit_measured_devices.py [NAME ...]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from neurosim.hardware.fitting import fit_device, fit_summary, write_fit
from neurosim.io import atomic_write_json

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "devices" / "measured"
OUT = ROOT / "results" / "device_fits"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="datasets to fit (default: every folder of experiments/devices/measured)")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.name for p in DATA.iterdir() if (p / "data.csv").is_file())
    summary = []
    for name in names:
        source = DATA / name / "data.csv"
        start = time.perf_counter()
        fit = fit_device([source], name)
        seconds = time.perf_counter() - start
        paths = write_fit(fit, OUT / f"{name}.yaml")
        print(fit_summary(fit))
        print(f"{name}: {seconds:.1f} s -> {paths['preset']}\n")
        record = fit.to_json()
        record["files"] = [str(source.relative_to(ROOT.parent))]
        record["sha256"] = {str(source.relative_to(ROOT.parent)): v for v in fit.measurements.checksums.values()}
        summary.append({"name": name, "seconds": round(seconds, 2), "source_md": f"experiments/devices/measured/{name}/SOURCE.md",
                        "command": f"neurosim devices fit experiments/devices/measured/{name}/data.csv --name {name} "
                                   f"--out experiments/results/device_fits/{name}.yaml",
                        **record})
    atomic_write_json(OUT / "summary.json", {"machine": platform.processor() or platform.machine(),
                                             "python": sys.version.split()[0], "fits": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
