"""Shared test settings, the MNIST fixture, and a guard against hard-coded data paths."""

from __future__ import annotations

import getpass
import re
import tempfile
import sys
from pathlib import Path

import pytest
import torch

from mnist_data import allowed_data_roots, find_full_mnist

# The test networks are tiny: extra threads only add OpenMP synchronisation, and on a busy
# 2-core runner they make the suite many times slower (measured: 10 min instead of 1).
torch.set_num_threads(1)

_IDX_FILE = re.compile(r"(idx\d-ubyte)(\.gz)?$")
_ALLOWED: list[Path] = []


def _guard_data_reads(event: str, args: tuple) -> None:
    """Refuse to open a dataset file outside the fixture's folders and pytest's temp folders.

    Tests must get real MNIST from ``mnist_dir`` or the bundled sample, never from a path of
    their own: a hard-coded folder passes on the machine that has it and fails on every
    fresh clone. (Test files are also scanned for such paths: test_data_paths.py.)
    """
    if event != "open" or not args or not isinstance(args[0], (str, Path)):
        return
    path = str(args[0])
    if not _IDX_FILE.search(path):
        return
    resolved = Path(path).resolve()
    if any(resolved.is_relative_to(root) for root in _ALLOWED):
        return
    raise PermissionError(f"a test opened dataset file {path}, which comes neither from the "
                          f"mnist_dir fixture nor from the bundled sample nor from a tmp_path; "
                          f"use the fixture (tests/mnist_data.py)")


def pytest_configure(config: pytest.Config) -> None:
    _ALLOWED.extend(allowed_data_roots())
    # tmp_path folders: --basetemp if given, else pytest's default root under the temp dir.
    basetemp = config.getoption("basetemp", None)
    _ALLOWED.append(Path(basetemp).resolve() if basetemp else
                    Path(tempfile.gettempdir()).resolve() / f"pytest-of-{getpass.getuser()}")
    sys.addaudithook(_guard_data_reads)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The data folder holding the full MNIST (``<dir>/mnist/``); skips the test when absent."""
    folder, reason = find_full_mnist()
    if folder is None:
        pytest.skip(reason)
    return folder
