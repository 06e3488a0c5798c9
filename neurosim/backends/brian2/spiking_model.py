"""The spiking model as Brian2 code (``backend: brian2-spiking``): neurons that talk only by spikes,
and synapses that learn from spike timing with a rule whose expected value is EP's update.

This module holds the model's description (the layout and the equations and event code of its
neurons and synapses); ``spiking`` builds and runs it.

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
from dataclasses import dataclass

from neurosim.errors import ConfigError
from neurosim.hardware.devices import DeviceConfig
from neurosim.backends.brian2 import devices as bd
from neurosim.backends.brian2 import equations as eq
from neurosim.backends.brian2.rate import Layout

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


def synapse_code(layout: SpikingLayout, layer: int, owner: str | None = None) -> SynapseCode:
    """Model and event code of weight layer ``layer`` (1-based), ideal or on a device.

    On a device every write goes through ``brian2_devices.write_code`` (a write is pulses). In
    the C-EP form the writes happen at spikes; the traces' decay between spikes, which touches
    every synapse at every step, is held in ``pend`` (a local analog store, like the
    eligibility of the EP form) and programmed with the next spike-triggered write, or at the
    end of the example: every programming event is then triggered by a spike or by the example's end.
    ``owner``: the Synapses' name in a cpp_standalone project, whose writes then read the
    per-device parameters only for the devices that get a pulse (``brian2_devices.gates``).
    """
    device = layout.device(layer)
    continual = layout.rule == "cep"
    analog_input = layer == 1 and layout.inputs == "analog"

    def write(delta: str) -> str:
        return bd.write_code(device, delta, owner) if device else f"w += {delta}"

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
