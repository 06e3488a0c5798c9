"""Planning a sweep session: which points still have to run, and the folder's manifest.

Planning happens before anything runs and before the lock is taken, so that a folder holding
runs of another config is refused at once (resuming such a run would mix two configs in one
result). The manifest (``DIR/sweep.json``) is what lets ``neurosim report`` read the folder
without the sweep file; each session appends its own record to it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from neurosim.errors import ConfigError, arg
from neurosim.io import atomic_write_json
from neurosim.sweeps.spec import Point, SweepSpec
from neurosim.sweeps.state import MANIFEST, point_state, read_json


def plan(points: list[Point], out_dir: Path, retry_failed: bool) -> list[Point]:
    """The points still to run; refuses a folder that holds a run of a different config."""
    from neurosim.config import Config, read_yaml
    from neurosim.run.trainer import RESUMABLE_CHANGES, config_differences, with_defaults

    todo = []
    defaults = Config().to_dict()
    for point in points:
        run_dir = out_dir / "points" / point.name
        saved = run_dir / "config.yaml"
        if saved.is_file():
            before = with_defaults(read_yaml(saved), defaults)
            changed = config_differences(before, point.config) - RESUMABLE_CHANGES
            if changed:
                raise ConfigError(f"{run_dir}", sorted(changed),
                                  "a folder holding this point's run: it holds a run of another config (the keys "
                                  f"listed differ); delete it or choose another sweep folder ({arg('out=...', '--out')})")
        state = point_state(run_dir, point.epochs)
        if state == "done" or (state in ("failed", "diverged") and not retry_failed):
            continue
        todo.append(point)
    return todo


def write_manifest(out_dir: Path, spec: SweepSpec, points: list[Point]) -> None:
    """DIR/sweep.json: what ``neurosim report`` needs to read the folder without the sweep file."""
    path = out_dir / MANIFEST
    sessions = read_json(path).get("sessions", [])
    atomic_write_json(path, {
        "name": spec.name, "description": spec.description, "source": spec.source, "keys": spec.keys,
        "metric": spec.metric, "plots": [asdict(p) for p in spec.plots],
        "reference": spec.reference["label"] if spec.reference else None,
        "points": [{"name": p.name, "values": p.values, "epochs": p.epochs} for p in points],
        "spec": spec.raw, "sessions": sessions})


def record_session(out_dir: Path, session: dict[str, Any]) -> None:
    """Append one session's record (start, workers, threads, wall time) to the manifest."""
    path = out_dir / MANIFEST
    manifest = read_json(path)
    manifest.setdefault("sessions", []).append(session)
    atomic_write_json(path, manifest)
