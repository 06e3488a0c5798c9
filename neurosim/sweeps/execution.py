"""Run a sweep: every point one ``neurosim train`` run, on local worker processes or a Dask cluster.

This module is the sweep's API (``sweep``, the Python twin of ``neurosim sweep``) and the order
of a session; each step is its own module: ``plan`` (what is left to run, the manifest),
``locks`` (one sweep process per folder), ``cluster`` (where the points run), ``worker`` (one
point), ``progress`` (the status line) and ``report`` (results.csv, table, plots).

The unit of work is a point (``neurosim.sweeps.spec``): a folder ``DIR/points/<name>`` holding an
ordinary run folder. A point is finished only when its ``result.json`` exists (train writes it
atomically, last), so a sweep killed at any moment and started again skips finished points,
resumes the others from their last checkpoint (``train(resume=True)``) and loses nothing.
A point that raises or diverges is recorded (``sweep_point.json``, results.csv) and the
others go on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurosim.errors import ConfigError, arg
from neurosim.io import atomic_write_json
from neurosim.sweeps.cluster import run_points
from neurosim.sweeps.locks import hold_lock
from neurosim.sweeps.plan import plan, record_session, write_manifest
from neurosim.sweeps.progress import Progress
from neurosim.sweeps.report import collect_rows, format_table, report, write_results
from neurosim.sweeps.spec import Point, SweepSpec
from neurosim.sweeps.state import POINT_FILE, read_json
from neurosim.sweeps.worker import PointTask


@dataclass
class SweepResult:
    """What ``sweep`` returns; the rows are those of DIR/results.csv."""

    out_dir: Path
    rows: list[dict[str, Any]]
    keys: list[str]
    wall_seconds: float
    session: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts

    @property
    def table(self) -> str:
        return format_table(self.rows, self.keys)


def sweep(spec: str | Path | Mapping[str, Any] | SweepSpec, out: str | Path | None = None,
          workers: int | None = None, scheduler: str | None = None, overrides: list[str] | None = None,
          threads: int | None = None, retry_failed: bool = True, progress: bool = True) -> SweepResult:
    """Run (or continue) a sweep; the Python twin of ``neurosim sweep``.

    ``spec``: a sweep file, a shipped sweep name, a mapping or a SweepSpec. ``out``: the sweep
    folder (default ``runs/<name>``). ``workers``: local worker processes (default: one per
    core, at most one per point to run; 0 runs the points in this process, whose torch thread
    count the points then set). ``scheduler``: the
    address of an existing Dask scheduler instead (``tcp://HOST:PORT``). ``overrides``: ``--set``
    strings for every point (not for swept keys). ``threads``: torch threads per point (default
    cores // concurrent points, unless the sweep's config sets ``compute.threads``).
    ``retry_failed``: run points recorded as failed again (default; False keeps their record).

    A script that calls this with local workers needs the ``if __name__ == "__main__":`` guard:
    worker processes are spawned and import the calling script.
    """
    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.load(spec)
    if scheduler is not None and workers is not None:
        raise ConfigError(arg("workers", "--workers"), workers,
                          f"no worker count with {arg('scheduler', '--scheduler')} (the cluster has its own)")
    if workers is not None and workers < 0:
        raise ConfigError(arg("workers", "--workers"), workers, "a number of local worker processes >= 0")
    if threads is not None and threads < 1:
        raise ConfigError(arg("threads", "--threads"), threads, "a positive number of torch threads per point")
    points = spec.points(overrides)
    reference = spec.reference_point(overrides)
    if reference is not None:
        points.append(reference)
    out_dir = Path(out) if out is not None else Path("runs") / spec.name
    out_dir = out_dir.resolve()  # workers may run elsewhere on a shared file system
    todo = plan(points, out_dir, retry_failed)
    with hold_lock(out_dir):
        return _sweep(spec, points, todo, out_dir, workers, scheduler, threads, progress)


def requeue(out_dir: Path, todo: list[Point]) -> None:
    """Mark the points about to run again after a failure as pending in their own records, so
    that a report of the folder while they wait (``neurosim report``, a publish) does not show
    the old failure as their state; the failure stays in the record as ``previous_error``."""
    for point in todo:
        path = out_dir / "points" / point.name / POINT_FILE
        record = read_json(path)
        if record.get("status") in ("failed", "diverged"):
            record.update(status="pending", previous_status=record["status"], previous_error=record.get("error", ""),
                          error="")
            if "traceback" in record:
                record["previous_traceback"] = record.pop("traceback")
            atomic_write_json(path, record)


def _sweep(spec: SweepSpec, points: list[Point], todo: list[Point], out_dir: Path, workers: int | None,
           scheduler: str | None, threads: int | None, progress: bool) -> SweepResult:
    write_manifest(out_dir, spec, points)
    requeue(out_dir, todo)
    rows = {row["point"]: row for row in collect_rows(out_dir)}
    for point in todo:
        rows[point.name].update(status="pending", error="")
    write_results(out_dir, list(rows.values()), spec.keys)

    t0 = time.perf_counter()
    session: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "points": len(points),
                               "to_run": len(todo), "scheduler": scheduler or ("in-process" if workers == 0 else "local")}
    if todo:
        status = Progress(spec.name, points, todo, out_dir, enabled=progress)

        def finished(task: PointTask, outcome: dict[str, Any]) -> None:
            rows[task.name] = next(r for r in collect_rows(out_dir, only=task.name))
            write_results(out_dir, list(rows.values()), spec.keys)
            status.finished(task, outcome)

        try:
            run_points(spec, todo, out_dir, workers, scheduler, threads, finished, status, session)
        except KeyboardInterrupt:  # the local cluster is closed on the way out; points resume next time
            status.close()
            raise
        status.close()
    session["wall_seconds"] = round(time.perf_counter() - t0, 3)
    record_session(out_dir, session)

    result = report(out_dir, write_plots=True)
    return SweepResult(out_dir, result.rows, spec.keys, session["wall_seconds"], session)
