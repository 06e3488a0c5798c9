"""The ``measured`` response law (a look-up table of mean steps) against its own table."""

from __future__ import annotations

import pytest
import torch

from neurosim.errors import ConfigError
from neurosim.hardware.devices import DeviceArray, DeviceConfig
from neurosim.hardware.responses.measured import interpolate

UP = [2.0, 1.5, 1.0, 0.5, 0.0]
DOWN = [0.0, 0.25, 0.5, 1.0, 2.0]
UP_STD = [0.4, 0.3, 0.2, 0.1, 0.0]
DOWN_STD = [0.0, 0.1, 0.2, 0.3, 0.4]


def table_config(**extra) -> DeviceConfig:
    fields = dict(response="measured", w_min=-1.0, w_max=1.0, dw_min=0.01, rounding="deterministic",
                  measured_up=UP, measured_down=DOWN, measured_up_std=UP_STD, measured_down_std=DOWN_STD)
    config = DeviceConfig(**{**fields, **extra})
    config.validate()
    return config


def one_pulse(config: DeviceConfig, w0: float, up: bool, devices: int = 200_000, seed: int = 0) -> torch.Tensor:
    """Steps of many identical devices at state w0 after one pulse."""
    w = torch.full((devices,), w0, dtype=torch.float64)
    array = DeviceArray.create(config, w, 0)
    before = w.clone()
    array.apply(w, torch.full_like(w, config.step if up else -config.step), torch.Generator().manual_seed(seed))
    return w - before


def test_interpolation_hits_the_table_points_and_is_linear_between():
    table = torch.tensor(UP, dtype=torch.float64)
    x = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, 0.125, 0.9], dtype=torch.float64)
    expected = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, 1.75, 0.2], dtype=torch.float64)
    torch.testing.assert_close(interpolate(table, x), expected, rtol=0, atol=1e-12)
    # outside [0, 1] the table's ends hold
    torch.testing.assert_close(interpolate(table, torch.tensor([-0.5, 1.5], dtype=torch.float64)),
                               torch.tensor([2.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("w0, up", [(-0.5, True), (0.0, True), (0.3, True), (-0.5, False), (0.0, False),
                                    (0.6, False)])
def test_mean_step_and_c2c_spread_are_the_tables(w0, up):
    config = table_config()
    steps = one_pulse(config, w0, up)
    x = torch.tensor([(w0 + 1) / 2], dtype=torch.float64)
    mean = float(interpolate(torch.tensor(UP if up else DOWN, dtype=torch.float64), x)) * config.step
    std = float(interpolate(torch.tensor(UP_STD if up else DOWN_STD, dtype=torch.float64), x)) * config.step
    sign = 1 if up else -1
    # 200k draws: the mean within 5 standard errors, the spread within 2%
    assert abs(float(steps.mean()) - sign * mean) < 5 * std / len(steps) ** 0.5
    assert float(steps.std()) == pytest.approx(std, rel=0.02)


def test_without_std_tables_dw_min_std_is_relative_to_the_mean_step():
    config = table_config(measured_up_std=[], measured_down_std=[], dw_min_std=0.3)
    steps = one_pulse(config, 0.0, True)
    assert float(steps.mean()) == pytest.approx(1.0 * config.step, rel=0.01)
    assert float(steps.std()) == pytest.approx(0.3 * config.step, rel=0.02)


def test_device_to_device_spread_scales_each_devices_table():
    config = table_config(measured_up_std=[], measured_down_std=[], dw_min_dtod=0.2)
    w = torch.zeros(50_000, dtype=torch.float64)
    array = DeviceArray.create(config, w, 0)
    array.apply(w, torch.full_like(w, config.step), None)
    torch.testing.assert_close(w, array.dw_up * 1.0, rtol=0, atol=1e-12)  # table value 1.0 at w = 0
    assert float((array.dw_up / config.step).std()) == pytest.approx(0.2, rel=0.05)


def test_a_full_sweep_follows_the_integrated_table():
    """Many pulses from w_min: the device follows w_{k+1} = w_k + step(w_k), the table's curve."""
    config = table_config(measured_up_std=[], measured_down_std=[])
    w = torch.full((1,), -1.0, dtype=torch.float64)
    array = DeviceArray.create(config, w, 0)
    expected = -1.0
    table = torch.tensor(UP, dtype=torch.float64)
    for _ in range(150):
        array.apply(w, torch.full_like(w, config.step), None)
        expected = min(expected + float(interpolate(table, torch.tensor([(expected + 1) / 2],
                                                                          dtype=torch.float64))) * 0.01, 1.0)
        assert float(w) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("changes, key", [
    ({"measured_up": [1.0]}, "measured_up"),
    ({"measured_down": [1.0, 1.0]}, "measured_down"),
    ({"measured_up": [1.0, -0.1, 1.0, 1.0, 1.0]}, "measured_up"),
    ({"measured_up_std": [0.1, 0.1]}, "measured_up_std"),
    ({"measured_down": [0.0] * 5}, "measured_down"),
    ({"measured_down": [float("nan")] * 5}, "measured_down"),
])
def test_bad_tables_are_refused_naming_the_key(changes, key):
    config = DeviceConfig(**{"response": "measured", "measured_up": UP, "measured_down": DOWN, **changes})
    with pytest.raises(ConfigError) as info:
        config.validate("device")
    assert info.value.key == f"device.{key}"
