"""Read side (read noise, DAC, ADC) and per-layer devices."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import neurosim
from neurosim.config import load_config
from neurosim.errors import ConfigError
from neurosim.hardware.read_side import LayerRead, ReadSide, quantize
from neurosim.core.network import build_network

from mnist_data import SAMPLE_OVERRIDES
BASE = {"circuit": {"layers": [8, 6, 4]}, "estimator": {"name": "cep", "lr": [0.01, 0.01], "beta": 0.2}}


def batch(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 8, generator=g)
    return x, torch.nn.functional.one_hot(torch.arange(n) % 4, 4).float()


def test_read_noise_on_outputs_has_the_statistics_of_noise_on_every_device():
    """Noise drawn per output with std sigma ||u|| is what independent per-device read noise
    gives for a = (W + E) u: same mean, same variance per output (checked over many reads)."""
    sigma, reads = 0.05, 20000
    g = torch.Generator().manual_seed(1)
    u = torch.rand(3, 40, generator=g, dtype=torch.float64)
    w = torch.randn(6, 40, generator=g, dtype=torch.float64) * 0.1
    exact = u @ w.t()
    per_device = torch.stack([u @ (w + sigma * torch.randn(w.shape, generator=g, dtype=torch.float64)).t()
                              for _ in range(2000)])
    side = ReadSide([LayerRead(noise_std=sigma), LayerRead()], 0.0, 1.0, torch.Generator().manual_seed(2))
    ours = torch.stack([side.pre_activation(exact.clone(), 0, u, None, 1.0, 0.0) for _ in range(reads)])
    expected_std = sigma * u.norm(dim=1, keepdim=True).expand_as(exact)
    for draws, n in ((ours, reads), (per_device, 2000)):
        assert torch.allclose(draws.mean(0), exact, atol=5 * float(expected_std.max()) / math.sqrt(n))
        assert torch.allclose(draws.std(0), expected_std, rtol=6 / math.sqrt(n))


def test_feedback_array_noise_adds_in_variance_and_gain_scales_it():
    side = ReadSide([LayerRead(noise_std=0.03), LayerRead(noise_std=0.04)], 0.0, 1.0, torch.Generator().manual_seed(0))
    below, above = torch.ones(1, 9, dtype=torch.float64), torch.ones(1, 16, dtype=torch.float64)
    draws = torch.stack([side.pre_activation(torch.zeros(1, 50000, dtype=torch.float64), 0, below, above, 4.0, 0.0)])
    # sqrt(0.03^2 * 9 + 0.04^2 * 16) = sqrt(0.0081 + 0.0256), times the gain 4
    assert float(draws.std()) == pytest.approx(4 * math.sqrt(0.0081 + 0.0256), rel=0.02)


def test_converters_give_exactly_their_levels_and_clip():
    u = torch.linspace(-0.5, 1.5, 10001, dtype=torch.float64)
    q = quantize(u, 0.0, 1.0, 3)
    assert torch.unique(q).numel() == 8 and float(q.min()) == 0.0 and float(q.max()) == 1.0
    assert float((q - u.clamp(0, 1)).abs().max()) <= 0.5 / 7 + 1e-12
    side = ReadSide([LayerRead(adc_bits=4, adc_range=2.0)], 0.0, 1.0, torch.Generator())
    pre = side.pre_activation(u.view(1, -1) * 10 * 4 - 2, 0, None, None, 4.0, -2.0)  # a = 10 u
    a = (pre + 2) / 4
    assert torch.unique(a).numel() == 16 and float(a.max()) == 2.0 and float(a.min()) == -2.0


def test_dac_and_adc_reach_the_dynamics_and_many_bits_read_almost_exactly():
    x, y = batch()
    exact = build_network(load_config(BASE))
    coarse = build_network(load_config({**BASE, "synapses": {"device": "ideal", "params": {"dac_bits": 2, "adc_bits": 3}}}))
    fine = build_network(load_config({**BASE, "synapses": {"device": "ideal", "params": {"dac_bits": 20, "adc_bits": 20,
                                                                                         "adc_range": 50.0}}}))
    states = []
    torch.set_grad_enabled(False)
    for net in (exact, coarse, fine):
        model = net.model
        states.append(neurosim.core.phases.relax(model, model.prepare(x), model.init_state(5), 20))
    torch.set_grad_enabled(True)
    assert float((states[1][0] - states[0][0]).abs().max()) > 1e-2
    assert float((states[2][0] - states[0][0]).abs().max()) < 1e-4
    assert torch.unique(coarse.model.read_side.dac(states[1][0], 1)).numel() <= 4


def test_per_layer_devices_put_each_layer_on_its_own_device():
    # a rate at which W_2's devices surely get pulses (at 0.01 five batches expect 0.7 pulses in all)
    config = load_config({**BASE, "estimator": {**BASE["estimator"], "lr": [0.01, 0.1]},
                          "synapses": {"device": "ideal", "layers": [{}, {"device": "levels_16"}]}})
    net = build_network(config)
    arrays = net.synapses.arrays
    assert list(arrays) == [id(net.model.weights[1])]  # W_1 ideal, W_2 on devices
    x, y = batch()
    for _ in range(5):
        net.estimator.train_step(x, y)
    w2 = net.model.weights[1].detach()
    assert float(w2.abs().max()) <= 0.6 + 1e-6
    report = net.synapses.report()
    assert report["pulses"] == int(arrays[id(net.model.weights[1])].pulses_up.sum()
                                   + arrays[id(net.model.weights[1])].pulses_down.sum()) > 0
    # Layer entries inherit the section's device and params and override them.
    mixed = load_config({**BASE, "synapses": {"device": "levels_64", "params": {"dw_min_std": 0.1},
                                              "layers": [{"params": {"states": 8}}, {}]}})
    assert mixed.synapses.layer(0) == ("levels_64", {"dw_min_std": 0.1, "states": 8})
    assert mixed.synapses.layer(1) == ("levels_64", {"dw_min_std": 0.1})


def test_read_side_and_per_layer_errors_name_the_key():
    with pytest.raises(ConfigError, match="synapses.layers"):
        load_config({**BASE, "synapses": {"layers": [{}]}})
    with pytest.raises(ConfigError, match=r"synapses.layers\[1\].params.states"):
        load_config({**BASE, "synapses": {"layers": [{}, {"device": "levels_16", "params": {"states": -1}}]}})
    with pytest.raises(ConfigError, match="dac_bits"):
        load_config({**BASE, "synapses": {"params": {"dac_bits": 0}}})
    energy = load_config({"circuit": {"layers": [8, 6, 4], "dynamics": "energy", "eps": 0.5},
                          "estimator": {"lr": [0.01, 0.01]}, "synapses": {"params": {"read_noise_std": 0.01}}})
    with pytest.raises(ConfigError, match="read side"):
        build_network(energy)


def test_drift_decays_weights_as_a_power_law_and_compensation_helps(tmp_path):
    from neurosim.studies.drift import drift_study

    overrides = [*SAMPLE_OVERRIDES, "data.train_subset=1000", "data.test_subset=300", "train.batch_size=50",
                 "train.epochs=2", "estimator.T=15", "estimator.K=5"]
    run = tmp_path / "run"
    neurosim.train("mnist_fc1_ep", out=run, overrides=overrides, progress=False)
    with pytest.raises(ConfigError, match="drift_nu"):
        drift_study(run, [1.0, 10.0])  # an ideal run has no drift unless asked for
    times = [1.0, 1e3, 1e9]
    plain = drift_study(run, times, overrides=["synapses.params.drift_nu=0.1"])
    # nu = 0.1 at 1e9 s: every weight x 1e-0.9 ~ 0.13; the network's outputs collapse
    errors = [r["test_error"] for r in plain["rows"]]
    assert errors[0] < 0.35 and errors[-1] > errors[0] + 0.2
    # a global (mean) rescaling undoes a drift with no device-to-device spread exactly
    fixed = drift_study(run, times, overrides=["synapses.params.drift_nu=0.1"], compensate=True)
    assert [r["test_error"] for r in fixed["rows"]] == pytest.approx([errors[0]] * 3, abs=1e-9)
    assert (run / "drift.png").is_file() and (run / "drift_compensated.json").is_file()
    # the checkpoint is untouched: the same evaluation again gives the same numbers (here through the CLI)
    from neurosim.cli import main

    assert main(["drift", str(run), "--times", "1,1000,1e9", "--set", "synapses.params.drift_nu=0.1",
                 "--out", str(tmp_path / "cli")]) == 0
    assert neurosim_json(tmp_path / "cli" / "drift.json")["rows"] == plain["rows"]
    assert main(["drift", str(run), "--times", "soon"]) == 2


def neurosim_json(path):
    import json

    return json.loads(path.read_text())
