"""A sweep whose driver died: its started points are reported interrupted, not running; shutdown
leaves no lock behind and no leaked semaphores."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import neurosim
from neurosim.cli import main
from neurosim.sweeps.locks import LOCK_FILE, STALE_SECONDS, live_driver
from neurosim.sweeps.state import POINT_FILE

SAMPLE = ["data.name=mnist-sample", "data.train_subset=200", "data.test_subset=100", "circuit.layers=[784, 32, 10]"]


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(child.stdout)


def sweep_folder(tmp_path: Path, started: float) -> Path:
    """A sweep folder as a driver leaves it: sweep.json, one point recorded as running."""
    out = tmp_path / "sweep"
    (out / "points" / "beta=0.1").mkdir(parents=True)
    (out / "sweep.json").write_text(json.dumps({
        "name": "s", "keys": ["estimator.beta"], "metric": "test_error", "plots": [], "reference": None,
        "points": [{"name": "beta=0.1", "values": {"estimator.beta": 0.1}, "epochs": 3},
                   {"name": "beta=0.2", "values": {"estimator.beta": 0.2}, "epochs": 3}]}))
    (out / "points" / "beta=0.1" / POINT_FILE).write_text(json.dumps({
        "name": "beta=0.1", "status": "running", "attempts": 1, "host": socket.gethostname(), "pid": os.getpid(),
        "started": started}))
    return out


def statuses(out: Path) -> list[str]:
    return [row["status"] for row in neurosim.report(out, write_plots=False).rows]


def lock(out: Path, **record) -> Path:
    path = out / LOCK_FILE
    path.write_text(json.dumps(record))
    return path


def test_without_a_live_driver_started_points_are_interrupted(tmp_path):
    out = sweep_folder(tmp_path, time.time())
    assert statuses(out) == ["interrupted", "pending"]  # no lock: stopped (Ctrl-C, SIGTERM)
    lock(out, host=socket.gethostname(), pid=dead_pid(), started=time.time() - 10)
    assert live_driver(out) is None and statuses(out) == ["interrupted", "pending"]  # SIGKILL: dead pid


def test_a_live_driver_shows_its_points_running(tmp_path):
    out = sweep_folder(tmp_path, time.time())
    lock(out, host=socket.gethostname(), pid=os.getpid(), started=time.time() - 10)
    assert live_driver(out)["pid"] == os.getpid()
    assert statuses(out) == ["running", "pending"]
    lock(out, host=socket.gethostname(), pid=os.getpid(), started=time.time() + 60)  # a new sweep, not yet at it
    assert statuses(out) == ["pending", "pending"]


def test_a_driver_on_another_host_is_alive_while_its_heartbeat_is_fresh(tmp_path):
    out = sweep_folder(tmp_path, time.time())
    path = lock(out, host="elsewhere.invalid", pid=1, started=time.time() - 10)
    assert statuses(out) == ["running", "pending"]
    old = time.time() - STALE_SECONDS - 5
    os.utime(path, (old, old))
    assert statuses(out) == ["interrupted", "pending"]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_killed_sweep_command_leaves_its_point_interrupted(tmp_path, capsys, how):
    spec = {"name": "k", "base": "mnist_fc1_ep", "overrides": [*SAMPLE, "train.epochs=20"],
            "grid": {"estimator.beta": [0.1, 0.2]}}
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "neurosim.cli", "sweep", str(path), "--out", str(out),
                                "--workers", "0", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    metrics = out / "points" / "beta=0.1" / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (metrics.is_file() and metrics.read_text().strip()):
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        assert statuses(out) == ["running", "pending"]  # while it runs
        process.send_signal(getattr(signal, how))
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if how == "SIGTERM":  # handled as Ctrl-C: the lock is released, a resumable message, 128 + 15
        assert process.returncode == 143 and "interrupted" in err and not (out / LOCK_FILE).exists()
    else:
        assert process.returncode == -signal.SIGKILL and (out / LOCK_FILE).exists()
    assert "leaked semaphore" not in err
    assert main(["report", str(out), "--no-plots"]) == 0
    table = capsys.readouterr().out
    assert "interrupted" in table and "running" not in table
    assert statuses(out) == ["interrupted", "pending"]


def test_a_worker_makes_no_semaphore_for_tqdm(tmp_path):
    # tqdm's default lock is a multiprocessing RLock: in a spawned Dask worker, a named semaphore that
    # the resource tracker reports as leaked when the worker is killed. run_point swaps it for a thread lock.
    script = """
import multiprocessing as mp

def child(queue):
    from multiprocessing import resource_tracker
    made = []
    register = resource_tracker.register
    resource_tracker.register = lambda name, rtype: (made.append(rtype), register(name, rtype))
    from neurosim.sweeps.worker import thread_lock_for_tqdm
    thread_lock_for_tqdm()
    from tqdm.auto import tqdm
    for _ in tqdm(range(3), disable=True):
        pass
    queue.put(made)

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=child, args=(queue,))
    process.start()
    print(queue.get(timeout=60))
    process.join()
"""
    path = tmp_path / "child.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
