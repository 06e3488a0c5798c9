"""One point, on a worker: train it into its folder, resuming its checkpoint, and record the outcome.

This is the code that runs in a Dask worker process (or in the sweep process with
``workers=0``); ``PointTask`` is the plain data it receives by pickle. It never raises for a
point's own errors: a point that diverges or fails is recorded (``sweep_point.json``) and the
other points go on. It also repairs what a worker process inherits from Dask and is bad for
torch (glibc malloc thresholds, tqdm's multiprocessing lock).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurosim.errors import DivergenceError, NeurosimError
from neurosim.io import atomic_write_json
from neurosim.sweeps.state import POINT_FILE, point_state, read_json


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


def run_point(task: PointTask) -> dict[str, Any]:
    """Train one point into its folder (resuming its checkpoint); never raises for the point's errors.

    Runs on a worker. Writes ``sweep_point.json`` when it starts (attempt number) and when it ends
    (status, error, timing), so that a retry after a killed worker is visible in the results.
    """
    from neurosim.run.trainer import CHECKPOINT, train

    _restore_malloc()
    thread_lock_for_tqdm()
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_json(run_dir / POINT_FILE)
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


def _restore_malloc() -> None:
    """Undo MALLOC_TRIM_THRESHOLD_ in a worker that has it (see ``cluster.local_cluster``): glibc
    thresholds that keep torch's large tensors on the reused heap. Needed on clusters started with
    Dask's defaults, and locally too once a default Dask nanny ran in the calling process (nannies
    write their variables into their own process's environment, which later workers inherit)."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: the largest glibc allows on 64-bit
    libc.mallopt(-1, 128 * 1024 * 1024)  # M_TRIM_THRESHOLD


def thread_lock_for_tqdm() -> None:
    """Give tqdm a thread lock in this worker instead of the multiprocessing RLock it makes by
    default (even for disabled bars). In a spawned worker that RLock is a named semaphore that
    the resource tracker shared with the sweep process records; a worker killed mid-point never
    unlinks it, and the tracker warns of a "leaked semaphore" when the sweep ends. Workers draw
    no bars, so they need no lock across processes."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
