"""Every response law held to one contract (``neurosim.hardware.responses``).

A new law is a module plus its line in the registry; adding its name and a typical parameter set
to ``LAW_PARAMS`` below runs it through the same checks: the registry knows it, its parameters are
DeviceConfig fields, up pulses never lower a device and down pulses never raise it, a device
never leaves its bounds, n pulses at once equal n single pulses, and its Brian2 code (where it
has one) computes what its torch response computes. Presets are read once per config.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings

import numpy as np
import pytest
import torch

from neurosim.config import load_config
from neurosim.errors import ConfigError
from neurosim.hardware import records
from neurosim.hardware.devices import DeviceArray, DeviceConfig, device_config
from neurosim.hardware.responses import LAWS, law, names, parameter_classes

LAW_PARAMS = {
    "constant": {"up_down": 0.1},
    "soft_bounds": {"up_down": 0.1},
    "linear_step": {"gamma_up": 0.6, "gamma_down": 0.3},
    "exp_step": {"exp_A_up": 0.3, "exp_A_down": 0.2, "exp_gamma_up": 1.5, "exp_gamma_down": 2.0,
                 "exp_a": 0.4, "exp_b": 0.1},
    "nonlinear": {"states": 50, "a_up": 0.3, "a_down": 0.5},
    "measured": {"measured_up": [1.6, 1.2, 0.5, 0.1], "measured_down": [0.2, 0.8, 1.0, 1.4]},
}
"""A typical parameter set per law (w in [-1, 1], dw_min 0.02)."""


def config_of(response: str, **extra) -> DeviceConfig:
    config = DeviceConfig(**{"response": response, "w_min": -1.0, "w_max": 1.0, "dw_min": 0.02,
                             "rounding": "deterministic", **LAW_PARAMS[response], **extra})
    config.validate()
    return config


def states(n=41):
    """Device states across the range, and the nominal per-device parameters for each."""
    w = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    ones = torch.ones_like(w)
    return w, ones


def test_the_registry_knows_every_law_and_lists_them_for_an_unknown_name():
    assert names() == ("constant", "soft_bounds", "linear_step", "exp_step", "nonlinear", "measured")
    assert set(LAW_PARAMS) == set(LAWS)  # a new law gets its parameters here, and so every test below
    for name, item in LAWS.items():
        assert item.name == name and law(name) is item
    with pytest.raises(ConfigError, match="constant, soft_bounds, linear_step, exp_step, nonlinear, measured") as info:
        law("quadratic", "device.response")
    assert info.value.key == "device.response"
    with pytest.raises(ConfigError, match="synapses.response"):
        DeviceConfig(response="quadratic").validate()


def test_every_laws_parameters_are_documented_flat_device_fields():
    fields = {f.name for f in dataclasses.fields(DeviceConfig)}
    for cls in parameter_classes():
        own = {f.name for f in dataclasses.fields(cls)}
        assert own <= fields and own
        assert '"""' in __import__("inspect").getsource(cls)  # the catalog reads each field's docstring
    # presets keep their flat keys: a law's parameter is set like any other field
    assert device_config("levels_64", {"gamma_up": 0.5}).gamma_up == 0.5


@pytest.mark.parametrize("response", list(LAW_PARAMS))
def test_up_pulses_raise_down_pulses_lower_and_bounds_hold(response):
    config = config_of(response)
    item = config.law
    w, ones = states()
    lo, hi = -ones, ones
    for up_flag in (True, False):
        up = torch.full_like(w, up_flag, dtype=torch.bool)
        for n in (1.0, 3.0, 200.0):
            change = item.change(config, w, torch.full_like(w, n), up, 0.022 * ones, 0.018 * ones, lo, hi)
            assert torch.isfinite(change).all()
            assert bool((change >= -1e-15).all() if up_flag else (change <= 1e-15).all())
            new = torch.minimum(torch.maximum(w + change, lo), hi)
            assert bool(((new >= -1) & (new <= 1)).all())
            # more pulses move a device at least as far (monotone in n)
            more = item.change(config, w, torch.full_like(w, n + 1), up, 0.022 * ones, 0.018 * ones, lo, hi)
            assert bool((more.abs() >= change.abs() - 1e-12).all())


@pytest.mark.parametrize("response", list(LAW_PARAMS))
def test_n_pulses_at_once_equal_n_single_pulses(response):
    """Closed forms (and exp_step's pulse-by-pulse loop) give the same device after n pulses as
    n single pulses, through the array (rounding, per-device parameters, clipping)."""
    config = config_of(response, dw_min_dtod=0.2, up_down_dtod=0.05)
    w1 = torch.linspace(-0.9, 0.9, 30, dtype=torch.float64).reshape(5, 6)
    w2 = w1.clone()
    a1, a2 = DeviceArray.create(config, w1, 0), DeviceArray.create(config, w2, 0)
    g = torch.Generator().manual_seed(0)
    for up, n in ((True, 7), (False, 5), (True, 60)):
        step = (1 if up else -1) * config.step
        a1.apply(w1, torch.full_like(w1, n * step), g)
        for _ in range(n):
            a2.apply(w2, torch.full_like(w2, step), g)
        torch.testing.assert_close(w1, w2, rtol=0, atol=1e-12)
    assert torch.equal(a1.pulses_up, a2.pulses_up) and torch.equal(a1.pulses_down, a2.pulses_down)


@pytest.mark.parametrize("response", list(LAW_PARAMS))
def test_respond_without_noise_is_the_noise_free_change(response):
    config = config_of(response)
    w, ones = states()
    n, up = torch.full_like(w, 4.0), w < 0.2
    args = (w, n, up, 0.02 * ones, 0.02 * ones, -ones, ones)
    torch.testing.assert_close(config.law.respond(config, *args, torch.Generator().manual_seed(0)),
                               w + config.law.change(config, *args), rtol=0, atol=1e-14)


@pytest.mark.parametrize("response", list(LAW_PARAMS))
@pytest.mark.parametrize("direction", [True, False])
def test_a_write_in_one_direction_equals_the_same_devices_in_a_mixed_write(response, direction):
    """Laws may take a shortcut when every device of a write moves the same way (a SET-only pair's
    devices always do): those devices must end as they would in a write of both directions."""
    config = config_of(response)
    w, ones = states()
    n = torch.full_like(w, 3.0)
    mixed = torch.arange(w.numel()) % 2 == 0  # up for even devices, down for odd ones
    together = config.law.change(config, w, n, mixed, 0.02 * ones, 0.03 * ones, -ones, ones)
    same = (mixed == direction).nonzero().squeeze(1)
    alone = config.law.change(config, w[same], n[same], torch.full(same.shape, direction),
                              0.02 * ones[same], 0.03 * ones[same], -ones[same], ones[same])
    torch.testing.assert_close(alone, together[same], rtol=0, atol=1e-14)


def _eval_abstract_code(lines: list[str], namespace: dict) -> dict:
    """Brian2 abstract code of the form ``name = expression``, one a line, evaluated with numpy."""
    for line in lines:
        target, expression = (part.strip() for part in line.split("=", 1))
        assert re.fullmatch(r"[a-z_]+", target), line
        namespace[target] = eval(expression, {"__builtins__": {}}, namespace)
    return namespace


@pytest.mark.parametrize("response", list(LAW_PARAMS))
def test_brian2_code_computes_the_torch_response(response):
    """The spiking backend's code of a law (``brian2_update`` and its functions' numpy forms)
    equals its torch closed form on states across the range, up and down, n = 0..9 pulses."""
    config = config_of(response)
    item = config.law
    code = item.brian2_update(config)
    if item.brian2_refusal:
        assert code is None and item.pulse_by_pulse
        return
    w0, ones = states()
    rng = np.random.default_rng(0)
    n = rng.integers(0, 10, w0.numel()).astype(np.float64)
    up = rng.random(w0.numel()) < 0.5
    dw_up, dw_down = 0.02 * (1 + rng.random(w0.numel()) * 0.2), 0.02 * (1 - rng.random(w0.numel()) * 0.2)
    namespace = {"w": w0.numpy().copy(), "dev_n": n, "dev_up": up.astype(np.float64), "dw_up": dw_up,
                 "dw_down": dw_down, "w_lo": -np.ones_like(n), "w_hi": np.ones_like(n), "clip": np.clip,
                 **{f.name: f.python for f in item.brian2_functions()}}
    brian2 = _eval_abstract_code(code, namespace)["dev_new"]
    t = torch.from_numpy
    torch_new = w0 + item.change(config, w0, t(n), t(up), t(dw_up), t(dw_down), -ones, ones)
    moved = n > 0  # the write code keeps w where no pulse fires; torch runs only where one does
    np.testing.assert_allclose(brian2[moved], torch_new.numpy()[moved], rtol=0, atol=1e-12)


def test_a_config_reads_each_preset_once(monkeypatch):
    """Config validation loads the records; network assembly (and the spiking backend's check)
    reuse them: the preset file is parsed once."""
    from neurosim.core.network import build_network

    records.clear_cache()
    parsed = []
    real = records.load_yaml
    monkeypatch.setattr(records, "load_yaml", lambda text: parsed.append(text) or real(text))
    config = load_config({"circuit": {"layers": [8, 6, 4]},
                          "synapses": {"device": "levels_64", "params": {"dw_min_std": 0.1}}})
    net = build_network(config)
    assert len(parsed) == 1
    assert [c.dw_min_std for c in net.synapses.configs] == [0.1, 0.1]
    # each call hands out its own copy: editing one does not change the cached record
    first = config.synapses.layer_device(0)
    first.dw_min_std = 0.5
    assert config.synapses.layer_device(0).dw_min_std == 0.1 and len(parsed) == 1


def test_an_edited_preset_file_is_read_again(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("response: constant\nstates: 64\n")
    assert device_config(str(path)).states == 64
    path.write_text("response: constant\nstates: 128\n")
    assert device_config(str(path)).states == 128


def test_the_old_import_path_still_works():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from neurosim.device_models import DeviceArray as OldArray, DeviceConfig as OldConfig, device_config as old
    assert OldArray is DeviceArray and OldConfig is DeviceConfig and old is device_config
    assert math.isclose(old("levels_64").step, 1.2 / 64)  # 64 states over [-0.6, 0.6]
