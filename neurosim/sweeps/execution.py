"""Run a sweep: every point one ``neurosim train`` run, on local worker processes or a Dask cluster.

The unit of work is a point (``neurosim.sweeps.spec``): a folder ``DIR/points/<name>`` holding an
ordinary run folder. A point is finished only when its ``result.json`` exists (train writes it
atomically, last), so a sweep killed at any moment and started again skips finished points,
resumes the others from their last checkpoint (``train(resume=True)``) and loses nothing.
A point that raises or diverges is recorded (``sweep_point.json``, results.csv) and the
others go on. Execution is one code path, ``dask.distributed``: by default an embedded
``LocalCluster`` of worker processes on 127.0.0.1 (nothing to start), or the cluster at
``scheduler=tcp://HOST:PORT``. Dask reschedules the point of a worker process that dies
(``distributed.scheduler.allowed-failures`` times), and the retry resumes from the point's
checkpoint. ``workers=0`` runs the points one after another in this process (debugging, timing).

Each point gets a torch thread budget (``compute.threads`` = cores // concurrent points,
unless the sweep sets it): two torch jobs with 2 threads each on 2 cores run many times slower.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurosim.errors import ConfigError, DivergenceError, NeurosimError, arg
from neurosim.io import atomic_write_json
from neurosim.sweeps.spec import Point, SweepSpec

POINT_FILE = "sweep_point.json"
"""Per point: status, error, attempts, timing; written by the worker at the start and the end."""
ALLOWED_FAILURES = 3
"""Times a point may lose its worker process before it is recorded as failed."""
LOCK_FILE = ".sweep.lock"
"""Held by the sweep process running the folder: its host, pid and start time; touched every
HEARTBEAT_SECONDS. A point recorded as running is interrupted once no live sweep holds it."""
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0
"""A lock of another host whose heartbeat is older than this belongs to a dead sweep."""


@dataclass
class PointTask:
    """What a worker needs to run one point (plain data: it travels by pickle)."""

    name: str
    run_dir: str
    config: dict[str, Any]
    values: dict[str, Any]

    @property
    def epochs(self) -> int:
        return int(self.config["train"]["epochs"])


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
        from neurosim.sweeps.report import format_table

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
    todo = _plan(points, out_dir, retry_failed)
    with _lock(out_dir):
        return _sweep(spec, points, todo, out_dir, workers, scheduler, threads, progress)


def _sweep(spec: SweepSpec, points: list[Point], todo: list[Point], out_dir: Path, workers: int | None,
           scheduler: str | None, threads: int | None, progress: bool) -> SweepResult:
    _write_manifest(out_dir, spec, points)

    from neurosim.sweeps.report import collect_rows, write_results

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
            rows[task.name] = _row(out_dir, task.name)
            write_results(out_dir, list(rows.values()), spec.keys)
            status.finished(task, outcome)

        try:
            _execute(spec, todo, out_dir, workers, scheduler, threads, finished, status, session)
        except KeyboardInterrupt:  # the local cluster is closed on the way out; points resume next time
            status.close()
            raise
        status.close()
    session["wall_seconds"] = round(time.perf_counter() - t0, 3)
    _record_session(out_dir, session)

    from neurosim.sweeps.report import report

    result = report(out_dir, write_plots=True)
    return SweepResult(out_dir, result.rows, spec.keys, session["wall_seconds"], session)


# --------------------------------------------------------------------------- planning


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[None]:
    """One sweep process per folder: two would run the same points into the same run folders."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_FILE
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = _read_json(path)
            if holder.get("host") == me["host"] and not _alive(int(holder.get("pid", 0))):
                path.unlink(missing_ok=True)  # left by a sweep that was killed
                continue
            raise NeurosimError(f"another sweep is running in {out_dir} (pid {holder.get('pid')} on "
                                f"{holder.get('host')}); if it is not, delete {path}") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    stop = threading.Event()
    heartbeat = threading.Thread(target=_heartbeat, args=(path, stop), name="neurosim-sweep-heartbeat", daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join()
        path.unlink(missing_ok=True)


def _heartbeat(path: Path, stop: threading.Event) -> None:
    """Touch the lock while the sweep runs: readers on other hosts tell a live sweep by its age."""
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(OSError):
            os.utime(path)


def live_driver(out_dir: Path) -> dict[str, Any] | None:
    """The lock record of the sweep process running ``out_dir`` now, or None if none is alive.

    Alive: the lock exists and its pid runs (on this host), or its heartbeat is recent (another host).
    """
    path = Path(out_dir) / LOCK_FILE
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return None
    holder = _read_json(path)
    if holder.get("host") == socket.gethostname():
        return holder if _alive(int(holder.get("pid", 0))) else None
    return holder if age < STALE_SECONDS else None  # another host, or a lock still being written


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _plan(points: list[Point], out_dir: Path, retry_failed: bool) -> list[Point]:
    """The points still to run; refuses a folder that holds a run of a different config."""
    from neurosim.config import Config, read_yaml
    from neurosim.run.trainer import RESUMABLE_CHANGES, _differences, _with_defaults

    todo = []
    defaults = Config().to_dict()
    for point in points:
        run_dir = out_dir / "points" / point.name
        saved = run_dir / "config.yaml"
        if saved.is_file():
            before = _with_defaults(read_yaml(saved), defaults)
            changed = _differences(before, point.config) - RESUMABLE_CHANGES
            if changed:
                raise ConfigError(f"{run_dir}", sorted(changed),
                                  "a folder holding this point's run: it holds a run of another config (the keys "
                                  f"listed differ); delete it or choose another sweep folder ({arg('out=...', '--out')})")
        state = point_state(run_dir, point.epochs)
        if state == "done" or (state in ("failed", "diverged") and not retry_failed):
            continue
        todo.append(point)
    return todo


def point_state(run_dir: Path, epochs: int) -> str:
    """done (result.json covers ``epochs``), failed, diverged, or pending (to run or resume)."""
    result = run_dir / "result.json"
    if result.is_file():
        try:
            if json.loads(result.read_text())["epochs"] >= epochs:
                return "done"
        except (ValueError, KeyError):
            pass
    record = _read_json(run_dir / POINT_FILE)
    if record.get("status") in ("failed", "diverged"):
        return record["status"]
    return "pending"


def _row(out_dir: Path, name: str) -> dict[str, Any]:
    from neurosim.sweeps.report import collect_rows

    return next(r for r in collect_rows(out_dir, only=name))


def _write_manifest(out_dir: Path, spec: SweepSpec, points: list[Point]) -> None:
    """DIR/sweep.json: what ``neurosim report`` needs to read the folder without the sweep file."""
    from dataclasses import asdict

    path = out_dir / "sweep.json"
    sessions = _read_json(path).get("sessions", [])
    atomic_write_json(path, {
        "name": spec.name, "description": spec.description, "source": spec.source, "keys": spec.keys,
        "metric": spec.metric, "plots": [asdict(p) for p in spec.plots],
        "reference": spec.reference["label"] if spec.reference else None,
        "points": [{"name": p.name, "values": p.values, "epochs": p.epochs} for p in points],
        "spec": spec.raw, "sessions": sessions})


def _record_session(out_dir: Path, session: dict[str, Any]) -> None:
    path = out_dir / "sweep.json"
    manifest = _read_json(path)
    manifest.setdefault("sessions", []).append(session)
    atomic_write_json(path, manifest)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- execution


def _execute(spec: SweepSpec, todo: list[Point], out_dir: Path, workers: int | None, scheduler: str | None,
             threads: int | None, finished: Callable[[PointTask, dict[str, Any]], None],
             status: Progress, session: dict[str, Any]) -> None:
    cores = usable_cores()
    if scheduler is None and workers == 0:
        tasks = _tasks(todo, out_dir, threads or cores)
        session.update(workers=0, threads=threads or cores)
        for task in tasks:
            status.started(task)
            finished(task, run_point(task))
        return

    import dask
    from distributed import Client

    t0 = time.perf_counter()
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        if scheduler is None:
            n = max(1, min(workers or cores, len(todo)))
            cluster = _local_cluster(n)
            client = Client(cluster)
            budget = threads or max(1, cores // n)
        else:
            cluster = None
            try:
                client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise NeurosimError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            n = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
            budget = threads or _cluster_threads(client)
    session.update(workers=n, threads=budget, cluster_start_seconds=round(time.perf_counter() - t0, 3))
    try:
        _run_dask(client, _tasks(todo, out_dir, budget), finished, status, spec.name)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _tasks(points: list[Point], out_dir: Path, threads: int) -> list[PointTask]:
    tasks = []
    for point in points:
        config = json.loads(json.dumps(point.config))
        if config["compute"].get("threads") is None:  # the sweep's own setting wins
            config["compute"]["threads"] = threads
        tasks.append(PointTask(point.name, str(out_dir / "points" / point.name), config, point.values))
    return tasks


def _local_cluster(n: int) -> Any:
    import logging

    import dask
    from distributed import LocalCluster

    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back to the OS); any
    # fixed threshold also turns off glibc's adaptive mmap threshold, and torch's megabyte-sized
    # tensors are then mmapped and page-faulted afresh at every allocation: training ran 1.7x
    # slower in such a worker than in a plain process (3,500 vs 6,200 samples/s, measured).
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)


def _restore_malloc() -> None:
    """Undo MALLOC_TRIM_THRESHOLD_ in a worker that has it (see _local_cluster): glibc thresholds
    that keep torch's large tensors on the reused heap. Needed on clusters started with Dask's
    defaults, and locally too once a default Dask nanny ran in the calling process (nannies write
    their variables into their own process's environment, which later workers inherit)."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: the largest glibc allows on 64-bit
    libc.mallopt(-1, 128 * 1024 * 1024)  # M_TRIM_THRESHOLD


def _thread_lock_for_tqdm() -> None:
    """Give tqdm a thread lock in this worker instead of the multiprocessing RLock it makes by
    default (even for disabled bars). In a spawned worker that RLock is a named semaphore that
    the resource tracker shared with the sweep process records; a worker killed mid-point never
    unlinks it, and the tracker warns of a "leaked semaphore" when the sweep ends. Workers draw
    no bars, so they need no lock across processes."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, SLURM and cgroups set it), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cluster_threads(client: Any) -> int:
    """cores // task slots on the most crowded host of the cluster (1 if no worker has joined yet)."""
    cores = client.run(usable_cores)
    slots: dict[str, int] = {}
    host_cores: dict[str, int] = {}
    for address, info in client.scheduler_info()["workers"].items():
        host = info.get("host", address)
        slots[host] = slots.get(host, 0) + info["nthreads"]
        host_cores[host] = cores.get(address) or 1
    return max(1, min((host_cores[h] // slots[h] for h in slots), default=1))


def _run_dask(client: Any, tasks: list[PointTask], finished: Callable[[PointTask, dict[str, Any]], None],
              status: Progress, name: str) -> None:
    from distributed import wait

    session = uuid.uuid4().hex[:8]  # a long-lived cluster must not hand back another session's result
    futures = {client.submit(run_point, task, key=f"neurosim-{name}-{task.name}-{session}", pure=False): task
               for task in tasks}
    pending = set(futures)
    try:
        while pending:
            try:
                done, _ = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for future in done:
                pending.discard(future)
                task = futures[future]
                if future.status == "finished":
                    outcome = future.result()
                else:  # the worker died too often, or the task could not run at all
                    outcome = _lost(task, future.exception())
                finished(task, outcome)
            status.update()
    finally:
        if pending:
            client.cancel(list(pending))


def _lost(task: PointTask, exc: BaseException | None) -> dict[str, Any]:
    """Record a point whose worker process died ALLOWED_FAILURES times (or never ran it)."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        error = (f"the worker process running this point died {ALLOWED_FAILURES} times (killed, out of "
                 f"memory or crashed); its checkpoint, if any, is kept")
    else:
        error = f"{type(exc).__name__}: {exc}"
    record = {**_read_json(Path(task.run_dir) / POINT_FILE), "name": task.name, "values": task.values,
              "status": "failed", "error": error}
    atomic_write_json(Path(task.run_dir) / POINT_FILE, record)
    return record


# --------------------------------------------------------------------------- one point (on a worker)


def run_point(task: PointTask) -> dict[str, Any]:
    """Train one point into its folder (resuming its checkpoint); never raises for the point's errors.

    Runs on a worker. Writes ``sweep_point.json`` when it starts (attempt number) and when it ends
    (status, error, timing), so that a retry after a killed worker is visible in the results.
    """
    from neurosim.run.trainer import CHECKPOINT, train

    _restore_malloc()
    _thread_lock_for_tqdm()
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_json(run_dir / POINT_FILE)
    record: dict[str, Any] = {"name": task.name, "values": task.values, "status": "running",
                              "attempts": int(previous.get("attempts", 0)) + 1, "host": socket.gethostname(),
                              "pid": os.getpid(), "threads": task.config["compute"].get("threads"),
                              "started": time.time()}
    atomic_write_json(run_dir / POINT_FILE, record)
    t0 = time.perf_counter()
    status, error, trace = "done", "", ""
    try:
        if point_state(run_dir, task.epochs) != "done":
            checkpoint = run_dir / CHECKPOINT
            if checkpoint.is_file() and _checkpoint_epoch(checkpoint) >= task.epochs:
                _result_from_checkpoint(run_dir, checkpoint)  # killed between checkpoint and result.json
            else:
                train(task.config, out=run_dir, resume=checkpoint.is_file(), progress=False)
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
    except NeurosimError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug or a resource problem: record it, the other points go on
        status, error, trace = "failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()
    record.update(status=status, error=error, finished=time.time(), seconds=round(time.perf_counter() - t0, 3))
    if trace:
        record["traceback"] = trace
    atomic_write_json(run_dir / POINT_FILE, record)
    return record


def _checkpoint_epoch(path: Path) -> int:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])
    except Exception:  # noqa: BLE001 - unreadable: let train(resume=True) report it
        return -1


def _result_from_checkpoint(run_dir: Path, checkpoint: Path) -> None:
    """result.json of a run whose last checkpoint is complete but whose result.json was never written.

    The window is short (metrics and plot after the last checkpoint) but a sweep killed in it
    must not lose the run: train(resume=True) refuses a finished checkpoint. The summary is
    rebuilt from the checkpoint's history (marked so); machine and diagnostics are not.
    """
    import torch

    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    history = saved["history"]
    last = history[-1]
    standard = {"epoch", "train_error", "test_error", "train_loss", "test_loss", "seconds", "train_seconds",
                "samples_per_second"}
    device = saved["config"].get("synapses", {}).get("device", "ideal")
    extra = {k: v for k, v in last.items() if k not in standard}
    train_seconds = sum(r["train_seconds"] for r in history)
    samples = last["samples_per_second"] * last["train_seconds"]
    summary = {"name": saved["config"].get("name"), "test_error": last["test_error"],
               "train_error": last["train_error"], "epochs": last["epoch"],
               "wall_seconds": round(saved["wall_seconds"], 3),
               "samples_per_second": round(samples * len(history) / train_seconds, 1) if train_seconds else 0.0,
               "best_test_error": min(r["test_error"] for r in history),
               "rebuilt_from_checkpoint": True}
    if "pulses" in extra:
        summary["synapses"] = {"device": device, **{k: v for k, v in extra.items() if k.startswith(("pulses", "energy"))}}
    atomic_write_json(run_dir / "result.json", summary)


# --------------------------------------------------------------------------- progress


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
                record = _read_json(self.out_dir / "points" / name / POINT_FILE)
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
