"""The Brian2 equations of the continuous-time EP network, as text with units.

One function per piece, so that the equations a user reads in docs/brian2.md are the ones
that run. They are the torch model of ``neurosim.core.models.continuous`` (same rho, no rho'
factor, Euler steps of dt = eps tau):

    tau ds/dt = -s + I_syn + b [+ nudge on the output layer]

where I_syn sums the input drive (layer 1: W_1 x, summed once per example), the feedforward
current W_n rho(s^{n-1}) and the feedback current W_{n+1}^T rho(s^{n+1}) (summed variables of
the Synapses), and nudge = beta (y - s) during the nudged phase of a training example.

Time within an example: ``offset`` counts the steps since its start (0 .. T+K-1), from the
clock's integer time step; the free phase is offset < T, the nudged phase offset >= T.
"""

from __future__ import annotations

from neurosim.errors import ConfigError

RHO: dict[str, str] = {
    # Same functions as neurosim.core.activations (rho(x) = f(gain x + offset)).
    "hard_sigmoid": "clip(s, 0, 1)",
    "sigmoid": "1 / (1 + exp(-(4*s - 2)))",
    "tanh": "tanh(s)",
}


def rho_expression(activation: str) -> str:
    """rho(s) in Brian2's expression syntax."""
    try:
        return RHO[activation]
    except KeyError:
        raise ConfigError("circuit.activation", activation, "one of " + ", ".join(RHO)) from None


def layer_equations(layer: int, n_layers: int, activation: str, continual: bool) -> str:
    """Equations of state layer ``layer`` (1 = first hidden, ``n_layers`` = output).

    Variables: s (state), r = rho(s) (rate), b (bias), r_free/s_free (kept at the end of the
    free phase), coef = gate lr / beta (the factor of this layer's updates: gate is 0 on
    examples that only evaluate), and for C-EP rp (the rate one step earlier).
    """
    currents = []
    declarations = []
    if layer == 1:
        currents.append("I_in")
        declarations.append("I_in : 1 (linked)  # W_1 x of the drive group, summed once per example")
        declarations.append("delta : 1  # coef (r - r_free): W_1's update is delta_post x_pre")
        if continual:
            currents.append("dI")
            declarations.append("dI : 1  # change of W_1 x during the nudged phase (C-EP): coef |x|^2 (r - r_free)")
            declarations.append("xx : 1 (linked)  # |x|^2 of the example")
    else:
        currents.append("I_ff")
        declarations.append("I_ff : 1  # W_n rho(s^{n-1}), summed variable")
    if layer < n_layers:
        currents.append("I_fb")
        declarations.append("I_fb : 1  # W_{n+1}^T rho(s^{n+1}), summed variable")
    output = layer == n_layers
    nudge = " + nudge" if output else ""
    lines = [
        f"ds/dt = (-s + {' + '.join(currents)} + b{nudge}) / tau : 1",
        f"r = {rho_expression(activation)} : 1",
        "offset = timestep(t, dt) % S : integer (shared)  # steps since the example started",
        "b : 1",
        "r_free : 1",
        "s_free : 1",
        "lr : 1 (shared)  # learning rate (EP) or eta (C-EP) of this layer's weights and bias",
        "beta_now : 1 (shared)  # beta of the current example (sign drawn per example)",
        "gate : 1 (shared)  # 1: a training example, 0: evaluation only (no nudge, no update)",
        "coef = gate * lr / beta_now : 1 (shared)",
        *declarations,
    ]
    if continual:
        lines.append("rp : 1  # rate one step earlier (C-EP)")
    if output:
        lines.append("y : 1  # target of the current example")
        lines.append("nudge = int(offset >= T) * gate * beta_now * (y - s) : 1")
    return "\n".join(lines)


def end_of_example_update(layer: int, continual: bool) -> str:
    """Neuron code at the start of an example, for the one before it: EP's update of b (and of
    W_1 through delta); with C-EP only delta (b already moved during the nudged phase)."""
    code = []
    if layer == 1:
        code.append("delta = coef * (r - r_free)")
    if not continual:
        code.append("b += coef * (r - r_free)")
    return "\n".join(code)


def example_reset(layer: int, n_layers: int, continual: bool) -> str:
    """Neuron code that starts an example: beta, gate, target, state back to 0."""
    code = ["beta_now = beta_ta(t)", "gate = gate_ta(t)", "s = 0"]
    if layer == 1 and continual:
        code.append("dI = 0")
    if layer == n_layers:
        code.append("y = y_ta(row_ta(t) * ms, i)")
    return "\n".join(code)


def after_step(layer: int, continual: bool) -> str:
    """Neuron code after every step: keep the free fixed point; C-EP's bias and drive updates."""
    keep = "int(offset == T - 1)"
    code = [f"r_free = r * {keep} + r_free * (1 - {keep})",
            f"s_free = s * {keep} + s_free * (1 - {keep})"]
    if continual:
        code.append("b += coef * int(offset >= T) * (r - rp)")
        if layer == 1:
            code.append("dI += coef * int(offset >= T) * xx * (r - rp)")
        code.append("rp = r")
    return "\n".join(code)


SYNAPSE_MODEL = """w : 1
I_ff_post = w * r_pre : 1 (summed)
I_fb_pre = w * r_post : 1 (summed)"""
"""Symmetric synapses between state layers: one weight drives both directions."""

INPUT_SYNAPSE_MODEL = """w : 1
I_in_post = w * x_pre : 1 (summed)"""
"""Input synapses onto the drive group (its clock ticks once per example)."""

EP_SYNAPSE_UPDATE = "w += coef_post * (r_post * r_pre - r_free_post * r_free_pre)"
CEP_SYNAPSE_STEP = "w += coef_post * int(offset_post >= T) * (r_post * r_pre - rp_post * rp_pre)"
INPUT_SYNAPSE_UPDATE = "w += delta_post * x_pre"
