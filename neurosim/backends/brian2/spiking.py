"""Spiking EP in Brian2 (``backend: brian2-spiking``): the network that runs the spiking model.

The model itself (what each neuron and synapse computes, the EP and C-EP learning rules, the
writes through synaptic devices) is described in ``spiking_model``, whose names this module
re-exports; here it is built into Brian2 objects (``build_objects``), run through the rate
backend's machinery (``Brian2SpikingNetwork``: the per-example schedule as TimedArrays, the
standalone project compiled once per layout, weights by the synapses' (i, j) indices, a seed
per run), and fitted to a config (``layout_for``, ``device_configs``, ``check_devices``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.hardware.devices import DeviceArray, DeviceConfig
from neurosim.errors import ConfigError
from neurosim.backends.brian2 import devices as bd
from neurosim.backends.brian2.targets import build_cache_root
from neurosim.backends.brian2.rate import Brian2RateNetwork, RunOutput, Schedule, schedule_tables
from neurosim.backends.brian2.spiking_model import (  # noqa: F401  (re-exported: the model's names)
    CEP_INPUT_EQUATIONS, CEP_SYNAPSE_MODEL, INPUT_EQUATIONS, INPUT_ON_POST, INPUTS, NUDGED_POST, ON_POST, ON_PRE,
    RESET, RESET_COMMON, SPIKES, SYNAPSE_MODEL, THRESHOLD, SpikingLayout, SynapseCode, cep_neuron_decay,
    cep_reset, end_of_example_update, example_reset, layer_equations, synapse_code)


@dataclass
class SpikingOutput(RunOutput):
    """RunOutput plus, per layer, the firing rates (spike counts / (r_max L dt)) of each
    example's late free and late nudged windows, [n_examples, size]."""

    rates_free: list[np.ndarray] | None = None
    rates_nudged: list[np.ndarray] | None = None
    spikes: list[tuple[np.ndarray, np.ndarray]] | None = None
    """With ``record_states``: per layer, (neuron indices, spike times in ms)."""


class Brian2SpikingNetwork(Brian2RateNetwork):
    """The spiking network of a SpikingLayout; ``run`` simulates a Schedule (see the module
    docstring). ``free_outputs`` are the output layer's free-window rates."""

    layout: SpikingLayout

    def __init__(self, layout: SpikingLayout, params, lrs, target: str = "numpy",
                 build_dir: str | Path | None = None, devices: list[DeviceArray | None] | None = None) -> None:
        if not isinstance(layout, SpikingLayout):
            raise TypeError("Brian2SpikingNetwork needs a SpikingLayout")
        super().__init__(layout, params, lrs, target, build_dir or default_build_dir(layout))
        self.devices = list(devices or [None] * (len(layout.sizes) - 1))
        """The torch device arrays of the layers that have devices (their per-device parameters
        go into the synapses, their pulse counters get each run's pulses)."""
        for n, array in enumerate(self.devices, 1):
            if (array is None) != (layout.device(n) is None):
                raise ValueError(f"layer {n}: the layout and the device arrays disagree on its device")
        self.run_seed: int | None = None
        """The seed of the next run's random numbers (initial phases, Poisson spikes, stochastic
        rounding); None: layout.seed + the number of runs so far. The trainer sets one per epoch."""

    def _next_seed(self) -> int:
        return self.layout.seed + self._runs if self.run_seed is None else self.run_seed

    def _runtime_objects(self, schedule: Schedule) -> dict[str, Any]:
        import brian2 as b2

        b2.seed(self._next_seed())  # new spike phases / Poisson draws for every run
        self._runs += 1
        return build_objects(self.layout, schedule, self.lrs)

    def _run_standalone(self, schedule: Schedule) -> SpikingOutput:
        # the binary's seed is fixed when it is generated; SEED_CODE lets each run replace it
        previous = os.environ.get(SEED_VARIABLE)
        os.environ[SEED_VARIABLE] = str(self._next_seed())
        try:
            return super()._run_standalone(schedule)
        finally:
            if previous is None:
                os.environ.pop(SEED_VARIABLE, None)
            else:
                os.environ[SEED_VARIABLE] = previous

    def _synapse_extras(self, objects: dict[str, Any]) -> list[tuple[Any, str, np.ndarray]]:
        extras = []
        for syn, array in zip(objects["synapses"], self.devices):
            if array is not None:
                i_pre, j_post = objects["connect"][syn.name]
                extras += [(syn, var, values) for var, values in bd.per_device_values(array, i_pre, j_post).items()]
        return extras

    def _collect(self, objects: dict[str, Any], seconds: float, cpu_seconds: float) -> SpikingOutput:
        self._read_params(objects)
        for syn, array in zip(objects["synapses"], self.devices):
            if array is not None:
                i_pre, j_post = objects["connect"][syn.name]
                bd.add_pulses(array, np.asarray(syn.pulses_up[:]), np.asarray(syn.pulses_down[:]), i_pre, j_post)
        scale = 1.0 / (self.layout.r_max_hz * self.layout.window * self.layout.eps * self.layout.tau_ms * 1e-3)
        free, nudged = [], []
        for mon in objects["count_monitors"]:  # row 0: the start, before any example ended
            free.append(np.asarray(mon.c_free)[:, 1:].T * scale)
            nudged.append(np.asarray(mon.c_nudged)[:, 1:].T * scale)
        states = spikes = None
        if self.layout.record_states:
            states = [np.asarray(m.s).T.copy() for m in objects["state_monitors"]]
            spikes = [(np.asarray(m.i[:]).copy(), np.asarray(m.t[:] / 1e-3).copy()) for m in objects["spike_monitors"]]
        return SpikingOutput(free[-1].copy(), states, seconds, cpu_seconds, free, nudged, spikes)

    def _standalone_objects(self, schedule: Schedule, device: Any) -> dict[str, Any]:
        import brian2 as b2

        b2.seed(self.layout.seed)
        device.insert_code("main", SEED_CODE)  # then each run's own seed, from the environment
        return build_objects(self.layout, schedule, self.lrs)


SEED_VARIABLE = "NEUROSIM_BRIAN2_SEED"
SEED_CODE = f"""{{
    const char* _neurosim_seed = getenv("{SEED_VARIABLE}");
    if (_neurosim_seed) brian::_random_generators[0].seed(strtoul(_neurosim_seed, 0, 10));
}}"""
"""C++ run after Brian2's own seeding in main(): the seed of this run from the environment
(one generator: the project is built without OpenMP)."""


def default_build_dir(layout: SpikingLayout) -> Path:
    """The layout's folder in the Brian2 build cache (targets.build_cache_root)."""
    return build_cache_root() / f"spiking_{layout.key()}"


def build_objects(layout: SpikingLayout, schedule: Schedule, lrs: list[float]) -> dict[str, Any]:
    """Create the Brian2 groups, synapses, operations and monitors of a spiking layout."""
    import brian2 as b2
    from brian2 import Hz, ms

    sizes = layout.sizes
    n_layers = len(sizes) - 1
    tau = layout.tau_ms * ms
    dt = layout.eps * tau
    period = layout.steps_per_example * dt
    r_max = layout.r_max_hz * Hz
    tau_syn = layout.tau_syn_ms * ms
    tables = schedule_tables(schedule, period)
    x_ta, y_ta, row_ta, beta_ta, gate_ta = (tables[k] for k in ("x_ta", "y_ta", "row_ta", "beta_ta", "gate_ta"))
    window_seconds = layout.window * dt
    namespace = {"tau": tau, "tau_syn": tau_syn, "r_max": r_max, "S": layout.steps_per_example, "T": layout.T,
                 "L": layout.window, "ms": ms, "x_ta": x_ta, "y_ta": y_ta, "row_ta": row_ta, "beta_ta": beta_ta,
                 "gate_ta": gate_ta,
                 "k_syn": float(1.0 / (r_max * tau_syn)),  # current jump per spike: mean w rho
                 "k_e": float(1.0 / (2 * r_max * window_seconds)),  # eligibility per spike pair
                 "k_count": float(1.0 / (r_max * window_seconds))}  # spike count -> rate estimate
    continual = layout.rule == "cep"
    if any(layout.devices):
        namespace.update(bd.functions())
    if continual:
        a = float(dt / tau_syn)
        namespace["k_decay"] = -a  # a trace's change per step by its Euler decay, per unit of trace
        namespace["k_decay2"] = (1.0 - a) ** 2 - 1.0  # the same for a product of two traces

    analog = layout.inputs == "analog"
    if analog:
        inputs = b2.NeuronGroup(sizes[0], "x : 1", dt=period, name="inputs")
        inputs.run_regularly("x = x_ta(row_ta(t) * ms, i)", dt=period, when="start", order=3, name="inputs_load")
        drive = b2.NeuronGroup(sizes[1], "I_in : 1\ndelta : 1 (linked)", dt=period, order=-10, name="drive")
        front = [inputs, drive]
    else:  # pixels as Poisson trains, with a trace of their spikes for the rule
        inputs = b2.NeuronGroup(sizes[0], CEP_INPUT_EQUATIONS if continual else INPUT_EQUATIONS,
                                threshold="rand() < r_max * x * dt",
                                reset="xtr += 1 / (r_max * tau_syn)", method="euler", dt=dt, order=0, name="inputs")
        inputs.resetter["spike"].when = "thresholds"
        inputs.resetter["spike"].order = 1
        inputs.run_regularly("x = x_ta(row_ta(t) * ms, i)\nxtr = 0", dt=period, when="start", order=3,
                             name="inputs_load")
        if continual:
            inputs.run_regularly("xtro = xtr", when="after_groups", name="inputs_trace_before_spike")
        front = [inputs]
    layers = []
    for n in range(1, n_layers + 1):
        group = b2.NeuronGroup(sizes[n], layer_equations(n, n_layers, layout), threshold=THRESHOLD[layout.spikes],
                               reset=cep_reset(n, layout.spikes, layout.inputs) if continual else RESET[layout.spikes],
                               method="euler", dt=dt, order=0, name=f"layer{n}")
        group.lr = lrs[n - 1]
        group.beta_now = 1.0
        group.gate = 0.0
        # The reset (trace increment, counts) runs before the synapses of the same step: a pair
        # of spikes in one step is then seen by both pathways, each with half the weight, and
        # with Euler decay the pair kernel sums to exactly 1 (docs/spiking.md).
        group.resetter["spike"].when = "thresholds"
        group.resetter["spike"].order = 1
        if layout.spikes == "regular":
            group.v = "rand()"
        if not continual:
            group.run_regularly(end_of_example_update(n, layout.inputs), dt=period, when="start", order=1,
                                name=f"layer{n}_update")
        group.run_regularly(example_reset(n, n_layers, layout.spikes, layout.rule, layout.inputs), dt=period,
                            when="start", order=3, name=f"layer{n}_reset")
        if continual:
            group.run_regularly(cep_neuron_decay(n, layout.inputs), when="before_groups", name=f"layer{n}_cep_decay")
            group.run_regularly("xo = x", when="after_groups", order=1, name=f"layer{n}_trace_before_spike")
        if layout.clamp:
            group.run_regularly("s = clip(s, 0, 1)", when="after_groups", name=f"layer{n}_clamp")
        layers.append(group)
    if analog:
        layers[0].I_in = b2.linked_var(drive, "I_in")
        drive.delta = b2.linked_var(layers[0], "delta")

    synapses, connect = [], {}
    standalone = b2.get_device().__class__.__name__ == "CPPStandaloneDevice"
    for n in range(1, n_layers + 1):
        i_pre, j_post = (a.ravel() for a in np.meshgrid(np.arange(sizes[n - 1]), np.arange(sizes[n]), indexing="ij"))
        device = layout.device(n)
        owner = f"syn{n}" if device is not None and standalone else None  # gated per-device reads in C++
        spec = synapse_code(layout, n, owner)
        if owner is not None:
            namespace.update(bd.gates(device, owner))
        if n == 1 and analog:
            pre, post, clock = inputs, drive, period
        else:
            pre, post, clock = (inputs if n == 1 else layers[n - 2]), layers[n - 1], dt
        syn = b2.Synapses(pre, post, spec.model, on_pre=spec.on_pre, on_post=spec.on_post, dt=clock, name=f"syn{n}")
        syn.connect(i=i_pre, j=j_post)
        if spec.every_step:
            syn.run_regularly(spec.every_step, when="before_groups", name=f"syn{n}_cep_decay")
        if spec.end_of_example:
            syn.run_regularly(spec.end_of_example, dt=period, when="start", order=2, name=f"syn{n}_update")
        synapses.append(syn)
        connect[syn.name] = (i_pre.astype(np.int32), j_post.astype(np.int32))

    count_monitors = [b2.StateMonitor(g, ["c_free", "c_nudged"], record=True, dt=period, when="start", order=0,
                                      name=f"{g.name}_counts") for g in layers]
    state_monitors, spike_monitors = [], []
    if layout.record_states:
        state_monitors = [b2.StateMonitor(g, "s", record=True, when="end", order=5, name=f"{g.name}_states")
                          for g in layers]
        spike_monitors = [b2.SpikeMonitor(g, name=f"{g.name}_spikes") for g in layers]
    duration = (layout.n_examples * layout.steps_per_example + 1) * dt
    return {"all": [*front, *layers, *synapses, *count_monitors, *state_monitors, *spike_monitors],
            "layers": layers, "synapses": synapses, "connect": connect, "count_monitors": count_monitors,
            "state_monitors": state_monitors, "spike_monitors": spike_monitors, "namespace": namespace,
            "duration": duration, "x_ta": x_ta, "y_ta": y_ta, "row_ta": row_ta, "beta_ta": beta_ta,
            "gate_ta": gate_ta}


def layout_for(config, n_examples: int, n_rows: int, devices: list[DeviceConfig | None] | None = None
               ) -> SpikingLayout:
    """The spiking layout of a config (``backend.name: brian2-spiking``) and data size; ``devices``:
    each weight layer's device config, None for ideal synapses (``device_configs``)."""
    c, b, e = config.circuit, config.backend, config.estimator
    device_json = tuple(json.dumps(asdict(d), sort_keys=True) if d is not None else "" for d in devices or [])
    if not any(device_json):
        device_json = ()
    return SpikingLayout(sizes=tuple(c.layers), activation=c.activation, eps=c.eps, tau_ms=b.tau_ms, clamp=c.clamp,
                         T=e.T, K=e.K, rule=e.name, n_examples=n_examples, n_rows=n_rows, r_max_hz=b.r_max_hz,
                         tau_syn_ms=b.tau_syn_ms, spikes=b.spikes, window=b.window, seed=config.seed,
                         inputs=b.inputs, devices=device_json)


def device_configs(synapses, n_layers: int) -> list[DeviceConfig | None]:
    """The device of each weight layer of a network's synapses (None: ideal); ``check_devices``
    has refused what the spiking backend cannot simulate."""
    configs = getattr(synapses, "configs", None) or [None] * n_layers  # ideal synapses have none
    return [None if c is None or c.ideal else c for c in configs[:n_layers]]


def check_devices(config) -> None:
    """Refuse, before anything is written, the devices of a config that the spiking synapses
    cannot simulate (``brian2_devices.check_supported``), and devices on the cython target."""
    per_layer = bool(config.synapses.layers)
    any_device = False
    for index in range(len(config.circuit.layers) - 1):
        device = config.synapses.layer_device(index)  # the records config validation loaded
        bd.check_supported(device, f"synapses.layers[{index}].device" if per_layer else "synapses.device")
        any_device = any_device or not device.ideal
    if any_device and config.backend.target == "cython":
        raise ConfigError("backend.target", "cython", "cpp_standalone or numpy with devices on spiking "
                          "synapses (their write code has C++ and numpy forms)")
