"""What every benchmark result file records about how it was made: the command, the date (UTC),
the machine, torch, and the load average at start and end (on a shared machine, read a result
with its load). Imported by the bench scripts of this folder (``python experiments/NAME.py``)."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

import torch


def load_now() -> float:
    """The 1-minute load average (take it at the start, hand it to ``record``)."""
    return os.getloadavg()[0]


def record(load_start: float, threads: str = "1 thread") -> dict:
    """The header of a result file, measured now (call it after the measurement)."""
    return {"command": " ".join([Path(sys.executable).name] + sys.argv),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {threads}, {os.cpu_count()} cores",
            "torch": torch.__version__,
            "load": f"load average {load_start:.1f} at start, {load_now():.1f} at end"}
