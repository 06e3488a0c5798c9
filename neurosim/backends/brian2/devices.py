"""Synaptic device models inside Brian2 synapses: every weight write becomes programming pulses.

The spiking backend writes weights at events: at the end of an example (EP form, the signed
eligibility) or at each spike of either neuron while nudged (C-EP form). With a device model
each such write is what a chip's controller would do with it: a number of pulses
n = |Delta w| / dw_min, rounded stochastically (a write smaller than a pulse fires one with the
matching probability) or down, each moving the device by its step response. The code here is
the same arithmetic as ``neurosim.hardware.devices.DeviceArray`` (closed forms over n pulses of one
sign, cycle-to-cycle noise whose variance adds over the n pulses, clipping at each device's
bounds, stuck devices that never move), written as Brian2 abstract code so that it runs in the
generated C++ of cpp_standalone. Each response law's part of that code (and the helper functions
it calls) is the law's own (``neurosim.hardware.responses``: ``brian2_update``,
``brian2_functions``); this module adds what is common to every law. The per-device parameters (device-to-device spreads, stuck
devices) are the torch arrays' own, loaded into synapse variables by the synapses' indices
(only those that vary; in C++ read only for the devices that get a pulse),
and the pulse counters come back to them after every run: the torch and Brian2 simulations of
one config use the same devices (tested to 1e-12 with deterministic rounding).

What has no event form here is refused with a ConfigError: differential pairs (two devices and
a refresh per synapse), laws without an event form (``exp_step``: pulse by pulse, no closed
form), write noise (a hidden
state beside the presented weight) and the read side (read noise, DAC/ADC act on the rate
dynamics, not on spikes).
"""

from __future__ import annotations

import re

import numpy as np

from neurosim.errors import ConfigError
from neurosim.hardware.devices import LAWS, DeviceArray, DeviceConfig

PER_DEVICE_DOCS = {"dw_up": "step of an up pulse", "dw_down": "step of a down pulse", "w_lo": "lower bound",
                   "w_hi": "upper bound", "movable": "0 for a stuck device"}
COUNTERS = """pulses_up : integer  # device: up pulses in this run
pulses_down : integer  # device: down pulses in this run"""
PER_DEVICE = tuple(PER_DEVICE_DOCS)


def per_device(config: DeviceConfig) -> tuple[str, ...]:
    """The per-device parameters that differ between the devices of a layer, as
    ``DeviceArray.create`` draws them: the steps with a spread of dw_min or of the asymmetry, each
    bound with its spread, ``movable`` with stuck devices. The others equal their nominal value
    exactly on every device (a spread of 0 multiplies by 1.0) and are constants in the code."""
    w_lo = config.w_bounds_dtod if config.w_min_dtod is None else config.w_min_dtod
    w_hi = config.w_bounds_dtod if config.w_max_dtod is None else config.w_max_dtod
    varies = {"dw_up": bool(config.dw_min_dtod or config.up_down_dtod), "w_lo": bool(w_lo),
              "w_hi": bool(w_hi), "movable": bool(config.stuck_fraction)}
    varies["dw_down"] = varies["dw_up"]
    return tuple(name for name in PER_DEVICE if varies[name])


def uniform(config: DeviceConfig) -> bool:
    """No device-to-device variation and no stuck devices: every device of the layer has the
    nominal parameters, which the write code then holds as constants (reading five per-device
    arrays for every synapse was most of a write's cost)."""
    return not per_device(config)


def variables(config: DeviceConfig) -> str:
    """Synapse variables of a device-backed synapse: pulse counters, and the per-device
    parameters that vary (``per_device``; set from the torch DeviceArray before a run)."""
    lines = [f"{name} : 1 (constant)  # device: {PER_DEVICE_DOCS[name]}" for name in per_device(config)]
    return "\n".join([*lines, COUNTERS])


def _constants(config: DeviceConfig) -> dict[str, float]:
    """The per-device parameters of uniform devices, computed as DeviceArray.create does."""
    up_down = min(max(config.up_down, -0.99), 0.99)
    return {"dw_up": config.step * (1 + up_down), "dw_down": config.step * (1 - up_down),
            "w_lo": config.w_min, "w_hi": config.w_max, "movable": 1.0}


def check_supported(config: DeviceConfig, key: str) -> None:
    """Refuse what the event-driven Brian2 form cannot simulate, naming the config key."""
    if config.ideal:
        if not config.reads_ideally:
            raise ConfigError(key, config.name, "a device without read noise or converters for backend "
                              "brian2-spiking (the read side acts on the rate dynamics; use backend torch)")
        return
    refused = [
        (config.mapping != "single", "mapping", config.mapping, "single (differential pairs run in torch only)"),
        (bool(config.law.brian2_refusal), "response", config.response,
         f"{_event_laws()} ({config.response} {config.law.brian2_refusal})"),
        (bool(config.write_noise_std), "write_noise_std", config.write_noise_std,
         "0 for backend brian2-spiking (write noise needs a hidden state; torch only)"),
        (not config.reads_ideally, "read_noise_std", config.read_noise_std,
         "ideal reads for backend brian2-spiking (read noise, DAC and ADC act on the rate dynamics; torch only)"),
    ]
    for bad, field, value, expected in refused:
        if bad:
            raise ConfigError(f"{key} ({config.name}).{field}", value, expected)


def write_code(config: DeviceConfig, delta: str, owner: str | None = None) -> str:
    """Abstract code that programs the requested change ``delta`` (an expression) into ``w``.

    The temporaries are named dev_*; the synapse needs ``variables(config)``. The parameters that
    do not vary between devices (``per_device``) are constants in the code. ``owner``: the name
    of the Synapses in a cpp_standalone project. A write touches every synapse but few get a
    pulse; the C++ then does the work of a device only where it gets one: the parameters that
    vary are read through ``gates`` (which the run's namespace needs) for those devices alone,
    and the new weight is taken with ``if_pulses`` (w = the clipped new state where n > 0, as
    ``DeviceArray.apply`` assigns it), so that the compiler evaluates the law's closed form in
    that branch only. Without an owner (numpy target) the parameters are the synapse variables
    and every synapse's new weight is w + [n > 0] (clip(new) - w), as before.
    """
    inv_step = repr(1.0 / config.step)
    rounding = " + rand()" if config.rounding == "stochastic" else ""
    varying = per_device(config)
    gated = owner is not None and bool(varying)
    count = f"floor(abs(dev_req) * {inv_step}{rounding})"
    lines = [f"dev_req = {delta}"]
    # a gate needs the count before the stuck mask (a stuck device is read only if it would move)
    lines += [f"dev_n = {count}", "dev_n = dev_n * movable"] if gated and "movable" in varying else \
        [f"dev_n = {count} * movable"]
    lines.append("dev_up = int(dev_req > 0)")
    response = config.law.brian2_update(config)
    if response is None:
        raise ConfigError("synapses.response", config.response, "a response with a closed form over n pulses")
    lines += response
    if config.dw_min_std:
        lines.append(f"dev_new += {config.dw_min_std!r} * (dev_up * dw_up + (1 - dev_up) * dw_down)"
                     " * pulse_noise(dev_n)")
    # the numpy target keeps every synapse's arithmetic; in C++, if_pulses is a conditional whose
    # untaken side (the law's closed form, the bounds' reads) the compiler moves into the branch
    lines += ["w = if_pulses(dev_n, clip(dev_new, w_lo, w_hi), w)" if owner is not None else
              "w = w + int(dev_n > 0) * (clip(dev_new, w_lo, w_hi) - w)",
              "pulses_up += int(dev_up * dev_n)",
              "pulses_down += int((1 - dev_up) * dev_n)"]
    code = "\n".join(lines)
    for name, value in _constants(config).items():
        if name not in varying:
            code = re.sub(rf"\b{name}\b", f"({value!r})", code)
        elif gated:
            code = re.sub(rf"\b{name}\b", f"{gate_name(owner, name)}(dev_n)", code)
    return code


def gate_name(owner: str, name: str) -> str:
    """The name, in the write code of Synapses ``owner``, of the function reading parameter ``name``."""
    return f"dev_{owner}_{name}"


def gates(config: DeviceConfig, owner: str) -> dict:
    """The functions ``write_code(config, delta, owner)`` calls to read the per-device parameters
    that vary, for the namespace of a cpp_standalone run (C++ only).

    Each is a macro of the generated C++: given a device's pulse count n, the synapse variable
    (Brian2's array ``_dynamic_array_<owner>_<name>`` at the synapse index ``_idx`` of its
    loops) where n > 0, else the nominal value (the write then leaves the device as it is). The
    loop of a write thus reads the per-device arrays only for the devices that get a pulse, where
    Brian2's own code reads every variable the code names for every synapse (measured: that made
    a write of 392,000 devices with d2d spreads about 2x the cost of one of uniform devices).
    """
    import brian2 as b2

    nominal = _constants(config)
    found = {}
    for name in per_device(config):
        cpp_name = f"neurosim_dev_{owner}_{name}"

        def numpy_form(n, _name=name):
            raise NotImplementedError(f"{_name}: the gated per-device read is C++ only (write_code without "
                                      "an owner reads the synapse variable on the numpy target)")

        macro = f"#define {cpp_name}(n) ((n) > 0 ? brian::_dynamic_array_{owner}_{name}[_idx] : {nominal[name]!r})"
        function = b2.Function(numpy_form, arg_units=[1], return_unit=1, stateless=False)
        function.implementations.add_implementation("cpp", code={"hashdefine_code": macro}, name=cpp_name)
        found[gate_name(owner, name)] = function
    return found


NOISE_CPP = """
double neurosim_pulse_noise(double n) {
    // c2c noise of n pulses, N(0, n); drawn only for devices that get pulses (most get none)
    return n > 0 ? sqrt(n) * brian::_random_generators[0].randn() : 0.0;
}
"""


IF_PULSES_CPP = "#define neurosim_if_pulses(n, a, b) ((n) > 0 ? (a) : (b))  // a evaluated only where n > 0"


def _event_laws() -> str:
    """The laws with an event form, as a sentence ("constant, soft_bounds, ... or nonlinear")."""
    names = [name for name, law in LAWS.items() if law.brian2_refusal == ""]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def functions() -> dict:
    """The Brian2 functions the write code calls, for a run's namespace.

    A write touches every synapse of a layer, but few get a pulse: drawing the c2c noise and
    taking the power of the closed form only for those (a branch, which Brian2's abstract code
    has not) made a write of 392,000 devices about 5x faster in cpp_standalone (one core,
    measured: constant response with c2c 14.3 -> 2.9 ms, linear_step 22.1 -> 4.2 ms). Holding
    the parameters of ``uniform`` devices as constants saves the rest that can be saved: side by
    side on a machine with two other jobs, ideal ``w += delta`` 0.28 ms, constant 3.2 ms,
    linear_step 3.0 ms, linear_step with d2d spreads (five per-device arrays read) 5.7 ms
    (``experiments/bench_spiking_device_write.py``). With d2d spreads, reading only the
    parameters that vary and those only for the devices that get a pulse (``write_code`` with an
    owner, ``gates``, ``if_pulses``) brings the write to about the cost of uniform devices (the
    numbers: docs/guide/spiking.md, "Synaptic devices").
    numpy implementations for the numpy target; the cython target is not supported. The laws'
    own helpers (``pulse_pow``, ``pulse_curve``) come from their modules.
    """
    import brian2 as b2

    def pulse_noise(n):
        n = np.asarray(n, dtype=np.float64)
        return np.where(n > 0, np.random.standard_normal(n.shape) * np.sqrt(np.maximum(n, 0)), 0.0)

    noise = b2.Function(pulse_noise, arg_units=[1], return_unit=1, stateless=False)
    noise.implementations.add_implementation("cpp", code=NOISE_CPP, name="neurosim_pulse_noise")
    select = b2.Function(lambda n, a, b: np.where(np.asarray(n) > 0, a, b), arg_units=[1, 1, 1], return_unit=1)
    select.implementations.add_implementation("cpp", code={"hashdefine_code": IF_PULSES_CPP}, name="neurosim_if_pulses")
    found = {"pulse_noise": noise, "if_pulses": select}
    for law in LAWS.values():  # every law's helpers: one namespace serves every layer's device
        for spec in law.brian2_functions():
            if spec.name not in found:
                function = b2.Function(spec.python, arg_units=[1] * spec.arg_count, return_unit=1,
                                       stateless=spec.stateless)
                function.implementations.add_implementation("cpp", code=spec.cpp, name=spec.cpp_name)
                found[spec.name] = function
    return found


def per_device_values(array: DeviceArray, i_pre: np.ndarray, j_post: np.ndarray) -> dict[str, np.ndarray]:
    """The torch array's per-device parameters that vary (``per_device``), in the order of the
    synapses (i_pre, j_post).

    Torch weights are [post, pre], as the synapses' matrices (``brian2_rate.synapse_values``).
    """
    if uniform(array.config):
        return {}

    def take(t) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().double().numpy()[j_post, i_pre])

    values = {"dw_up": lambda: take(array.dw_up), "dw_down": lambda: take(array.dw_down),
              "w_lo": lambda: take(array.w_min), "w_hi": lambda: take(array.w_max),
              "movable": lambda: 1.0 - take(array.stuck.double())}
    return {name: values[name]() for name in per_device(array.config)}


def add_pulses(array: DeviceArray, up: np.ndarray, down: np.ndarray, i_pre: np.ndarray, j_post: np.ndarray) -> None:
    """Add one run's pulse counts (per synapse) to the torch array's per-device counters."""
    import torch

    for counter, values in ((array.pulses_up, up), (array.pulses_down, down)):
        dense = np.zeros(tuple(counter.shape), dtype=np.int64)
        dense[j_post, i_pre] = np.rint(values).astype(np.int64)
        counter += torch.from_numpy(dense).to(counter.device)
