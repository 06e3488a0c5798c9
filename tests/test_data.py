"""Tests for neurosim.data: real IDX files, checksum failures, offline downloads, batching."""

from __future__ import annotations

import gzip
import io
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from neurosim import data
from neurosim.errors import DataError

SAMPLE = data.SAMPLE_DIR / "mnist-sample"
MNIST_LABELS = data.DATASETS["mnist"].files["test_labels"][0]


@pytest.fixture
def sample_as_mnist(monkeypatch: pytest.MonkeyPatch) -> data.DatasetSpec:
    """Make 'mnist' a downloadable dataset whose official files are the bundled sample's, so
    that the checksum, cache and download paths run on real IDX files on any machine."""
    spec = replace(data.DATASETS["mnist-sample"], name="mnist", bundled=False,
                   mirrors=data.DATASETS["mnist"].mirrors)
    monkeypatch.setitem(data.DATASETS, "mnist", spec)
    return spec


def _copy_mnist(dest_root: Path, skip: str | None = None) -> Path:
    """Copy the sample's files into dest_root/mnist (all but ``skip``)."""
    folder = dest_root / "mnist"
    folder.mkdir(parents=True)
    for fname, _ in data.DATASETS["mnist"].files.values():
        if fname != skip:
            shutil.copyfile(SAMPLE / fname, folder / fname)
    return folder


class _FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes) -> None:
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_real_mnist_loads(mnist_dir: Path) -> None:
    train, test = data.load_splits("mnist", root=mnist_dir, download=False)
    assert train.images.shape == (60000, 784) and test.images.shape == (10000, 784)
    assert train.labels.shape == (60000,) and len(test) == 10000
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert set(train.labels.tolist()) == set(range(10)) and train.num_classes == 10
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first MNIST labels


def test_bundled_sample_loads_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the data folder says, the sample is read from the package, offline.
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "nothing-here"))
    monkeypatch.setattr(data, "_open_url", lambda url, timeout: pytest.fail("no download"))
    train, test = data.load_splits("mnist-sample", root=tmp_path / "ignored")
    assert train.images.shape == (1000, 784) and test.images.shape == (500, 784)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first MNIST labels
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert set(train.labels.tolist()) == set(range(10)) and train.num_classes == 10
    assert data.get_spec("mnist_sample").bundled and not (tmp_path / "ignored").exists()


def test_sample_is_the_first_mnist_digits(mnist_dir: Path) -> None:
    for split, n in (("train", 1000), ("test", 500)):
        full = data.load_dataset("mnist", split, root=mnist_dir, subset=n, download=False)
        sample = data.load_dataset("mnist-sample", split)
        assert torch.equal(full.images, sample.images) and torch.equal(full.labels, sample.labels)


def test_subset_dtype_and_fashion(mnist_dir: Path) -> None:
    full = data.load_dataset("mnist", "test", root=mnist_dir, download=False)
    sub = data.load_dataset("mnist", "test", root=mnist_dir, dtype=torch.float64, subset=100,
                            download=False)
    assert sub.images.shape == (100, 784) and sub.images.dtype == torch.float64
    assert torch.equal(sub.images.float(), full.images[:100]) and torch.equal(sub.labels, full.labels[:100])
    for bad in (0, 10001, 2.5):
        with pytest.raises(DataError, match="subset"):
            data.load_dataset("mnist", "test", root=mnist_dir, subset=bad, download=False)
    if not (mnist_dir / "fashion-mnist").is_dir():
        pytest.skip(f"no Fashion-MNIST beside MNIST in {mnist_dir}")
    fashion = data.load_dataset("fashion_mnist", "test", root=mnist_dir, download=False)
    assert fashion.images.shape == (10000, 784) and fashion.labels.max() == 9
    assert not torch.equal(fashion.images[:10], full.images[:10])


@pytest.mark.usefixtures("sample_as_mnist")
def test_second_load_uses_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_mnist(tmp_path)
    calls = []
    real_open = gzip.open
    monkeypatch.setattr(gzip, "open", lambda *a, **k: calls.append(a[0]) or real_open(*a, **k))
    first = data.load_dataset("mnist", "test", root=tmp_path, download=False)
    second = data.load_dataset("mnist", "test", root=tmp_path, download=False)
    assert len(calls) == 2 and torch.equal(first.images, second.images)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_checksum_mismatch(tmp_path: Path, damage: str, sample_as_mnist: data.DatasetSpec) -> None:
    folder = _copy_mnist(tmp_path)
    target = folder / MNIST_LABELS
    payload = bytearray(target.read_bytes())
    if damage == "flip":
        payload[len(payload) // 2] ^= 0xFF
    else:
        payload = payload[:-100]
    target.write_bytes(bytes(payload))
    with pytest.raises(DataError) as info:
        data.ensure_files("mnist", root=tmp_path, download=False)
    message = str(info.value)
    assert str(target) in message and sample_as_mnist.files["test_labels"][1] in message
    assert str(len(payload)) in message and "delete" in message


def test_missing_file_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []
    monkeypatch.setattr(data, "_open_url", lambda url, timeout: tried.append(url))
    with pytest.raises(DataError) as info:
        data.ensure_files("mnist", root=tmp_path, download=False)
    message = str(info.value)
    assert tried == [] and "download is disabled" in message
    assert "missing" in message and str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert data.DATASETS["mnist"].files["train_images"][1] in message
    # ... and says how to point neurosim at a copy it already has, or to allow the download
    assert "NEUROSIM_DATA" in message and 'overrides=["data.dir=DIR"]' in message
    assert "--data-dir DIR" in info.value.cli_message() and "--data-dir" not in message
    assert "data.download" in message and not (tmp_path / "mnist").exists()


@pytest.mark.usefixtures("sample_as_mnist")
def test_download_from_fake_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_mnist(tmp_path, skip=MNIST_LABELS)
    urls: list[str] = []

    def fake_open(url: str, timeout: float) -> _FakeResponse:
        urls.append(url)
        if url.startswith(data.DATASETS["mnist"].mirrors[0]):
            raise OSError("mirror down")  # the first mirror fails: the second must be tried
        return _FakeResponse((SAMPLE / Path(url).name).read_bytes())

    monkeypatch.setattr(data, "_open_url", fake_open)
    paths = data.ensure_files("mnist", root=tmp_path, download=True)
    assert [Path(u).name for u in urls] == [MNIST_LABELS, MNIST_LABELS]
    assert paths["test_labels"] == tmp_path / "mnist" / MNIST_LABELS
    assert paths["test_labels"].read_bytes() == (SAMPLE / MNIST_LABELS).read_bytes()
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(
        f for f, _ in data.DATASETS["mnist"].files.values())


def test_download_through_urllib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 sample_as_mnist: data.DatasetSpec) -> None:
    # A file:// mirror drives the real urllib + tqdm path without any network.
    mirror = SAMPLE.as_uri() + "/"
    monkeypatch.setitem(data.DATASETS, "mnist", replace(sample_as_mnist, mirrors=("file:///nonexistent/", mirror)))
    _copy_mnist(tmp_path, skip=MNIST_LABELS)
    paths = data.ensure_files("mnist", root=tmp_path)
    assert paths["test_labels"].read_bytes() == (SAMPLE / MNIST_LABELS).read_bytes()


def test_corrupt_download_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []

    def fake_open(url: str, timeout: float) -> _FakeResponse:
        tried.append(url)
        return _FakeResponse(b"not the real file" * 1000)

    monkeypatch.setattr(data, "_open_url", fake_open)
    with pytest.raises(DataError) as info:
        data.ensure_files("mnist", root=tmp_path, download=True)
    message = str(info.value)
    fname, md5 = data.DATASETS["mnist"].files["train_images"]
    assert fname in message and md5 in message and len(tried) == 2
    assert all(url in message for url in tried)
    assert not (tmp_path / "mnist").exists()  # no file, no temp file, no folder left
    assert "NEUROSIM_DATA" in message and "--data-dir" in info.value.cli_message()


def test_failed_download_removes_the_folders_it_made(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "_open_url", lambda url, timeout: (_ for _ in ()).throw(OSError("offline")))
    root = tmp_path / "new" / "data"
    with pytest.raises(DataError, match="could not be downloaded"):
        data.ensure_files("mnist", root=root)
    assert list(tmp_path.iterdir()) == []  # new/, new/data/ and new/data/mnist/ are all gone
    # A folder that existed before is kept, and so is anything already in it.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError):
        data.ensure_files("mnist", root=tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert data.default_data_dir() == tmp_path / "env"
    monkeypatch.delenv("NEUROSIM_DATA")
    assert data.default_data_dir() == tmp_path / "xdg" / "neurosim" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_data_dir() == tmp_path / "home" / ".cache" / "neurosim" / "data"


def _toy(n: int = 10) -> data.TensorDataset:
    return data.TensorDataset(torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3),
                              torch.arange(n), num_classes=n)


def test_batches_shuffle_and_cover() -> None:
    toy = _toy()
    def epoch(seed: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(seed)
        out = []
        for x, y in toy.batches(4, shuffle=True, generator=gen):
            assert torch.equal(x[:, 0].long(), y)  # images and labels stay paired
            out.append(y.tolist())
        return out
    first = epoch(0)
    assert first == epoch(0) and first != epoch(1)
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10)) and sum(first, []) != list(range(10))
    dropped = [y.tolist() for _, y in toy.batches(4, shuffle=False, drop_last=True)]
    assert dropped == [[0, 1, 2, 3], [4, 5, 6, 7]]
    kept = [y.tolist() for _, y in toy.batches(4, shuffle=False)]
    assert kept == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_to_keeps_labels_int() -> None:
    moved = _toy().to("cpu", torch.float64)
    assert moved.images.dtype == torch.float64 and moved.labels.dtype == torch.int64
    assert len(moved) == 10 and moved.num_classes == 10


def test_bad_names_and_splits() -> None:
    with pytest.raises(DataError, match="fashion-mnist"):
        data.get_spec("cifar-100")
    assert data.get_spec("fashion_mnist") is data.DATASETS["fashion-mnist"]
    with pytest.raises(DataError, match="split"):
        data.load_dataset("mnist-sample", "validation")


def test_idx_parser_rejects_bad_files(tmp_path: Path) -> None:
    def idx(payload: bytes) -> Path:
        path = tmp_path / f"f{len(list(tmp_path.iterdir()))}.gz"
        path.write_bytes(gzip.compress(payload))
        return path

    good = (0x801).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    assert data._read_idx(idx(good), 0x801).tolist() == [1, 2, 3]
    wrong_type = (0x901).to_bytes(4, "big") + good[4:]  # same layout, wrong magic number
    with pytest.raises(DataError, match="magic"):
        data._read_idx(idx(wrong_type), 0x801)
    with pytest.raises(DataError, match="bytes"):
        data._read_idx(idx(good[:-1]), 0x801)
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(gzip.compress(good * 50)[:-12])
    with pytest.raises(DataError, match="truncated.gz"):
        data._read_idx(truncated, 0x801)
