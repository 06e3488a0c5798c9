"""``linear_step``: aihwkit's LinearStep, a step that shrinks linearly with the state.

Up: dw_up (1 - gamma_up w / w_max); down: dw_down (1 - gamma_down w / w_min). Each is an iterated
map w_{k+1} = w_k + dw (1 - w_k / b) with the bound b = w_max / gamma (w_min / gamma down) at
which the step would vanish, so n pulses have the closed form w_n = b - (b - w_0)(1 - dw / b)^n.
gamma = 0 is a constant step; gamma = 1 is ``soft_bounds``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from neurosim.errors import ConfigError
from neurosim.hardware.responses.base import Brian2Function, ResponseLaw, compile_elementwise, geometric_change


@dataclass
class LinearStepParams:
    """The parameters of ``linear_step`` (flat keys of a preset)."""

    gamma_up: float = 1.0
    gamma_down: float = 1.0
    """``linear_step`` only: slope of the step size towards each bound (0: constant steps)."""


POW_CPP = """
double neurosim_pulse_pow(double base, double n) {
    return n > 0 ? pow(base, n) : 1.0;
}
"""


def _pulse_pow(base, n):
    base, n = np.broadcast_arrays(np.asarray(base, dtype=np.float64), np.asarray(n, dtype=np.float64))
    return np.where(n > 0, base ** np.where(n > 0, n, 0.0), 1.0)


PULSE_POW = Brian2Function("pulse_pow", _pulse_pow, POW_CPP, "neurosim_pulse_pow", 2)
"""base ** n, taken only for the devices that get pulses (n > 0): a write touches every synapse
of a layer but few get a pulse, and the power was most of the write's cost."""


class LinearStep(ResponseLaw):
    name = "linear_step"
    params = LinearStepParams

    def gammas(self, config) -> tuple[float, float]:
        """The slopes up and down (``soft_bounds`` fixes both at 1)."""
        return config.gamma_up, config.gamma_down

    def validate(self, config, prefix: str) -> None:
        for key in ("gamma_up", "gamma_down"):
            if not 0 <= getattr(config, key) <= 1:
                raise ConfigError(f"{prefix}.{key}", getattr(config, key), "a slope in [0, 1] for linear_step")

    def change(self, config, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
               w_min: Tensor, w_max: Tensor) -> Tensor:
        gamma_up, gamma_down = self.gammas(config)
        if gamma_up and gamma_down:  # one closed form with each device's own direction: half the
            # powers of computing both directions for every device and picking one
            return geometric_change(w, n, torch.where(up, dw_up, -dw_down),
                                    torch.where(up, w_max / gamma_up, w_min / gamma_down))
        change_up = geometric_change(w, n, dw_up, w_max / gamma_up) if gamma_up else dw_up * n
        change_down = geometric_change(w, n, -dw_down, w_min / gamma_down) if gamma_down else -dw_down * n
        return torch.where(up, change_up, change_down)

    def compiled(self, config):
        return compile_elementwise(_COMPILED, _build), tuple(float(g) for g in self.gammas(config))

    def brian2_update(self, config) -> list[str]:
        gamma_up, gamma_down = self.gammas(config)
        # n steps of w += step (1 - w / b): b - w - (b - w)(1 - step / b)^n, b where the step vanishes
        up = (f"(w_hi / {gamma_up!r} - w) * (1 - pulse_pow(clip(1 - dw_up * {gamma_up!r} / w_hi, 0, 1), dev_n))"
              if gamma_up else "dw_up * dev_n")
        down = (f"(w_lo / {gamma_down!r} - w) * (1 - pulse_pow(clip(1 + dw_down * {gamma_down!r} / w_lo, 0, 1), dev_n))"
                if gamma_down else "-dw_down * dev_n")
        return [f"dev_new = w + dev_up * {up} + (1 - dev_up) * {down}"]

    def brian2_functions(self) -> list[Brian2Function]:
        return [PULSE_POW]


LAW = LinearStep()


_COMPILED: dict = {}


def _build(njit):
    @njit(nogil=True, inline="always")
    def power(base, n):
        """base ** n; a whole n up to 64 by squaring (a count of pulses always is: a few
        multiplications where pow() cost most of a device's write)."""
        whole = int(n)
        if whole != n or whole > 64:
            return base ** n
        result = 1.0
        while whole:
            if whole & 1:
                result *= base
            base *= base
            whole >>= 1
        return result

    @njit(nogil=True, inline="always")
    def change(w, n, up, dw_up, dw_down, w_min, w_max, constants):
        """geometric_change towards b = w_max / gamma_up (up) or w_min / gamma_down (down); a
        constant step where the slope is 0."""
        gamma_up, gamma_down = constants
        if up:
            step, gamma, edge = dw_up, gamma_up, w_max
        else:
            step, gamma, edge = -dw_down, gamma_down, w_min
        if gamma == 0:
            return step * n
        bound = edge / gamma
        return (bound - w) * (1.0 - power(max(1.0 - step / bound, 0.0), n))
    return change
