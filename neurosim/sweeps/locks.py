"""One sweep process per folder: its lock file, the heartbeat that keeps it fresh, and who holds it.

Two sweep processes in one folder would train the same points into the same run folders, so
``sweep`` holds ``DIR/.sweep.lock`` while it runs. The report needs the other side of the same
record: a point whose ``sweep_point.json`` says running is running only while a live sweep holds
the folder, else it was interrupted. Liveness is the pid on this host, the heartbeat's age on
another (a shared file system across a cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neurosim.errors import NeurosimError
from neurosim.sweeps.state import read_json

LOCK_FILE = ".sweep.lock"
"""Held by the sweep process running the folder: its host, pid and start time; touched every
HEARTBEAT_SECONDS. A point recorded as running is interrupted once no live sweep holds it."""
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0
"""A lock of another host whose heartbeat is older than this belongs to a dead sweep."""


@contextlib.contextmanager
def hold_lock(out_dir: Path) -> Iterator[None]:
    """One sweep process per folder: two would run the same points into the same run folders."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_FILE
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = read_json(path)
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
    holder = read_json(path)
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
