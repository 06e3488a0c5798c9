"""Device models on the spiking backend's synapses (``brian2_devices``), numpy target.

The Brian2 write code against ``DeviceArray.apply`` (same devices, deterministic rounding:
1e-12), stochastic rounding and cycle-to-cycle noise statistics, pulses of spike-triggered
writes in both forms of the rule, per-run seeds, and the configs it refuses.
"""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("brian2")

import neurosim
from neurosim.backends.brian2 import devices as bd
from neurosim.backends.brian2.rate import Schedule
from neurosim.backends.brian2.spiking import Brian2SpikingNetwork, SpikingLayout
from neurosim.backends.brian2.train import torch_params
from neurosim.hardware.devices import DeviceArray, DeviceConfig
from neurosim.errors import ConfigError

from mnist_data import SAMPLE


def _brian2_write(config: DeviceConfig, array: DeviceArray, w0: np.ndarray, req: np.ndarray, seed: int = 0):
    """Apply the write code once to every synapse of an all-to-all [n_post, n_pre] block."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    n_post, n_pre = w0.shape
    pre, post = b2.NeuronGroup(n_pre, "v : 1"), b2.NeuronGroup(n_post, "v : 1")
    syn = b2.Synapses(pre, post, "w : 1\nreq : 1\n" + bd.variables(config))
    i_pre, j_post = (a.ravel() for a in np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij"))
    syn.connect(i=i_pre, j=j_post)
    syn.w[:] = w0[j_post, i_pre]
    syn.req[:] = req[j_post, i_pre]
    for var, values in bd.per_device_values(array, i_pre, j_post).items():
        getattr(syn, var)[:] = values
    syn.run_regularly(bd.write_code(config, "req"), dt=b2.defaultclock.dt)
    b2.seed(seed)
    net = b2.Network(pre, post, syn)
    net.run(b2.defaultclock.dt, namespace=bd.functions())
    out = np.zeros_like(w0)
    up, down = np.zeros_like(w0), np.zeros_like(w0)
    out[j_post, i_pre] = syn.w[:]
    up[j_post, i_pre] = syn.pulses_up[:]
    down[j_post, i_pre] = syn.pulses_down[:]
    return out, up, down


SPREADS = {"dw_min_dtod": 0.3, "up_down_dtod": 0.05, "w_bounds_dtod": 0.1, "stuck_fraction": 0.1}


@pytest.mark.parametrize("response,extra", [
    ("constant", SPREADS),
    ("soft_bounds", SPREADS),
    ("linear_step", {"gamma_up": 0.5, "gamma_down": 0.3, **SPREADS}),
    ("nonlinear", {"states": 64, "a_up": 0.4, "a_down": 0.8, **SPREADS}),
    ("linear_step", {"gamma_up": 0.5, "gamma_down": 0.3, "dw_min_dtod": 0.3}),  # only the steps vary
    ("constant", {"w_max_dtod": 0.2, "stuck_fraction": 0.1}),  # only w_hi and movable vary
    ("constant", {}),  # uniform devices: their parameters are constants in the code
    ("linear_step", {"gamma_up": 0.5, "gamma_down": 0.3}),
    ("nonlinear", {"states": 64, "a_up": 0.4, "a_down": 0.8}),
])
def test_brian2_writes_equal_the_torch_device_array(response, extra):
    """Same devices (with or without d2d spreads of step, asymmetry and bounds and stuck devices),
    same requests from -6 to +6 pulses, deterministic rounding: the same weights and pulse counts."""
    config = DeviceConfig(response=response, rounding="deterministic", dw_min=0.02, up_down=0.1, **extra)
    config.validate()
    gen = torch.Generator().manual_seed(1)
    weight = (torch.rand(9, 13, generator=gen, dtype=torch.float64) - 0.5) * 0.9
    array = DeviceArray.create(config, weight, 0)
    w0 = weight.numpy().copy()
    req = ((torch.rand(9, 13, generator=gen, dtype=torch.float64) - 0.5) * 12 * config.step).numpy()
    got, up, down = _brian2_write(config, array, w0, req)
    array.apply(weight, torch.from_numpy(req), None)
    assert np.abs(got - w0).max() > 0.01  # the devices moved
    np.testing.assert_allclose(got, weight.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(up, array.pulses_up.numpy())
    np.testing.assert_array_equal(down, array.pulses_down.numpy())
    assert (up + down)[array.stuck.numpy()].sum() == 0
    varying = {"dw_up": "dw_min_dtod" in extra, "dw_down": "dw_min_dtod" in extra,
               "w_lo": "w_bounds_dtod" in extra, "w_hi": "w_bounds_dtod" in extra or "w_max_dtod" in extra,
               "movable": "stuck_fraction" in extra}
    assert bd.per_device(config) == tuple(name for name, v in varying.items() if v)
    for name, v in varying.items():  # the others are constants in the code, not synapse variables
        assert (f"{name} : 1" in bd.variables(config)) == v


def test_stochastic_rounding_and_cycle_to_cycle_noise_statistics():
    """40,000 constant devices asked for 0.3 pulse each: a pulse with probability 0.3 (the mean
    change is the request, unbiased); asked for 4 pulses with 20% c2c noise: the change has
    mean 4 dw_min and standard deviation 0.2 dw_min sqrt(4)."""
    config = DeviceConfig(response="constant", dw_min=0.01, w_min=-1.0, w_max=1.0)
    weight = torch.zeros(200, 200, dtype=torch.float64)
    array = DeviceArray.create(config, weight, 0)
    got, up, _ = _brian2_write(config, array, weight.numpy(), np.full((200, 200), 0.3 * config.step), seed=3)
    assert abs(up.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / up.size)
    np.testing.assert_allclose(got, up * config.step, atol=1e-15)

    noisy = DeviceConfig(response="constant", dw_min=0.01, w_min=-1.0, w_max=1.0, dw_min_std=0.2,
                         rounding="deterministic")
    array = DeviceArray.create(noisy, weight, 0)
    got, up, _ = _brian2_write(noisy, array, weight.numpy(), np.full((200, 200), 4 * noisy.step), seed=4)
    steps = got / noisy.step
    assert np.all(up == 4)
    assert abs(steps.mean() - 4) < 4 * 0.4 / np.sqrt(steps.size)
    assert abs(steps.std() - 0.4) < 0.02


SIZES = (64, 16, 10)


def _digits(n=4):
    from neurosim.data import small_digits

    x, y = small_digits(n=n, dataset=SAMPLE)
    return x.numpy(), y.numpy()


def _spiking_with_device(rule: str, device: DeviceConfig, inputs: str = "analog"):
    from neurosim.config import load_config
    from neurosim.core.network import build_network

    config = load_config({"circuit": {"dynamics": "continuous", "layers": list(SIZES), "activation": "hard_sigmoid",
                                      "eps": 0.1, "clamp": True},
                          "estimator": {"name": rule, "T": 40, "K": 30, "beta": 1.0, "lr": [0.5, 0.5]},
                          "train": {"batch_size": 1}, "compute": {"dtype": "float64"}})
    network = build_network(config, "cpu", torch.float64)
    arrays = [DeviceArray.create(device, w.data, n) for n, w in enumerate(network.model.weights)]
    import json
    from dataclasses import asdict

    text = json.dumps(asdict(device), sort_keys=True)
    layout = SpikingLayout(SIZES, "hard_sigmoid", 0.1, 10.0, True, 40, 30, rule, 4, 4, r_max_hz=1000.0, window=20,
                           inputs=inputs, devices=(text, text))
    return Brian2SpikingNetwork(layout, torch_params(network), [0.5, 0.5], "numpy", devices=arrays), arrays


@pytest.mark.parametrize("rule,inputs", [("ep", "analog"), ("cep", "analog"), ("cep", "poisson")])
def test_spike_triggered_writes_are_whole_pulses(rule, inputs):
    """Four examples with learning on a constant device (256 states over [-4, 4]: no weight reaches
    a bound): every weight moves by a whole number of steps, (up - down) pulses as the counters
    (now in the torch arrays) say, and the rule did program pulses (C-EP: at spikes, and the
    stored decay at the example's end)."""
    device = DeviceConfig(response="constant", states=256, w_min=-4.0, w_max=4.0)
    b2, arrays = _spiking_with_device(rule, device, inputs)
    before = [w.copy() for w, _ in b2.params]
    x, y = _digits()
    b2.run(Schedule(x, y, np.arange(4), np.full(4, 1.0), np.ones(4)))
    for (w, _), w0, array in zip(b2.params, before, arrays):
        net_pulses = (array.pulses_up - array.pulses_down).numpy()
        assert array.pulses_up.sum() > 0 and array.pulses_down.sum() > 0
        assert np.abs(w).max() < 4 - device.step
        np.testing.assert_allclose((w - w0) / device.step, net_pulses, atol=1e-9)


SPREAD_DEVICE = DeviceConfig(response="constant", states=256, w_min=-4.0, w_max=4.0, **SPREADS)


def _assert_each_device_moved_by_its_own_steps(b2, before, arrays):
    """Constant response: every device away from its bounds moved by its own steps times its
    pulses (dw_up up - dw_down down, per-device steps of the d2d spreads), stuck devices not at all."""
    for (w, _), w0, array in zip(b2.params, before, arrays):
        up, down = array.pulses_up.numpy(), array.pulses_down.numpy()
        assert up.sum() > 0 and down.sum() > 0
        stuck = array.stuck.numpy()
        lo, hi = array.w_min.numpy(), array.w_max.numpy()
        inside = (w > lo) & (w < hi) & (w0 > lo) & (w0 < hi) & ~stuck  # never clipped (stuck ones sit at one)
        assert inside.mean() > 0.8
        moved = array.dw_up.numpy() * up - array.dw_down.numpy() * down
        np.testing.assert_allclose((w - w0)[inside], moved[inside], rtol=0, atol=1e-9)
        assert stuck.any() and (up + down)[stuck].sum() == 0 and np.array_equal(w[stuck], w0[stuck])


@pytest.mark.parametrize("rule", ["ep", "cep"])
def test_spike_triggered_writes_with_spreads_move_each_device_by_its_own_steps(rule):
    """Devices with d2d spreads of step, asymmetry and bounds and stuck devices, four examples of
    learning: each device's change is its own steps times its pulses."""
    b2, arrays = _spiking_with_device(rule, SPREAD_DEVICE)
    before = [w.copy() for w, _ in b2.params]
    x, y = _digits()
    b2.run(Schedule(x, y, np.arange(4), np.full(4, 1.0), np.ones(4)))
    _assert_each_device_moved_by_its_own_steps(b2, before, arrays)


@pytest.mark.skipif(os.environ.get("NEUROSIM_TEST_STANDALONE") != "1" or shutil.which("g++") is None,
                    reason="compiles a C++ project (about 30 s); set NEUROSIM_TEST_STANDALONE=1 to run")
def test_standalone_writes_with_spreads_move_each_device_by_its_own_steps(tmp_path):
    """cpp_standalone, C-EP (writes at spikes, through the synaptic pathways, and at the example's
    end): the gated per-device reads (``devices.gates``) give each device its own steps."""
    numpy_net, arrays = _spiking_with_device("cep", SPREAD_DEVICE)
    b2 = Brian2SpikingNetwork(numpy_net.layout, numpy_net.params, [0.5, 0.5], "cpp_standalone",
                              build_dir=tmp_path / "build", devices=arrays)
    before = [w.copy() for w, _ in b2.params]
    x, y = _digits()
    b2.run(Schedule(x, y, np.arange(4), np.full(4, 1.0), np.ones(4)))
    _assert_each_device_moved_by_its_own_steps(b2, before, arrays)


def test_runs_draw_new_random_numbers_and_a_seed_repeats_one():
    device = DeviceConfig(response="constant", states=256, w_min=-1.0, w_max=1.0)
    x, y = _digits()
    outputs = []
    for seed in (5, 5, 6):
        b2, _ = _spiking_with_device("ep", device)
        b2.run_seed = seed
        b2.run(Schedule(x, y, np.arange(4), np.full(4, 1.0), np.ones(4)))
        outputs.append(b2.params[0][0])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


def _train_config(device: str, **params):
    return {"name": "spiking_device", "seed": 0,
            "circuit": {"dynamics": "continuous", "layers": [784, 16, 10], "activation": "hard_sigmoid",
                        "eps": 0.1, "clamp": True},
            "estimator": {"name": "ep", "T": 40, "K": 20, "beta": 1.0, "lr": [0.1, 0.05]},
            "data": {"name": SAMPLE, "train_subset": 40, "test_subset": 20, "download": False},
            "train": {"batch_size": 1, "epochs": 1}, "compute": {"dtype": "float64"},
            "synapses": {"device": device, "params": params},
            "backend": {"name": "brian2-spiking", "target": "numpy", "r_max_hz": 1000.0, "window": 20}}


def test_training_on_a_device_reports_its_pulses(tmp_path):
    run = neurosim.train(_train_config("levels_64"), out=tmp_path / "run", progress=False)
    row = run.history[0]
    assert row["pulses"] > 0 and row["pulses_up"] + row["pulses_down"] == row["pulses"]
    assert run.network.synapses.report()["pulses"] == row["pulses"]


@pytest.mark.parametrize("device,params,key", [
    ("aihwkit_pcm", {}, "synapses.device (aihwkit_pcm).mapping"),
    ("aihwkit_reram_es", {}, "synapses.device (aihwkit_reram_es).response"),
    ("levels_64", {"write_noise_std": 1.0}, "synapses.device (levels_64).write_noise_std"),
    ("levels_64", {"read_noise_std": 0.01}, "synapses.device (levels_64).read_noise_std"),
])
def test_devices_without_an_event_form_are_refused(tmp_path, device, params, key):
    with pytest.raises(ConfigError) as info:
        neurosim.train(_train_config(device, **params), out=tmp_path / "bad", progress=False)
    assert info.value.key == key
    assert not (tmp_path / "bad").exists()  # refused before the run folder was made


def test_devices_on_the_cython_target_are_refused(tmp_path):
    config = _train_config("levels_64")
    config["backend"] = {**config["backend"], "target": "cython"}
    with pytest.raises(ConfigError, match="backend.target"):
        neurosim.train(config, out=tmp_path / "bad", progress=False)


def test_the_rate_backend_still_refuses_devices():
    config = _train_config("levels_64")
    config["backend"] = {"name": "brian2", "target": "numpy"}
    with pytest.raises(ConfigError, match="synapses.device"):
        neurosim.load_config(config)


@pytest.mark.skipif(os.environ.get("NEUROSIM_TEST_STANDALONE") != "1" or shutil.which("g++") is None,
                    reason="compiles a C++ project (about 30 s); set NEUROSIM_TEST_STANDALONE=1 to run")
def test_standalone_device_writes_and_seeds(tmp_path):
    """cpp_standalone: whole pulses as on the numpy target, the run seed reaches the binary, and
    the binary's progress reaches the callback (at least its final line)."""
    device = DeviceConfig(response="constant", states=256, w_min=-4.0, w_max=4.0)
    x, y = _digits()
    results = []
    for seed in (1, 1, 2):
        numpy_net, arrays = _spiking_with_device("cep", device)
        b2 = Brian2SpikingNetwork(numpy_net.layout, numpy_net.params, [0.5, 0.5], "cpp_standalone",
                                  build_dir=tmp_path / "build", devices=arrays)
        before = [w.copy() for w, _ in b2.params]
        b2.run_seed = seed
        seen = []
        b2.on_progress = lambda fraction, seconds: seen.append(fraction)
        b2.run(Schedule(x, y, np.arange(4), np.full(4, 1.0), np.ones(4)))
        assert seen and seen[-1] == 1.0
        for (w, _), w0, array in zip(b2.params, before, arrays):
            net_pulses = (array.pulses_up - array.pulses_down).numpy()
            np.testing.assert_allclose((w - w0) / device.step, net_pulses, atol=1e-9)
        results.append(b2.params[1][0])
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.array_equal(results[0], results[2])


def test_a_device_run_resumes_to_the_same_weights_and_pulses(tmp_path):
    """Two epochs in one go, or one and then a resumed second: the same weights and pulse counters
    (each epoch's random numbers come from config.seed and the epoch, not from a run counter)."""
    config = {**_train_config("levels_64"), "train": {"batch_size": 1, "epochs": 2}}
    full = neurosim.train(config, out=tmp_path / "full", progress=False)
    neurosim.train({**config, "train": {"batch_size": 1, "epochs": 1}}, out=tmp_path / "cut", progress=False)
    resumed = neurosim.train(config, out=tmp_path / "cut", resume=True, progress=False)
    for a, b in zip(full.network.model.parameters(), resumed.network.model.parameters()):
        assert torch.equal(a, b)
    assert full.history[-1]["pulses"] == resumed.history[-1]["pulses"] > 0
    assert [r["test_error"] for r in full.history] == [r["test_error"] for r in resumed.history]


@pytest.mark.skipif(os.environ.get("NEUROSIM_TEST_STANDALONE") != "1" or shutil.which("g++") is None,
                    reason="compiles a C++ project (about 30 s); set NEUROSIM_TEST_STANDALONE=1 to run")
def test_standalone_write_code_equals_the_torch_device_array(tmp_path):
    """The C++ forms of the write code's functions (closed-form power, NeuroSim curve, the gated
    reads of the per-device parameters) against torch, every response in one compiled project
    (deterministic rounding, no c2c), and the c2c noise function's statistics."""
    import brian2 as b2

    configs = [DeviceConfig(response=r, rounding="deterministic", dw_min=0.02, up_down=0.1, dw_min_dtod=0.3,
                            w_bounds_dtod=0.1, stuck_fraction=0.1, **extra)
               for r, extra in [("constant", {}), ("soft_bounds", {}), ("linear_step", {"gamma_up": 0.5}),
                                ("nonlinear", {"states": 64, "a_up": 0.4, "a_down": 0.8})]]
    noisy = DeviceConfig(response="constant", dw_min=0.01, w_min=-1.0, w_max=1.0, dw_min_std=0.2,
                         rounding="deterministic")
    gen = torch.Generator().manual_seed(2)
    b2.set_device("cpp_standalone", directory=str(tmp_path / "project"), build_on_run=False)
    b2.device.reinit()  # another test of this process may have built a project
    b2.device.activate(directory=str(tmp_path / "project"), build_on_run=False)
    try:
        b2.prefs.devices.cpp_standalone.openmp_threads = 0
        pre, post = b2.NeuronGroup(13, "v : 1"), b2.NeuronGroup(9, "v : 1")
        i_pre, j_post = (a.ravel() for a in np.meshgrid(np.arange(13), np.arange(9), indexing="ij"))
        cases, objects, namespace = [], [pre, post], bd.functions()
        for n, config in enumerate([*configs, noisy]):
            weight = (torch.rand(9, 13, generator=gen, dtype=torch.float64) - 0.5) * (0.0 if config is noisy else 0.9)
            array = DeviceArray.create(config, weight, n)
            req = ((torch.rand(9, 13, generator=gen, dtype=torch.float64) - 0.5) * 12 * config.step)
            if config is noisy:
                req = torch.full((9, 13), 4 * config.step, dtype=torch.float64)
            syn = b2.Synapses(pre, post, "w : 1\nreq : 1\n" + bd.variables(config), name=f"dev{n}")
            syn.connect(i=i_pre, j=j_post)
            syn.w = weight.numpy()[j_post, i_pre]
            syn.req = req.numpy()[j_post, i_pre]
            for var, values in bd.per_device_values(array, i_pre, j_post).items():
                setattr(syn, var, values)
            code = bd.write_code(config, "req", syn.name)  # gated per-device reads, as the spiking network's
            if not bd.uniform(config):  # read through the gates, not as synapse variables
                assert f"dev_{syn.name}_w_lo(dev_n)" in code
                assert not re.search(r"\b(dw_up|dw_down|w_lo|w_hi|movable)\b", code)
            namespace.update(bd.gates(config, syn.name))
            syn.run_regularly(code, dt=b2.defaultclock.dt)
            objects.append(syn)
            cases.append((config, array, weight, req, syn))
        b2.Network(*objects).run(b2.defaultclock.dt, namespace=namespace)
        b2.device.build(directory=str(tmp_path / "project"), compile=True, run=True)
        for config, array, weight, req, syn in cases:
            got = np.zeros((9, 13))
            got[j_post, i_pre] = syn.w[:]
            if config is noisy:
                steps = got / config.step
                assert abs(steps.mean() - 4) < 0.15 and 0.2 < steps.std() < 0.6  # sd 0.4 over 117 devices
                continue
            array.apply(weight, req, None)
            np.testing.assert_allclose(got, weight.numpy(), rtol=0, atol=1e-12)
            up = np.zeros((9, 13), dtype=np.int64)
            up[j_post, i_pre] = syn.pulses_up[:]
            np.testing.assert_array_equal(up, array.pulses_up.numpy())  # stuck devices: none
    finally:
        b2.set_device("runtime")
        b2.device.reinit()
