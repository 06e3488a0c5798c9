"""Learning-rate schedules: the factor per epoch, its effect on updates, and its limits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import neurosim
from neurosim.config import EstimatorConfig
from neurosim.core.network import build_network
from neurosim.core.schedules import lr_factor

from mnist_data import SAMPLE_OVERRIDES


def test_cosine_runs_from_full_rate_to_the_final_fraction():
    est = EstimatorConfig(lr_schedule="cosine", lr_final=0.1)
    factors = [lr_factor(est, e, 5) for e in range(1, 6)]
    assert factors[0] == 1.0 and math.isclose(factors[-1], 0.1)
    assert math.isclose(factors[2], 0.55)  # halfway: the mean of the two ends
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert [lr_factor(EstimatorConfig(), e, 5) for e in range(1, 6)] == [1.0] * 5
    assert lr_factor(est, 1, 1) == 1.0  # a single epoch runs at the full rate


@pytest.mark.parametrize("estimator", ["ep", "cep"])
def test_the_factor_scales_every_applied_update(estimator):
    # ideal synapses: the change of each parameter is linear in the rate, so half the factor
    # gives half the change (C-EP within float64 rounding: its later steps see changed weights,
    # so only the first step is exactly linear; K=1 keeps it to that step)
    config = neurosim.load_config("mnist_fc1_ep", [f"estimator.name={estimator}", "estimator.K=1",
                                                   "circuit.layers=[12, 8, 3]", "compute.dtype=float64"])
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 12, generator=gen, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 1]), 3).double()
    changes = []
    for scale in (1.0, 0.5):
        network = build_network(config, torch.device("cpu"), torch.float64)
        before = [p.detach().clone() for p in network.model.parameters()]
        network.estimator.lr_scale = scale
        network.estimator.train_step(x, y)
        changes.append([p.detach() - b for p, b in zip(network.model.parameters(), before)])
    for full, half in zip(*changes):
        assert full.abs().max() > 0
        torch.testing.assert_close(half, full / 2, rtol=1e-9, atol=1e-15)


def test_cosine_training_logs_its_factor_and_refuses_a_longer_resume(tmp_path):
    overrides = [*SAMPLE_OVERRIDES, "train.epochs=2", "data.train_subset=200", "data.test_subset=100",
                 "estimator.lr_schedule=cosine", "estimator.lr_final=0.25"]
    result = neurosim.train("mnist_fc1_ep", out=tmp_path / "run", overrides=overrides, progress=False)
    assert [r["lr_scale"] for r in result.history] == [1.0, 0.25]
    with pytest.raises(neurosim.ConfigError, match="train.epochs"):
        neurosim.train("mnist_fc1_ep", out=tmp_path / "run", resume=True, progress=False,
                       overrides=[*overrides[:1], "train.epochs=4", *overrides[2:]])


def test_schedule_errors_name_the_key():
    with pytest.raises(neurosim.ConfigError, match="estimator.lr_schedule"):
        neurosim.load_config("mnist_fc1_ep", ["estimator.lr_schedule=step"])
    with pytest.raises(neurosim.ConfigError, match="estimator.lr_final"):
        neurosim.load_config("mnist_fc1_ep", ["estimator.lr_final=2"])
    with pytest.raises(neurosim.ConfigError, match="estimator.lr_schedule"):
        neurosim.load_config("mnist_ct1_ep_brian2", ["estimator.lr_schedule=cosine"])
