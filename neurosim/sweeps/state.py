"""What a sweep folder records about its points, read by the sweep that runs them and by the report.

A point's state is read from its folder every time (``result.json`` written last by train,
``sweep_point.json`` written by the worker), never cached: the sweep process deciding what to
run and ``neurosim report`` reading a folder that another process runs, or that was copied
from a cluster, must agree. Both import this module; neither imports the other for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

POINT_FILE = "sweep_point.json"
"""Per point: status, error, attempts, timing; written by the worker at the start and the end."""
MANIFEST = "sweep.json"
"""Per sweep folder: its points, swept keys, plots and sessions (``neurosim.sweeps.plan``)."""


def point_state(run_dir: Path, epochs: int) -> str:
    """done (result.json covers ``epochs``), failed, diverged, or pending (to run or resume)."""
    result = run_dir / "result.json"
    if result.is_file():
        try:
            if json.loads(result.read_text())["epochs"] >= epochs:
                return "done"
        except (ValueError, KeyError):
            pass
    record = read_json(run_dir / POINT_FILE)
    if record.get("status") in ("failed", "diverged"):
        return record["status"]
    return "pending"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON record, or {} when it is missing or half written (records are rewritten atomically,
    but a folder copied mid-write, or written by an older version, may still hold one)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
