"""Where the points run: one after another in this process, on an embedded local Dask cluster, or
on the Dask cluster at a scheduler address.

One code path, ``dask.distributed``, for local worker processes and clusters alike: by default
an embedded ``LocalCluster`` of worker processes on 127.0.0.1 (nothing to start), or the
cluster at ``scheduler=tcp://HOST:PORT``. Dask reschedules the point of a worker process that
dies (``distributed.scheduler.allowed-failures`` times), and the retry resumes from the point's
checkpoint. ``workers=0`` runs the points in this process (debugging, timing).

A point travels to its worker as bytes that only ``pickle.loads`` (the standard library's) opens,
inside the task: a worker that cannot import or unpickle it (neurosim missing, broken or
mid-edit there) raises as the task, and the point is recorded as failed with the worker's error.
Had Dask itself unpickled it, the worker's connection handler would die and the point would stay
pending for ever. ``LOAD_FAILURES`` such failures in a row stop the sweep with that error.

Each point gets a torch thread budget (``compute.threads`` = cores // concurrent points,
unless the sweep sets it): two torch jobs with 2 threads each on 2 cores run many times slower.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neurosim.errors import NeurosimError
from neurosim.io import atomic_write_json
from neurosim.sweeps.progress import Progress
from neurosim.sweeps.spec import Point, SweepSpec
from neurosim.sweeps.state import POINT_FILE, read_json
from neurosim.sweeps.worker import PointTask, run_point

ALLOWED_FAILURES = 3
"""Times a point may lose its worker process before it is recorded as failed."""

LOAD_FAILURES = 3
"""Points in a row that the workers could not load or start before the sweep stops (a broken install)."""

WORKER_WAIT = 60.0
"""Seconds without any worker on the scheduler before the sweep warns that it is waiting for one
(a scheduler started without workers would otherwise look like a hung sweep)."""


class NoWorkersWarning(UserWarning):
    """The scheduler has had no worker for ``WORKER_WAIT`` seconds; the sweep goes on waiting."""


def run_points(spec: SweepSpec, todo: list[Point], out_dir: Path, workers: int | None, scheduler: str | None,
               threads: int | None, finished: Callable[[PointTask, dict[str, Any]], None],
               status: Progress, session: dict[str, Any]) -> None:
    """Run ``todo`` and call ``finished`` with each point's outcome as it ends; records in
    ``session`` how (workers, threads per point, cluster start time)."""
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
            cluster = local_cluster(n)
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


def local_cluster(n: int) -> Any:
    """An embedded cluster of ``n`` single-threaded worker processes on 127.0.0.1."""
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
    futures = {client.submit(pickle.loads, _payload(task), key=f"neurosim-{name}-{task.name}-{session}",
                             pure=False): task
               for task in tasks}
    pending = set(futures)
    load_failures: list[str] = []
    without_workers_since: float | None = None
    warned = False
    try:
        while pending:
            if not warned:
                if client.scheduler_info()["workers"]:
                    without_workers_since = None
                elif without_workers_since is None:
                    without_workers_since = time.monotonic()
                elif time.monotonic() - without_workers_since >= WORKER_WAIT:
                    address = client.scheduler.address
                    warnings.warn(f"no Dask worker has joined the scheduler at {address} for {WORKER_WAIT:.0f} s; "
                                  f"the sweep waits for one (start workers with `dask worker {address}`; Ctrl-C "
                                  "stops the sweep, and the same command continues it)", NoWorkersWarning, stacklevel=2)
                    warned = True
            try:
                done, _ = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for future in done:
                pending.discard(future)
                task = futures[future]
                if future.status == "finished":
                    outcome = future.result()
                    load_failures.clear()
                else:  # the worker died too often, or could not load or start the point
                    error = future.status == "error"
                    outcome = _lost(task, future.exception() if error else None, future.traceback() if error else None)
                    if outcome.get("lost") == "load":
                        load_failures.append(outcome["error"])
                    else:
                        load_failures.clear()
                finished(task, outcome)
            if len(load_failures) >= LOAD_FAILURES:
                left = f"; {len(pending)} points not run (run the same command again to continue)" if pending else ""
                raise NeurosimError(
                    f"sweep stopped: the workers could not load or start {len(load_failures)} points in a row "
                    f"(is neurosim installed and importable on the workers, and not being edited?); the last "
                    f"error: {load_failures[-1]}{left}")
            status.update()
    finally:
        if pending:
            client.cancel(list(pending))


def _payload(task: PointTask) -> bytes:
    """``pickle.loads`` of these bytes, on the worker, runs the point: ``run_point(task)``."""
    import cloudpickle

    return cloudpickle.dumps(_Call(run_point, task))


class _Call:
    """Pickles as a call: unpickling it calls ``function(*args)`` (the worker needs neither this class
    nor Dask to open it, only the function's and the arguments' modules)."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.function, self.args


def _lost(task: PointTask, exc: BaseException | None, trace: Any = None) -> dict[str, Any]:
    """Record a point whose worker process died ALLOWED_FAILURES + 1 times, or that its worker could
    not load or start (the worker's error, e.g. an ImportError, and its traceback)."""
    from distributed import KilledWorker

    record = {**read_json(Path(task.run_dir) / POINT_FILE), "name": task.name, "values": task.values,
              "status": "failed"}
    record.pop("traceback", None)
    if exc is None:
        record["error"] = "the cluster cancelled this point's task (scheduler restarted or lost?)"
        record["lost"] = "cancelled"
    elif isinstance(exc, KilledWorker):
        record["error"] = (f"the worker process running this point died {exc.allowed_failures + 1} times (killed, "
                           f"out of memory or crashed); its checkpoint, if any, is kept")
        record["lost"] = "worker"
    else:
        record["error"] = f"{type(exc).__name__}: {exc} (the worker could not load or start this point)"
        record["lost"] = "load"
        try:
            record["traceback"] = "".join(traceback.format_exception(type(exc), exc, trace))
        except Exception:  # noqa: BLE001 - a traceback from elsewhere that does not format: the error says enough
            pass
    Path(task.run_dir).mkdir(parents=True, exist_ok=True)  # a point that never started has no folder yet
    atomic_write_json(Path(task.run_dir) / POINT_FILE, record)
    return record
