"""Where the tests get real MNIST: the one place that knows, so no test hard-codes a path.

Two sources:

- the **bundled sample** (``data.name=mnist-sample``): the first 1,000 training and 500 test
  digits of MNIST, shipped inside the package. Every test that needs only a few real digits
  (smoke trainings, the Brian2 and spiking agreement tests) uses it, so they run anywhere.
- the **full dataset**, found like neurosim itself finds it: ``$NEUROSIM_DATA``, then the user
  cache (``~/.cache/neurosim/data``). Tests that need it take the ``mnist_dir`` fixture
  (conftest.py), which skips them with a reason naming ``NEUROSIM_DATA`` when it is absent.
"""

from __future__ import annotations

from pathlib import Path

from neurosim.data import SAMPLE_DIR, dataset_folder, get_spec

SAMPLE = "mnist-sample"
SAMPLE_TRAIN, SAMPLE_TEST = 1000, 500
SAMPLE_OVERRIDES = [f"data.name={SAMPLE}"]
"""Config overrides that put a run on the bundled sample (no data folder, no download)."""


def find_full_mnist() -> tuple[Path | None, str]:
    """The data folder holding the full MNIST (``<dir>/mnist/*.gz``), or None and why not.

    Only presence is checked here; the MD5s are checked by neurosim on every load.
    """
    folder = dataset_folder("mnist")  # $NEUROSIM_DATA, else the user cache
    missing = [fname for fname, _ in get_spec("mnist").files.values() if not (folder / fname).is_file()]
    if missing:
        return None, (f"needs the full MNIST dataset: set NEUROSIM_DATA to a folder holding "
                      f"mnist/ with the four official .gz files (looked in {folder}; missing "
                      f"{', '.join(missing)})")
    return folder.parent, ""


def allowed_data_roots() -> list[Path]:
    """Folders a test may read dataset files from: the sample and the fixture's full MNIST."""
    roots = [SAMPLE_DIR.resolve()]
    full, _ = find_full_mnist()
    if full is not None:
        roots.append(full.resolve())
    return roots
