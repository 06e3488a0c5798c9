"""Synaptic device models: what a requested weight change becomes on a physical device.

The one import for device work (``from neurosim.hardware.devices import device_config,
DeviceConfig, DeviceArray``, and the old ``neurosim.device_models``), gathering the modules that
do it:

- ``records``: ``DeviceConfig`` (one device type as data, a docstring per field), the presets
  (``device_config``, loaded and validated once per file and overrides) and ``describe``;
- ``responses``: one module per response law (constant, soft_bounds, linear_step, exp_step,
  nonlinear), each with its parameters, its torch closed form over n pulses and its Brian2 code;
- ``arrays``: the devices behind a weight tensor (``DeviceArray``, ``DifferentialArray``,
  ``create_array``): pulse counting, variation, faults, write noise, counters;
- ``plots``: pulse-response curves (``pulse_response``, ``plot_pulse_response``).

The configuration is data (``presets/devices/*.yaml``, each with its sources); these modules only run it.
"""

from __future__ import annotations

from neurosim.hardware.arrays import DeviceArray, DifferentialArray, create_array
from neurosim.hardware.plots import plot_pulse_response, pulse_response
from neurosim.hardware.records import (MAPPINGS, RESPONSES, ROUNDING, STUCK_AT, DeviceConfig, DeviceIdentity,
                                       clear_cache, describe, device_config)
from neurosim.hardware.responses import LAWS, ResponseLaw, law

__all__ = ["LAWS", "MAPPINGS", "RESPONSES", "ROUNDING", "STUCK_AT", "DeviceArray", "DeviceConfig", "DeviceIdentity",
           "DifferentialArray", "ResponseLaw", "clear_cache", "create_array", "describe", "device_config", "law",
           "plot_pulse_response", "pulse_response"]
