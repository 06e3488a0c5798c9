"""Brian2's code-generation targets as the networks use them, independent of any one network.

Runtime targets ('numpy', 'cython') need Brian2's preference set for the run and restored
after (``codegen_target``). The 'cpp_standalone' target runs a compiled binary in a child
process: it reports its progress through lines in its stdout file (``standalone_report``,
read back by ``ProgressWatcher``), and reads its inputs from files named by content
(``array_digest``) so that a cached binary is shared by processes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

TARGETS = ("cpp_standalone", "cython", "numpy")


class codegen_target:
    """Set Brian2's runtime code-generation target for one run, then restore it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __enter__(self) -> None:
        import brian2 as b2
        from brian2.devices.device import get_device, set_device

        if type(get_device()).__name__ != "RuntimeDevice":
            set_device("runtime")
        self.previous = b2.prefs.codegen.target
        b2.prefs.codegen.target = self.target

    def __exit__(self, *exc: object) -> None:
        import brian2 as b2

        b2.prefs.codegen.target = self.previous


PROGRESS_TAG = "neurosim-progress"


def standalone_report() -> dict[str, Any]:
    """``Network.run`` arguments with which the compiled binary prints its progress every 2 s of
    wall time (flushed) to the stdout file of its results folder."""
    from brian2 import second

    return {"report": f'std::cout << "{PROGRESS_TAG} " << completed << " " << elapsed << std::endl;',
            "report_period": 2 * second}


class ProgressWatcher:
    """Reads a running binary's progress lines from its stdout file and passes them on (a thread)."""

    def __init__(self, path: Path, callback: Callable[[float, float], None] | None, every: float = 1.0) -> None:
        self.path, self.callback, self.every = path, callback, every
        self._stop: Any = None

    def __enter__(self) -> ProgressWatcher:
        if self.callback is not None:
            import threading

            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self._report()

    def _report(self) -> None:
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return
        for line in reversed(lines):
            parts = line.split()
            if len(parts) == 3 and parts[0] == PROGRESS_TAG:
                self.callback(float(parts[1]), float(parts[2]))
                return

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._stop.set()
            self._thread.join()
            self._report()


def array_digest(values: np.ndarray) -> str:
    """Content hash of an array as the binary would read it (float64, C order)."""
    return hashlib.md5(np.ascontiguousarray(values, dtype=np.float64).data).hexdigest()


def build_cache_root() -> Path:
    """Where compiled Brian2 projects are kept between runs: $NEUROSIM_BRIAN2_CACHE, else
    neurosim/brian2 in the user cache; one folder per network layout below it."""
    root = os.environ.get("NEUROSIM_BRIAN2_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "neurosim", "brian2")
    return Path(root)
