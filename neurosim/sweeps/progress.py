"""The sweep's status line: points done / running / failed / pending, elapsed time and ETA.

Display only: it reads the point folders (their ``sweep_point.json`` and ``metrics.jsonl``) to
count what workers are doing, and never decides anything; the sweep would run the same without
it (``progress=False``). On a terminal it redraws one line; in a log file it writes a line when
the counts change (at most once a minute otherwise).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from neurosim.sweeps.spec import Point
from neurosim.sweeps.state import POINT_FILE, read_json
from neurosim.sweeps.worker import PointTask


class Progress:
    """One status line: points done / running / failed / pending, elapsed time and ETA.

    The ETA counts finished epochs of the points still to run (read from their metrics.jsonl),
    so a sweep of a few long points gets an estimate before its first point ends.
    """

    def __init__(self, name: str, points: list[Point], todo: list[Point], out_dir: Path, enabled: bool = True,
                 stream: Any = None) -> None:
        self.name, self.out_dir, self.enabled = name, out_dir, enabled
        self.stream = stream or sys.stderr
        self.total = len(points)
        self.todo = {p.name: p.epochs for p in todo}
        self.finished_points: dict[str, str] = {}  # this session's, with their status
        self.running: list[str] = []
        self.before = len(points) - len(todo)
        self.start_units = self._units()
        self.t0 = time.perf_counter()
        self.wall0 = time.time() - 1  # worker clocks: allow a second of skew on this machine
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_line = ""
        self.last_print = 0.0
        self.last_units_check = 0.0
        self.units = self.start_units

    def started(self, task: PointTask) -> None:
        self.running, self.last_units_check = [task.name], time.perf_counter()
        self._show(force=True)

    def finished(self, task: PointTask, outcome: dict[str, Any]) -> None:
        self.finished_points[task.name] = outcome.get("status", "failed")
        self.last_units_check = 0.0  # recount now
        if self.enabled and outcome.get("status") != "done":
            self._print(f"point {task.name} {outcome.get('status')}: {outcome.get('error', '')}", newline=True)
        self._show(force=True)

    def update(self) -> None:
        self._show()

    def close(self) -> None:
        if self.enabled and self.tty and self.last_line:
            self.stream.write("\n")
            self.stream.flush()

    def line(self) -> str:
        if time.perf_counter() - self.last_units_check > 2:
            self.units, self.last_units_check = self._units(), time.perf_counter()
            self.running = self._running()
        failed = sum(1 for s in self.finished_points.values() if s != "done")
        done = self.before + len(self.finished_points) - failed
        pending = len(self.todo) - len(self.finished_points) - len(self.running)
        elapsed = time.perf_counter() - self.t0
        progress = self.units - self.start_units
        left = len(self.todo) - self.units
        eta = _duration(elapsed * left / progress) if progress > 0 else "?"
        return (f"sweep {self.name}: {done}/{self.total} done, {len(self.running)} running, {failed} failed, "
                f"{max(0, pending)} pending; {_duration(elapsed)} elapsed, ETA {eta}")

    def _running(self) -> list[str]:
        """Points a worker has started in this session (their sweep_point.json says so)."""
        running = []
        for name in self.todo:
            if name not in self.finished_points:
                record = read_json(self.out_dir / "points" / name / POINT_FILE)
                if record.get("status") == "running" and record.get("started", 0) >= self.wall0:
                    running.append(name)
        return running

    def _units(self) -> float:
        """Points still to run, counted in finished fractions (epochs done / epochs)."""
        units = 0.0
        for name, epochs in self.todo.items():
            if name in self.finished_points:
                units += 1
                continue
            metrics = self.out_dir / "points" / name / "metrics.jsonl"
            try:
                units += min(1.0, len(metrics.read_text().splitlines()) / epochs)
            except OSError:
                pass
        return units

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        line = self.line()
        now = time.perf_counter()
        if self.tty:
            if force or now - self.last_print > 1:
                self._print(line)
        elif line.split(";")[0] != self.last_line.split(";")[0] or now - self.last_print > 60:
            self._print(line, newline=True)

    def _print(self, text: str, newline: bool = False) -> None:
        if self.tty and not newline:
            self.stream.write("\r" + text.ljust(len(self.last_line)))
            self.last_line = text
        elif self.tty:  # a message above the status line, which is redrawn next
            self.stream.write("\r" + text.ljust(len(self.last_line)) + "\n")
            self.last_line = ""
        else:
            self.stream.write(text + "\n")
            self.last_line = text
        self.stream.flush()
        self.last_print = time.perf_counter()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
