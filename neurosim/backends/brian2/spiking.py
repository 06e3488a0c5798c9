"""Spiking EP in Brian2 (``backend: brian2-spiking``): neurons that talk only by spikes, and
synapses that learn from spike timing with a rule whose expected value is EP's update.

Each state neuron keeps the leaky state of the rate model (``brian2_equations``), but it sees
its neighbours only through their spikes:

    tau ds/dt     = -s + I_syn + I_in + b [+ beta (y - s) on the outputs while nudged]
    tau_syn dI_syn/dt = -I_syn,   I_syn += w / (r_max tau_syn) at each spike of a neighbour
    spikes at rate r_max rho(s): integrate-and-fire on a phase, dv/dt = r_max rho(s), spike and
                                 v -= 1 at v > 1 (regular, the default), or Poisson (rand() <
                                 r_max rho(s) dt)

A neighbour firing at rate r_max rho_j adds w / (r_max tau_syn) per spike to a current that
decays with tau_syn: its mean is w rho_j, so the mean of I_syn is W rho(s), the rate model's
synaptic input. A layer pair's symmetric weights live in ONE Synapses object: ``on_pre``
(a spike of the lower layer) drives the upper neuron, ``on_post`` (a spike of the upper layer)
drives the lower one, with the same w. The input is analog by default: W_1 x (pixels as rates)
summed once per example, as in the rate backend; with ``inputs='poisson'`` each pixel fires a
Poisson train of rate r_max x and W_1 learns from spike pairs like the other layers.

Learning (EP form, applied at the end of each example), all of it local and event-driven:

- each neuron keeps a trace x (tau_tr dx/dt = -x, x += 1 / (r_max tau_tr) at its spikes; mean rho);
- a phase sign g(t) shared by the network: -1 in the last L steps of the free phase, +1 in the
  last L steps of the nudged phase, 0 otherwise;
- each synapse an eligibility e: at a spike of the pre neuron e += g x_post / (2 r_max L dt), at a
  spike of the post neuron e += g x_pre / (2 r_max L dt) (a symmetric STDP window, signed by g);
- at the end of the example w += (lr / beta) e, and e = 0; biases (and W_1 = delta x^T with the
  analog input) from the neurons' spike counts in the two windows.

Learning, C-EP form (``estimator.name: cep``): during the nudged phase only, w follows
(eta/beta) d/dt[x_pre x_post] as it happens: at a spike of either neuron w += (eta/beta) k x_other
(k = 1/(r_max tau_tr)), and at every step w += (eta/beta) ((1 - a)^2 - 1) x_pre x_post for the
traces' Euler decay (a = dt/tau_tr); biases alike from their own trace, W_1 (analog inputs) as
delta x with delta summed over the nudged phase. Summed over the phase this telescopes exactly to
(eta/beta)(x_i x_j(end) - x_i x_j(start)): the EP update as eta -> 0, up to trace noise.

E[e] = rho_i^beta rho_j^beta - rho_i^0 rho_j^0 when both windows sit at the fixed points and the
spike trains are uncorrelated at the scale of tau_tr: EP's update (derivation: docs/spiking.md).

The network reuses the rate backend's machinery: the per-example schedule as TimedArrays, phase
resets and updates with ``run_regularly``, the standalone project compiled once per layout and
fed new weights through ``run_args``, weights travelling by the synapses' (i, j) indices.
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
from neurosim.backends.brian2 import equations as eq
from neurosim.backends.brian2.rate import Brian2RateNetwork, Layout, RunOutput, Schedule, schedule_tables

SPIKES = ("regular", "poisson")
INPUTS = ("analog", "poisson")


@dataclass(frozen=True)
class SpikingLayout(Layout):
    """A rate Layout plus what the spikes need. ``eps`` = dt/tau as for the rate network; T and K
    count steps of dt. Times in ms, rates in Hz."""

    r_max_hz: float = 1000.0
    """Firing rate at rho = 1."""
    tau_syn_ms: float = 2.0
    """Time constant of the synaptic currents and of the learning traces."""
    spikes: str = "regular"
    """'regular' (integrate-and-fire on a phase, random initial phase) or 'poisson'."""
    window: int = 40
    """L: steps at the end of each phase over which spikes are counted and paired."""
    seed: int = 0
    """Brian2's random seed (initial phases, Poisson spikes)."""
    inputs: str = "analog"
    """'analog' (W_1 x with pixels as rates, summed once per example) or 'poisson' (each pixel
    a Poisson train of rate r_max x; W_1 then learns from spike pairs like the other layers)."""
    devices: tuple[str, ...] = ()
    """Per weight layer, the JSON of its synaptic device (``brian2_devices``), or '' for ideal
    synapses; empty: all ideal. Part of the layout because the write code is compiled in."""

    def device(self, layer: int) -> DeviceConfig | None:
        """The device behind weight layer ``layer`` (1-based), or None for ideal synapses."""
        text = self.devices[layer - 1] if layer <= len(self.devices) else ""
        return DeviceConfig(**json.loads(text)) if text else None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rule not in ("ep", "cep"):
            raise ConfigError("estimator.name", self.rule, "ep or cep for backend brian2-spiking (updates at the "
                                                           "end of each example, or continually while nudged)")
        if self.inputs not in INPUTS:
            raise ConfigError("backend.inputs", self.inputs, "one of " + ", ".join(INPUTS))
        if self.spikes not in SPIKES:
            raise ConfigError("backend.spikes", self.spikes, "one of " + ", ".join(SPIKES))
        dt_s = self.eps * self.tau_ms * 1e-3
        if not (self.r_max_hz > 0 and self.r_max_hz * dt_s <= 1.0):
            raise ConfigError("backend.r_max_hz", self.r_max_hz,
                              f"a rate in (0, 1/dt] = (0, {1 / dt_s:g}] Hz (at most one spike per step)")
        if not self.tau_syn_ms > dt_s * 1e3:
            raise ConfigError("backend.tau_syn_ms", self.tau_syn_ms,
                              f"longer than the step dt = {dt_s * 1e3:g} ms (its Euler decay would be total)")
        if not (1 <= self.window <= self.T and self.window <= self.K):
            raise ConfigError("backend.window", self.window,
                              f"between 1 and min(T, K) = {min(self.T, self.K)} steps")


def layer_equations(layer: int, n_layers: int, layout: SpikingLayout) -> str:
    """Equations of spiking state layer ``layer`` (1 = first hidden, ``n_layers`` = output)."""
    currents = ["I_syn"]
    declarations = []
    if layer == 1 and layout.inputs == "analog":
        currents.append("I_in")
        declarations.append("I_in : 1 (linked)  # W_1 x, analog input, summed once per example")
        declarations.append("delta : 1  # coef (rate_nudged - rate_free): W_1's update is delta_post x_pre")
    if layout.rule == "cep":
        declarations.append("xo : 1  # C-EP: the trace after this step's decay, before its spike (if any)")
    output = layer == n_layers
    nudge = " + nudge" if output else ""
    lines = [
        f"ds/dt = (-s + {' + '.join(currents)} + b{nudge}) / tau : 1",
        "dI_syn/dt = -I_syn / tau_syn : 1  # spikes of the neighbours, filtered: mean W rho(s)",
        "dx/dt = -x / tau_syn : 1  # trace of this neuron's spikes (mean rho)",
        f"r = {eq.rho_expression(layout.activation)} : 1",
        "offset = timestep(t, dt) % S : integer (shared)  # steps since the example started",
        # g: -1 in the last L steps of the free phase, +1 in the last L of the nudged phase
        "g = int(offset >= S - L) - int(offset >= T - L) * int(offset < T) : 1 (shared)",
        "b : 1",
        "c_free : 1  # spikes in the free window",
        "c_nudged : 1  # spikes in the nudged window",
        "lr : 1 (shared)",
        "beta_now : 1 (shared)",
        "gate : 1 (shared)",
        "coef = gate * lr / beta_now : 1 (shared)",
        *declarations,
    ]
    if layout.spikes == "regular":
        lines.append("dv/dt = r_max * r : 1  # phase of the integrate-and-fire oscillator")
    if output:
        lines.append("y : 1")
        lines.append("nudge = int(offset >= T) * gate * beta_now * (y - s) : 1")
    return "\n".join(lines)


THRESHOLD = {"regular": "v > 1", "poisson": "rand() < r_max * r * dt"}
RESET_COMMON = "x += 1 / (r_max * tau_syn)\nc_free += int(g < 0)\nc_nudged += int(g > 0)"
RESET = {"regular": "v -= 1\n" + RESET_COMMON, "poisson": RESET_COMMON}

SYNAPSE_MODEL = "w : 1\nelig : 1  # eligibility: signed sum of spike pairs"
ON_PRE = "I_syn_post += w * k_syn\nelig += g_post * x_post * k_e"
"""A spike of the lower neuron drives the upper one and pairs with the upper neuron's trace."""
ON_POST = "I_syn_pre += w * k_syn\nelig += g_post * x_pre * k_e"
"""A spike of the upper neuron drives the lower one (same w) and pairs with the lower trace."""
INPUT_EQUATIONS = "x : 1  # pixel\ndxtr/dt = -xtr / tau_syn : 1  # trace of the pixel's spikes (mean x)"
INPUT_ON_POST = "elig += g_post * xtr_pre * k_e"
"""Poisson inputs: the input is clamped (no feedback current), but its synapses pair spikes alike."""

# C-EP form (estimator.name: cep): during the nudged phase w follows (eta/beta) d/dt[x_pre x_post],
# integrated exactly for the Euler traces (docs/spiking.md): the product's decay per step,
# ((1 - a)^2 - 1) x_pre x_post with a = dt/tau_syn, before the groups integrate, and at a spike
# the jump k_syn times the other neuron's trace, the mean of its values before and after its own
# spike of the same step (xo, x), so that a same-step pair adds exactly k_syn^2.
NUDGED_POST = "coef_post * int(offset_post >= T)"
CEP_SYNAPSE_MODEL = "w : 1"
CEP_INPUT_EQUATIONS = INPUT_EQUATIONS + "\nxtro : 1  # C-EP: the trace before this step's spike"


@dataclass(frozen=True)
class SynapseCode:
    """The Brian2 code of one layer pair's Synapses object."""

    model: str
    on_pre: str | None
    on_post: str | None
    every_step: str | None
    """C-EP: before the groups integrate, every step."""
    end_of_example: str | None
    """At the start of each example, for the one before it."""


def synapse_code(layout: SpikingLayout, layer: int) -> SynapseCode:
    """Model and event code of weight layer ``layer`` (1-based), ideal or on a device.

    On a device every write goes through ``brian2_devices.write_code`` (a write is pulses). In
    the C-EP form the writes happen at spikes; the traces' decay between spikes, which touches
    every synapse at every step, is held in ``pend`` (a local analog store, like the
    eligibility of the EP form) and programmed with the next spike-triggered write, or at the
    end of the example: every programming event is then triggered by a spike or by the example's end.
    """
    device = layout.device(layer)
    continual = layout.rule == "cep"
    analog_input = layer == 1 and layout.inputs == "analog"

    def write(delta: str) -> str:
        return bd.write_code(device, delta) if device else f"w += {delta}"

    def with_device(model: str) -> str:
        if device is None:
            return model
        pend = "\npend : 1  # C-EP: traces' decay not yet programmed" if continual and not analog_input else ""
        return f"{model}\n{bd.variables(device)}{pend}"

    if analog_input:  # W_1 = delta x^T, written once per example (both forms)
        return SynapseCode(with_device(eq.INPUT_SYNAPSE_MODEL), None, None, None, write("delta_post * x_pre"))
    pre_trace = "(xtr_pre + xtro_pre) / 2" if layer == 1 else "(x_pre + xo_pre) / 2"
    drive_post = None if layer == 1 else "I_syn_pre += w * k_syn"  # Poisson inputs get no feedback
    if not continual:
        on_post = INPUT_ON_POST if layer == 1 else ON_POST
        return SynapseCode(with_device(SYNAPSE_MODEL), ON_PRE, on_post, None,
                           write("coef_post * elig") + "\nelig = 0")
    jump_pre = f"{NUDGED_POST} * k_syn * (x_post + xo_post) / 2"
    jump_post = f"{NUDGED_POST} * k_syn * {pre_trace}"
    decay = f"{NUDGED_POST} * k_decay2 * {'xtr_pre' if layer == 1 else 'x_pre'} * x_post"
    if device is None:
        on_pre = f"I_syn_post += w * k_syn\nw += {jump_pre}"
        on_post = "\n".join(filter(None, [drive_post, f"w += {jump_post}"]))
        return SynapseCode(CEP_SYNAPSE_MODEL, on_pre, on_post, f"w += {decay}", None)
    on_pre = f"I_syn_post += w * k_syn\n{write(f'{jump_pre} + pend')}\npend = 0"
    on_post = "\n".join(filter(None, [drive_post, write(f"{jump_post} + pend"), "pend = 0"]))
    return SynapseCode(with_device(CEP_SYNAPSE_MODEL), on_pre, on_post, f"pend += {decay}",
                       write("pend") + "\npend = 0")


def cep_neuron_decay(layer: int, inputs: str) -> str:
    """C-EP, before the groups integrate: the bias (and layer 1's delta for W_1 with analog inputs)
    follows the decay of the neuron's own trace, (eta/beta) (x(1 - a) - x), during the nudged phase."""
    code = ["b += coef * int(offset >= T) * k_decay * x"]
    if layer == 1 and inputs == "analog":
        code.append("delta += coef * int(offset >= T) * k_decay * x")
    return "\n".join(code)


def cep_reset(layer: int, spikes: str, inputs: str) -> str:
    """C-EP reset: the EP-form reset plus the bias's (and delta's) share of the trace's jump."""
    code = [RESET[spikes], "b += coef * int(offset >= T) * k_syn"]
    if layer == 1 and inputs == "analog":
        code.append("delta += coef * int(offset >= T) * k_syn")
    return "\n".join(code)


def end_of_example_update(layer: int, inputs: str, rule: str = "ep") -> str:
    """Bias (and layer 1's delta for W_1 with analog inputs) from the spike counts of the two windows.
    C-EP: nothing (the bias and delta moved during the nudged phase)."""
    if rule == "cep":
        return ""
    code = ["b += coef * (c_nudged - c_free) * k_count"]
    if layer == 1 and inputs == "analog":
        code.insert(0, "delta = coef * (c_nudged - c_free) * k_count")
    return "\n".join(code)


def example_reset(layer: int, n_layers: int, spikes: str, rule: str = "ep", inputs: str = "analog") -> str:
    code = ["beta_now = beta_ta(t)", "gate = gate_ta(t)", "s = 0", "I_syn = 0", "x = 0",
            "c_free = 0", "c_nudged = 0"]
    if rule == "cep" and layer == 1 and inputs == "analog":
        code.append("delta = 0  # C-EP: W_1's update accumulates over the nudged phase")
    if spikes == "regular":
        code.append("v = rand()  # a random phase: the neurons do not fire in lockstep")
    if layer == n_layers:
        code.append("y = y_ta(row_ta(t) * ms, i)")
    return "\n".join(code)


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
    root = os.environ.get("NEUROSIM_BRIAN2_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "neurosim", "brian2")
    return Path(root) / f"spiking_{layout.key()}"


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
    for n in range(1, n_layers + 1):
        i_pre, j_post = (a.ravel() for a in np.meshgrid(np.arange(sizes[n - 1]), np.arange(sizes[n]), indexing="ij"))
        spec = synapse_code(layout, n)
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
