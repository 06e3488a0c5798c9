"""The Backend interface: the registry, each backend's own config check, and a toy backend
written here that trains through the trainer's one loop (a new backend is one module)."""

from __future__ import annotations

import json

import pytest
import torch

import neurosim
from neurosim.backends import Backend, backend_names, get_backend, register
from neurosim.backends.base import Epoch, EpochMetrics, epoch_seed, unregister
from neurosim.backends.brian2.train import Brian2RateBackend, Brian2SpikingBackend
from neurosim.backends.torch import TorchBackend, evaluate
from neurosim.config import load_config
from neurosim.errors import ConfigError, DivergenceError

from mnist_data import SAMPLE_OVERRIDES

QUICK = [*SAMPLE_OVERRIDES, "data.train_subset=60", "data.test_subset=40", "circuit.layers=[784, 16, 10]",
         "estimator.lr=[0.05, 0.02]", "estimator.T=5", "estimator.K=2", "train.batch_size=10"]


class HalvingBackend(Backend):
    """A toy simulator: each epoch shrinks the weights towards zero by a factor drawn from the
    epoch's shuffle stream, and refuses batch sizes other than 10."""

    name = "toy-halving"
    seen: list[int] = []

    @classmethod
    def check(cls, config):
        if config.train.batch_size != 10:
            raise ConfigError("train.batch_size", config.train.batch_size, "10 for backend toy-halving")

    def run_epoch(self, epoch: Epoch) -> EpochMetrics:
        type(self).seen.append(epoch.number)
        factor = 0.5 + 0.1 * float(torch.rand((), generator=epoch.generator(0)))
        with torch.no_grad():
            for p in self.network.model.parameters():
                p.mul_(factor)
        for name, p in self.network.model.named_parameters():
            epoch.check_finite(p, f"parameter {name}", 1)
        train_error, train_loss = self.evaluate(self.train_set)
        test_error, test_loss = self.evaluate(self.test_set)
        return EpochMetrics(train_error, test_error, train_loss, test_loss, train_seconds=0.01,
                            extra={"toy_factor": round(factor, 6)})

    def evaluate(self, dataset):
        return evaluate(self.network.model, self.network.cost, dataset, self.config.estimator.T)

    def result(self):
        return {"backend": {"name": self.name}}

    def bench(self, samples):
        return {"estimator": self.config.estimator.name, "batch_size": self.config.train.batch_size,
                "samples": len(self.train_set), "samples_per_second": 1.0, "seconds_per_60k_epoch": 1.0,
                "T": 1, "K": 1, "layers": [], "device": "toy", "dtype": "float32", "threads": 1}


@pytest.fixture
def toy():
    HalvingBackend.seen = []
    register(HalvingBackend)
    yield HalvingBackend
    unregister(HalvingBackend.name)


def test_the_registry_finds_the_shipped_backends_by_name():
    assert backend_names()[:3] == ("torch", "brian2", "brian2-spiking")
    assert get_backend("torch") is TorchBackend
    assert get_backend("brian2") is Brian2RateBackend
    assert get_backend("brian2-spiking") is Brian2SpikingBackend


def test_an_unknown_backend_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError, match="torch, brian2, brian2-spiking") as info:
        get_backend("nest")
    assert info.value.key == "backend.name"
    with pytest.raises(ConfigError, match="torch, brian2, brian2-spiking") as info:
        load_config("mnist_fc1_ep", ["backend.name=nest"])
    assert info.value.key == "backend.name"


def test_each_backend_checks_its_own_configs():
    with pytest.raises(ConfigError, match="continuous for backend brian2") as info:
        load_config("mnist_fc1_bptt", ["backend.name=brian2"])
    assert info.value.key == "circuit.dynamics"  # the first thing the rate backend cannot run
    with pytest.raises(ConfigError, match="ep or cep for backend brian2-spiking") as info:
        load_config("mnist_fc1_bptt", ["backend.name=brian2-spiking"])  # the spiking backend's own check first
    assert info.value.key == "estimator.name"
    load_config("mnist_fc1_bptt", ["train.batch_size=1"])  # torch runs it


def test_epoch_seeds_are_a_function_of_seed_epoch_and_stream():
    assert epoch_seed(3, 2, 1) == epoch_seed(3, 2, 1) != epoch_seed(3, 2, 0)
    a = Epoch(2, 5, seed=3, out_dir=None).generator(1)
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=torch.Generator().manual_seed(epoch_seed(3, 2, 1))))


def test_a_backend_of_one_class_trains_through_the_one_loop(tmp_path, toy):
    with pytest.raises(ConfigError, match="10 for backend toy-halving"):
        load_config("mnist_fc1_ep", QUICK + ["backend.name=toy-halving", "train.batch_size=20"])
    overrides = QUICK + ["backend.name=toy-halving", "train.epochs=2"]
    result = neurosim.train("mnist_fc1_ep", out=tmp_path / "run", overrides=overrides, progress=False)
    assert toy.seen == [1, 2]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.pt", "config.yaml", "curves.png", "metrics.jsonl", "result.json"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert list(rows[0])[:9] == ["epoch", "train_error", "test_error", "train_loss", "test_loss", "seconds",
                                 "train_seconds", "samples_per_second", "toy_factor"]
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["backend"] == {"name": "toy-halving"} and saved["epochs"] == 2
    assert result.network is not None and result.test_error == rows[-1]["test_error"]

    # resume: the loop's checkpoints and seeds per epoch serve the toy as they serve torch
    neurosim.train("mnist_fc1_ep", out=tmp_path / "cut", overrides=QUICK + ["backend.name=toy-halving",
                                                                            "train.epochs=1"], progress=False)
    resumed = neurosim.train("mnist_fc1_ep", out=tmp_path / "cut", overrides=overrides, resume=True, progress=False)
    full = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["network"]["model"]
    cut = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["network"]["model"]
    assert all(torch.equal(full[k], cut[k]) for k in full)
    assert [r["test_error"] for r in resumed.history] == [r["test_error"] for r in result.history]

    rows = neurosim.bench("mnist_fc1_ep", estimators=["ep"], batch_sizes=[10], samples=30,
                          overrides=QUICK + ["backend.name=toy-halving"])
    assert [(r["device"], r["samples"]) for r in rows] == [("toy", 30)]


def test_the_loop_stops_a_diverging_backend(tmp_path, toy, monkeypatch):
    def explode(self, epoch):
        with torch.no_grad():
            self.network.model.weights[0].fill_(float("nan"))
        epoch.check_finite(self.network.model.weights[0], "parameter W0", 3)

    monkeypatch.setattr(HalvingBackend, "run_epoch", explode)
    with pytest.raises(DivergenceError, match="epoch 1, batch 3: parameter W0 .* no epoch had completed"):
        neurosim.train("mnist_fc1_ep", out=tmp_path / "run", overrides=QUICK + ["backend.name=toy-halving"],
                       progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
