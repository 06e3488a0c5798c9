"""MNIST and Fashion-MNIST as whole-dataset tensors, verified against their official MD5s.

Equilibrium Propagation relaxes every sample of a mini-batch together, so the whole dataset
lives in one tensor on the training device and batches are cut with tensor indexing: no
DataLoader, no worker processes, no per-sample Python. Files are the official IDX ``.gz``
files; each is checked against its published MD5 on every load (a silently corrupt dataset
would invalidate every result), and missing files are downloaded atomically so an
interrupted download can never pass for a complete one.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from neurosim.errors import DataError, arg
from neurosim.presets import DATASETS_DIR

_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files come from and what they must hash to."""

    name: str
    files: dict[str, tuple[str, str]]  # key -> (filename, md5)
    mirrors: tuple[str, ...]
    classes: int
    image_shape: tuple[int, int, int]
    bundled: bool = False
    """Shipped inside the package (``neurosim/presets/datasets/<name>``): read from there, whatever
    the data folder, so it works offline on any installed copy."""


def _idx_files(md5s: tuple[str, str, str, str]) -> dict[str, tuple[str, str]]:
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    keys = ("train_images", "train_labels", "test_images", "test_labels")
    return {key: (fname, md5) for key, fname, md5 in zip(keys, names, md5s)}


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=_idx_files(("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                          "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        classes=10,
        image_shape=(1, 28, 28),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=_idx_files(("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                          "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        classes=10,
        image_shape=(1, 28, 28),
    ),
    # The first 1,000 training and 500 test digits of MNIST, byte for byte (see
    # presets/datasets/mnist-sample/README.md): real digits for the quickstart and the tests, offline.
    "mnist-sample": DatasetSpec(
        name="mnist-sample",
        files=_idx_files(("54fdd8ced80106b967c9ca330e86f7b1", "9dd354bee7209514e0799197e326beb9",
                          "862dd643ede431d907b346355e553db6", "8d4cb069970eb2a1a939a6f9a1c5135a")),
        mirrors=(),
        classes=10,
        image_shape=(1, 28, 28),
        bundled=True,
    ),
}
_ALIASES = {"fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist", "mnist_sample": "mnist-sample"}
SAMPLE_DIR = DATASETS_DIR
"""Where the bundled datasets live inside the installed package."""

# How to point neurosim at data, for every message about missing data: the same three ways
# from the command line, from Python and from the environment.
_WHERE_HINT = ("point neurosim at a folder holding {name}/ with the official files: set the "
               "NEUROSIM_DATA environment variable, or the data folder ("
               + arg('overrides=["data.dir=DIR"]', "--data-dir DIR") + ", or data.dir in the "
               "config){download}. To try neurosim with no download at all, train the "
               "'quickstart' config, which uses the MNIST sample bundled with the package")

# Parsed uint8 arrays keyed on (resolved path, mtime_ns, size): a second load in the same
# process (e.g. a sweep) skips decompression, while a replaced file is parsed afresh.
_IDX_CACHE: dict[tuple[str, int, int], np.ndarray] = {}
_IDX_CACHE_MAX = 8


def get_spec(name: str) -> DatasetSpec:
    """Look a dataset up by name, so a typo fails early with the list of valid names."""
    key = str(name).strip().lower()
    spec = DATASETS.get(_ALIASES.get(key, key))
    if spec is None:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return spec


def default_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Pick the data folder: explicit > $NEUROSIM_DATA > user cache, so runs share one copy."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if os.environ.get("NEUROSIM_DATA"):
        return Path(os.environ["NEUROSIM_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "neurosim" / "data"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open_url(url: str, timeout: float) -> Any:
    """Open ``url`` for reading; a seam that tests replace to simulate a mirror offline."""
    request = urllib.request.Request(url, headers={"User-Agent": "neurosim"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (fixed https/http URLs)


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Download into a temp file beside ``dest`` and rename only once the MD5 matches."""
    from tqdm.auto import tqdm

    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        digest, size = hashlib.md5(), 0
        with os.fdopen(fd, "wb") as out, _open_url(url, _TIMEOUT_S) as response:
            total = int(getattr(response, "headers", {}).get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise ValueError(f"downloaded {size} bytes with md5 {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dataset_folder(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder a dataset is read from: the package's own copy for a bundled sample, else
    ``<data dir>/<name>`` (explicit > $NEUROSIM_DATA > user cache)."""
    spec = get_spec(name)
    if spec.bundled:
        return SAMPLE_DIR / spec.name
    return default_data_dir(root) / spec.name


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first, so that a
    failed download can remove exactly what it made and nothing else."""
    created: list[Path] = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (another file landed there) or already gone: leave the rest


def ensure_files(name: str, root: str | os.PathLike[str] | None = None,
                 download: bool = True) -> dict[str, Path]:
    """Return the dataset's verified file paths, downloading missing ones if allowed.

    A download that fails leaves nothing behind: partial files are removed as they fail, and
    folders this call created are removed again if they are still empty.
    """
    spec = get_spec(name)
    folder = dataset_folder(spec.name, root)
    hint = _WHERE_HINT.format(name=spec.name, download="")
    paths: dict[str, Path] = {}
    created: list[Path] = []
    try:
        for key, (fname, md5) in spec.files.items():
            path = folder / fname
            if not path.is_file():
                if spec.bundled:
                    raise DataError(f"{path} is missing from the installed package (expected md5 "
                                    f"{md5}); reinstall neurosim")
                if not download:
                    allow = "; or allow the download (data.download: true, the default)"
                    raise DataError(f"{spec.name}: {path} is missing (expected md5 {md5}) and "
                                    f"download is disabled; "
                                    f"{_WHERE_HINT.format(name=spec.name, download=allow)}")
                urls = [mirror + fname for mirror in spec.mirrors]
                failures: list[str] = []
                try:
                    created += _make_folder(folder)
                except OSError as exc:
                    raise DataError(f"{spec.name}: {path} is missing (expected md5 {md5}) and its "
                                    f"folder cannot be created: {exc}; {hint}") from exc
                for url in urls:
                    try:
                        _fetch(url, path, md5)
                        break
                    except (OSError, ValueError, http.client.HTTPException) as exc:
                        failures.append(f"  {url}: {type(exc).__name__}: {exc}")
                else:
                    raise DataError(f"{spec.name}: {path} is missing (expected md5 {md5}) and could "
                                    f"not be downloaded; tried:\n" + "\n".join(failures)
                                    + f"\nTo use a copy you already have, {hint}")
            actual = _md5(path)
            if actual != md5:
                raise DataError(f"{path} has md5 {actual} ({path.stat().st_size} bytes), expected "
                                f"{md5}: the file is corrupt or truncated; delete it so that it is "
                                f"downloaded again")
            paths[key] = path
    except BaseException:
        _remove_empty(created)
        raise
    return paths


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX .gz file into a uint8 array, checking its header against its size."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _IDX_CACHE:
        return _IDX_CACHE[key]
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot decompress ({exc}); delete it so that it is "
                        f"downloaded again") from exc
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX file with magic number 0x{magic:08x}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} ({int(np.prod(dims))} bytes) but "
                        f"{len(raw) - header} bytes follow it")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    if len(_IDX_CACHE) >= _IDX_CACHE_MAX:
        _IDX_CACHE.pop(next(iter(_IDX_CACHE)))
    _IDX_CACHE[key] = array
    return array


@dataclass
class TensorDataset:
    """A whole split as two tensors: images [N, 784] in [0, 1] and int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: str | torch.device | None = None,
           dtype: torch.dtype | None = None) -> TensorDataset:
        """Move to a device and/or cast the images; labels stay int64."""
        return TensorDataset(self.images.to(device=device, dtype=dtype),
                             self.labels.to(device=device), self.num_classes)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images, labels) mini-batches; one epoch visits every sample once.

        The permutation is drawn on the CPU so a seed gives the same order on CPU and CUDA.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self)
        stop = n - n % batch_size if drop_last else n
        order = torch.randperm(n, generator=generator).to(self.images.device) if shuffle else None
        for start in range(0, stop, batch_size):
            if order is None:
                yield self.images[start:start + batch_size], self.labels[start:start + batch_size]
            else:
                index = order[start:start + batch_size]
                yield self.images[index], self.labels[index]


def load_dataset(name: str, split: str, root: str | os.PathLike[str] | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 subset: int | None = None, download: bool = True) -> TensorDataset:
    """Load one split (optionally its first ``subset`` samples) onto ``device``."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
    if not dtype.is_floating_point:
        raise DataError(f"images need a floating-point dtype, got {dtype}")
    spec = get_spec(name)
    paths = ensure_files(spec.name, root, download)
    images = _read_idx(paths[f"{split}_images"], _IMAGES_MAGIC)
    labels = _read_idx(paths[f"{split}_labels"], _LABELS_MAGIC)
    if images.shape[1:] != spec.image_shape[1:] or images.shape[0] != labels.shape[0]:
        raise DataError(f"{spec.name} {split}: images {images.shape} do not match labels "
                        f"{labels.shape} and image shape {spec.image_shape}")
    n = images.shape[0]
    if subset is not None:
        if isinstance(subset, bool) or not isinstance(subset, int) or not 1 <= subset <= n:
            raise DataError(f"subset must be an integer in 1..{n} for {spec.name} {split}, "
                            f"got {subset!r}")
        n = subset
    # Copy the uint8 data to the device first (4x less traffic), then scale there.
    pixels = torch.tensor(images[:n].reshape(n, -1), device=device)
    return TensorDataset(images=pixels.to(dtype).div_(255.0),
                         labels=torch.tensor(labels[:n], device=device).long(),
                         num_classes=spec.classes)


def load_splits(name: str, root: str | os.PathLike[str] | None = None,
                device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                train_subset: int | None = None, test_subset: int | None = None,
                download: bool = True) -> tuple[TensorDataset, TensorDataset]:
    """Load (train, test) with the same device, dtype and data folder."""
    train = load_dataset(name, "train", root, device, dtype, train_subset, download)
    test = load_dataset(name, "test", root, device, dtype, test_subset, download)
    return train, test


def small_digits(root: str | Path | None = None, n: int = 8, split: str = "train", download: bool = False,
                 dataset: str = "mnist") -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` MNIST digits at 8x8 (the centre 24x24 crop, 3x3 average pooling) and their
    one-hot targets, float64: a 64-input problem small enough for the numpy target of Brian2 in
    tests and figures, built from the real data rather than a synthetic set. ``dataset=
    "mnist-sample"`` reads the same first digits from the copy bundled with the package."""
    data = load_dataset(dataset, split, root, dtype=torch.float64, subset=n, download=download)
    images = data.images.reshape(-1, 1, 28, 28)[:, :, 2:26, 2:26]
    x = torch.nn.functional.avg_pool2d(images, 3).reshape(-1, 64)
    return x, torch.nn.functional.one_hot(data.labels, 10).double()
