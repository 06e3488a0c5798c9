"""Print the README's results table from experiments/results/*/result.json and metrics.jsonl.

Usage: python experiments/summarize.py [NAME ...]   (default: every finished run)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = {"ep": "EP", "cep": "C-EP", "vf": "VF", "cvf": "C-VF", "bptt": "BPTT"}


def row(name: str) -> str:
    folder = RESULTS / name
    result = json.loads((folder / "result.json").read_text())
    config = yaml.safe_load((folder / "config.yaml").read_text())
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    est, circuit = config["estimator"], config["circuit"]
    per_epoch = sum(r["seconds"] for r in history) / len(history)
    last5 = [r["test_error"] for r in history[-5:]]
    beta = f" beta={'±' if est.get('random_sign') else ''}{est['beta']}" if est["name"] != "bptt" else ""
    angle = f", {circuit['initial_angle']:g}° init" if circuit["dynamics"] == "vector_field" else ""
    machine = result["machine"]
    threads = machine["torch_threads"]
    where = f"{machine['cpu_count']}-core CPU, {threads} thread{'s' if threads > 1 else ''}"
    return (f"| `{name}` | {'-'.join(map(str, circuit['layers']))} {circuit['dynamics']}{angle} | "
            f"{NAMES.get(est['name'], est['name'])} | T={est['T']} K={est['K']}{beta} | {result['epochs']} | "
            f"**{100 * result['test_error']:.2f}** | {100 * sum(last5) / len(last5):.2f} | "
            f"{100 * result['best_test_error']:.2f} | "
            f"{100 * result['train_error']:.2f} | {per_epoch:.0f} s | {where} |")


def main(names: list[str]) -> None:
    names = names or sorted(p.parent.name for p in RESULTS.glob("*/result.json"))  # not studies' points
    print("| run | network | estimator | phases | epochs | test error % (final) | mean of last 5 "
          "| best | train error % | time/epoch | machine |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        print(row(name))


if __name__ == "__main__":
    main(sys.argv[1:])
