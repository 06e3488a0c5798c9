"""``nonlinear``: NeuroSim's exponential conductance curves.

Potentiation follows G(P) = B (1 - exp(-P / A)) + G_min over P = 0..states pulses, with
A = a_up * states and B = 1 / (1 - exp(-states / A)) so that the curve spans the range in
``states`` pulses; depression follows the mirrored curve with A = a_down * states. A device's
pulse number P is read off its state, n pulses move it to P + n (saturating at ``states``): the
closed form. Small a: strongly nonlinear; large a: nearly linear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from neurosim.errors import ConfigError
from neurosim.hardware.responses.base import Brian2Function, ResponseLaw, compile_elementwise


@dataclass
class NonlinearParams:
    """The parameters of ``nonlinear`` (flat keys of a preset); it also needs ``states``."""

    a_up: float = 1.0
    a_down: float = 1.0
    """``nonlinear`` only: A / states of the potentiation and depression curves (small: strongly
    nonlinear; large: nearly linear)."""


CURVE_CPP = """
double neurosim_pulse_curve(double x, double n, double a, double b, double states) {
    // NeuroSim's curve x(P) = b (1 - exp(-P / a)): read P off x, add n pulses, saturate at states
    if (n <= 0) return x;
    const double p = -a * log1p(-fmin(fmax(x / b, 0.0), 1.0 - 1e-12));
    return b * (1.0 - exp(-fmin(fmax(p + n, 0.0), states) / a));
}
"""


def _pulse_curve(x, n, a, b, states):
    x, n = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(n, dtype=np.float64))
    p = -a * np.log1p(-np.clip(x / b, 0.0, 1.0 - 1e-12))
    return np.where(n > 0, b * (1.0 - np.exp(-np.clip(p + n, 0.0, states) / a)), x)


PULSE_CURVE = Brian2Function("pulse_curve", _pulse_curve, CURVE_CPP, "neurosim_pulse_curve", 5)
"""The curve's state after n pulses (the identity for n = 0, without its logs and exps)."""


@dataclass(frozen=True)
class Curves:
    """The derived constants of both curves: A and B up and down, and the number of states."""

    a_up: float
    a_down: float
    b_up: float
    b_down: float
    states: float


class Nonlinear(ResponseLaw):
    name = "nonlinear"
    params = NonlinearParams

    def curves(self, config) -> Curves:
        states = float(config.states)
        a_up, a_down = config.a_up * states, config.a_down * states
        return Curves(a_up, a_down, 1 / (1 - math.exp(-states / a_up)), 1 / (1 - math.exp(-states / a_down)),
                      states)

    def validate(self, config, prefix: str) -> None:
        if not config.states:
            raise ConfigError(f"{prefix}.states", config.states, "a number of states for response nonlinear")
        for key in ("a_up", "a_down"):
            if not getattr(config, key) > 0:
                raise ConfigError(f"{prefix}.{key}", getattr(config, key), "a positive curve constant")

    def change(self, config, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
               w_min: Tensor, w_max: Tensor) -> Tensor:
        k = self.curves(config)
        span = w_max - w_min
        x = ((w - w_min) / span).clamp(0, 1)  # normalised conductance
        p_up = -k.a_up * torch.log1p(-(x / k.b_up).clamp(max=1 - 1e-12))
        x_up = k.b_up * (1 - torch.exp(-(p_up + n).clamp(max=k.states) / k.a_up))
        # depression mirrors the curve: 1 - x follows the same shape in the pulses applied
        p_down = -k.a_down * torch.log1p(-((1 - x) / k.b_down).clamp(max=1 - 1e-12))
        x_down = 1 - k.b_down * (1 - torch.exp(-(p_down + n).clamp(max=k.states) / k.a_down))
        return (torch.where(up, x_up, x_down) - x) * span

    def compiled(self, config):
        k = self.curves(config)
        return compile_elementwise(_COMPILED, _build), (k.a_up, k.a_down, k.b_up, k.b_down, k.states)

    def brian2_update(self, config) -> list[str]:
        k = self.curves(config)
        return [
            "dev_x = clip((w - w_lo) / (w_hi - w_lo), 0, 1)",
            f"dev_xu = pulse_curve(dev_x, dev_n * dev_up, {k.a_up!r}, {k.b_up!r}, {k.states!r})",
            f"dev_xd = 1 - pulse_curve(1 - dev_x, dev_n * (1 - dev_up), {k.a_down!r}, {k.b_down!r}, {k.states!r})",
            "dev_new = w + (dev_up * dev_xu + (1 - dev_up) * dev_xd - dev_x) * (w_hi - w_lo)",
        ]

    def brian2_functions(self) -> list[Brian2Function]:
        return [PULSE_CURVE]


LAW = Nonlinear()


_COMPILED: dict = {}


def _build(njit):
    @njit(nogil=True, inline="always")
    def change(w, n, up, dw_up, dw_down, w_min, w_max, constants):
        """``Nonlinear.change`` of one device, only in its own direction."""
        a_up, a_down, b_up, b_down, states = constants
        span = w_max - w_min
        x = min(max((w - w_min) / span, 0.0), 1.0)
        if up:
            p = -a_up * math.log1p(-min(x / b_up, 1 - 1e-12))
            moved = b_up * (1 - math.exp(-min(p + n, states) / a_up))
        else:
            p = -a_down * math.log1p(-min((1 - x) / b_down, 1 - 1e-12))
            moved = 1 - b_down * (1 - math.exp(-min(p + n, states) / a_down))
        return (moved - x) * span
    return change
