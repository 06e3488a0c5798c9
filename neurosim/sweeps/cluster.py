"""Where the points run: one after another in this process, on an embedded local Dask cluster, or
on the Dask cluster at a scheduler address.

One code path, ``dask.distributed``, for local worker processes and clusters alike: by default
an embedded ``LocalCluster`` of worker processes on 127.0.0.1 (nothing to start), or the
cluster at ``scheduler=tcp://HOST:PORT``. Dask reschedules the point of a worker process that
dies (``distributed.scheduler.allowed-failures`` times), and the retry resumes from the point's
checkpoint. ``workers=0`` runs the points in this process (debugging, timing).

Each point gets a torch thread budget (``compute.threads`` = cores // concurrent points,
unless the sweep sets it): two torch jobs with 2 threads each on 2 cores run many times slower.
"""

from __future__ import annotations

import json
import os
import time
import uuid
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
    record = {**read_json(Path(task.run_dir) / POINT_FILE), "name": task.name, "values": task.values,
              "status": "failed", "error": error}
    atomic_write_json(Path(task.run_dir) / POINT_FILE, record)
    return record
