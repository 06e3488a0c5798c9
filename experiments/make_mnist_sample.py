"""Cut the MNIST sample shipped in ``neurosim/presets/datasets/mnist-sample/`` from the official files.

The sample is the first 1,000 training and first 500 test digits of MNIST, byte for byte, in
the official IDX ``.gz`` format (gzip header without a timestamp, so the MD5s recorded in
``neurosim/data.py`` are reproducible). Because they are the *first* digits, a run on
``mnist-sample`` with ``data.train_subset=N`` sees exactly the digits of ``mnist`` with the same
subset.

    python experiments/make_mnist_sample.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

from neurosim.data import ensure_files

SIZES = {"train": 1000, "test": 500}
OUT = Path(__file__).resolve().parents[1] / "neurosim" / "presets" / "datasets" / "mnist-sample"


def cut(src: Path, dst: Path, n: int) -> str:
    """Keep the first ``n`` records of one IDX file; return the new file's MD5."""
    raw = gzip.open(src).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    per = 1
    for d in dims[1:]:
        per *= d
    header = raw[:4] + n.to_bytes(4, "big") + raw[8:4 + 4 * ndim]
    body = raw[4 + 4 * ndim:4 + 4 * ndim + n * per]
    with open(dst, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0,
                                              compresslevel=9) as gz:
        gz.write(header + body)
    return hashlib.md5(dst.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding mnist/ (default: $NEUROSIM_DATA or the cache)")
    args = parser.parse_args()
    paths = ensure_files("mnist", args.data_dir, download=False)
    OUT.mkdir(parents=True, exist_ok=True)
    for key, path in paths.items():
        md5 = cut(path, OUT / path.name, SIZES[key.split("_")[0]])
        print(f"{path.name}: {md5}")


if __name__ == "__main__":
    main()
