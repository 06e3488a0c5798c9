"""Copy a chip study's small outputs from its run folder into experiments/results/.

The sweeps of this folder run outside the work tree (their checkpoints are large and they last
longer than a session); what the results pages read is small: the sweep's results.csv, its
report plots and sweep.json, and per point config.yaml, metrics.jsonl, result.json and
curves.png. Unfinished points are copied as far as they got (their metrics.jsonl), so a
partial study can be published as partial, with their checkpoint where it is small (an ideal
point's 1.6 MB, not a device point's 8 to 18 MB), so that a new machine continues them
(``long_runs.sh`` restores them); a finished point's published checkpoint is removed.

    python experiments/chip/collect.py ~/neurosim-runs/chip_15ep [--name chip_15ep] [--max-checkpoint-bytes N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import neurosim

RESULTS = Path(__file__).resolve().parents[1] / "results"
SWEEP_FILES = ("results.csv", "sweep.json", "results.md")
POINT_FILES = ("config.yaml", "metrics.jsonl", "result.json", "curves.png", "sweep_point.json")


CHECKPOINT = "checkpoint.pt"


def collect(run_dir: Path, name: str, max_checkpoint_bytes: int = 0) -> Path:
    if not (run_dir / "points").is_dir():
        raise SystemExit(f"{run_dir}: not a sweep folder (no points/)")
    neurosim.report(run_dir)  # refresh results.csv and the plots from the points as they are
    out = RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    for path in [*(run_dir / f for f in SWEEP_FILES), *run_dir.glob("*.png")]:
        if path.is_file():
            shutil.copy2(path, out / path.name)
    copied = kept = 0
    for point in sorted((run_dir / "points").iterdir()):
        target = out / "points" / point.name
        if not further(point, target):
            kept += 1
            continue
        target.mkdir(parents=True, exist_ok=True)
        for fname in POINT_FILES:
            if (point / fname).is_file():
                shutil.copy2(point / fname, target / fname)
        checkpoint = point / CHECKPOINT
        if (point / "result.json").is_file():
            (target / CHECKPOINT).unlink(missing_ok=True)
        elif checkpoint.is_file() and checkpoint.stat().st_size <= max_checkpoint_bytes:
            shutil.copy2(checkpoint, target / CHECKPOINT)
        copied += 1
    print(f"{copied} points of {run_dir} -> {out}"
          + (f" ({kept} kept: published further than this folder has them)" if kept else ""), file=sys.stderr)
    return out


def further(point: Path, published: Path) -> bool:
    """Whether the run folder's point has got at least as far as its published copy: a machine
    lost with its run folder restarts unfinished points from scratch (``long_runs.sh`` restores
    only the finished ones), and their earlier, longer record stays until the new one passes it."""
    if (point / "result.json").is_file():
        return True
    if (published / "result.json").is_file():
        return False
    return epochs_in(point / "metrics.jsonl") >= epochs_in(published / "metrics.jsonl")


def epochs_in(metrics: Path) -> int:
    return sum(1 for line in metrics.read_text().splitlines() if line.strip()) if metrics.is_file() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", help="folder name under experiments/results (default: the sweep's)")
    parser.add_argument("--max-checkpoint-bytes", type=int, default=0,
                        help="publish an unfinished point's checkpoint up to this size (default 0: none)")
    args = parser.parse_args()
    collect(args.run_dir.expanduser(), args.name or args.run_dir.expanduser().name, args.max_checkpoint_bytes)


if __name__ == "__main__":
    main()
