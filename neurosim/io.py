"""Atomic file writes: a run killed at any moment leaves either the old file or the new one.

Checkpoints, metrics and results are rewritten every epoch; writing to a temporary file in
the same folder and renaming it over the target (``os.replace`` is atomic on POSIX and
Windows) means an interruption never leaves a truncated file that ``--resume`` would choke on.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
"""The mode ``open`` would give a new file (mkstemp's are 0600, unreadable to a group that shares
the results)."""


def atomic_write(path: Path, write: Callable[[Any], None], mode: str) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda h: h.write(text), "w")


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    import torch

    atomic_write(path, lambda h: torch.save(obj, h), "wb")
