"""``measured``: a look-up table of the mean step up and down against the device's state.

For devices that no closed form fits: the table holds, at K states evenly spaced from the lower
to the upper bound, the mean step of one up pulse and of one down pulse (as multiples of the
nominal step dw_min), and optionally their cycle-to-cycle standard deviations; between table
points the step is interpolated linearly. This is the interpolated / piecewise-step device of
CrossSim and aihwkit, built by ``neurosim devices fit`` from measured pulse trains.

Per device, the table is read at the device's own normalised state (w - w_min) / (w_max - w_min)
and scaled by its own dw_up / dw_down, so device-to-device spreads of the step and the bounds
apply as for every law (a fitted table has up_down 0: the measured asymmetry is in the table).
The pulses are applied one at a time (there is no closed form over n pulses), each with its
noise and clipped at the bounds; the spiking backend refuses the law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from neurosim.errors import ConfigError
from neurosim.hardware.responses.base import ResponseLaw, apply_pulses, normal_like


@dataclass
class MeasuredParams:
    """The parameters of ``measured`` (flat keys of a preset)."""

    measured_up: list[float] = field(default_factory=list)
    measured_down: list[float] = field(default_factory=list)
    """``measured`` only: mean step of one up (down) pulse, as a multiple of dw_min, at states
    evenly spaced from w_min to w_max (both lists the same length, at least 2; steps >= 0)."""
    measured_up_std: list[float] = field(default_factory=list)
    measured_down_std: list[float] = field(default_factory=list)
    """``measured`` only: cycle-to-cycle standard deviation of one pulse's step, as a multiple of
    dw_min, on the same grid (empty: no table noise; dw_min_std then applies, relative to the
    mean step)."""


def interpolate(table: Tensor, x: Tensor) -> Tensor:
    """Linear interpolation of ``table`` (values at x = 0, 1/(K-1), ..., 1) at ``x`` in [0, 1]."""
    k = table.numel() - 1
    pos = x.clamp(0, 1) * k
    lo = pos.floor().clamp(max=k - 1)
    frac = pos - lo
    lo = lo.to(torch.int64)
    return torch.lerp(table[lo], table[lo + 1], frac)


class Measured(ResponseLaw):
    name = "measured"
    params = MeasuredParams
    pulse_by_pulse = True
    brian2_refusal = "is a look-up table without a closed form over n pulses; torch only"

    def validate(self, config, prefix: str) -> None:
        up, down = config.measured_up, config.measured_down
        if len(up) < 2:
            raise ConfigError(f"{prefix}.measured_up", up, "a table of at least 2 mean steps for response measured")
        if len(down) != len(up):
            raise ConfigError(f"{prefix}.measured_down", down, f"{len(up)} mean steps, as measured_up")
        for key in ("measured_up", "measured_down", "measured_up_std", "measured_down_std"):
            values = getattr(config, key)
            bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
            if bad:
                raise ConfigError(f"{prefix}.{key}", bad[0], "finite, non-negative steps (multiples of dw_min)")
            if key.endswith("_std") and values and len(values) != len(up):
                raise ConfigError(f"{prefix}.{key}", values, f"{len(up)} values (the grid of measured_up), or none")
        if not any(up) or not any(down):
            raise ConfigError(f"{prefix}.measured_{'up' if not any(up) else 'down'}", up if not any(up) else down,
                              "a table with some non-zero step (a device that moves)")

    def tables(self, config, like: Tensor) -> dict[str, Tensor | None]:
        """The tables as tensors on ``like``'s device and dtype (std tables None when absent)."""
        def tensor(values: list[float]) -> Tensor | None:
            return torch.tensor(values, dtype=like.dtype, device=like.device) if values else None
        return {"up": tensor(config.measured_up), "down": tensor(config.measured_down),
                "up_std": tensor(config.measured_up_std), "down_std": tensor(config.measured_down_std)}

    def change(self, config, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
               w_min: Tensor, w_max: Tensor) -> Tensor:
        return self._pulses(config, w, n, up, dw_up, dw_down, w_min, w_max, None, noisy=False) - w

    def respond(self, config, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
                w_min: Tensor, w_max: Tensor, generator: torch.Generator | None) -> Tensor:
        return self._pulses(config, w, n, up, dw_up, dw_down, w_min, w_max, generator, noisy=True)

    def mean_step(self, config, w: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor, w_min: Tensor,
                  w_max: Tensor) -> Tensor:
        """The signed mean step of one pulse at ``w`` (what the table says, before noise and clipping)."""
        t = self.tables(config, w)
        x = (w - w_min) / (w_max - w_min)
        return torch.where(up, interpolate(t["up"], x) * dw_up, -interpolate(t["down"], x) * dw_down)

    def _pulses(self, config, w, n, up, dw_up, dw_down, w_min, w_max, generator, noisy: bool) -> Tensor:
        t = self.tables(config, w)
        with_table_noise = noisy and t["up_std"] is not None
        relative_noise = noisy and not with_table_noise and bool(config.dw_min_std)
        per_device = {"up": up.to(w.dtype), "dw": torch.where(up, dw_up, dw_down), "w_min": w_min, "w_max": w_max}

        def step(cur: Tensor, d) -> Tensor:
            x = (cur - d["w_min"]) / (d["w_max"] - d["w_min"])
            is_up = d["up"] > 0
            mean = torch.where(is_up, interpolate(t["up"], x), interpolate(t["down"], x))
            if with_table_noise:
                std = torch.where(is_up, interpolate(t["up_std"], x), interpolate(t["down_std"], x))
                mean = mean + std * normal_like(cur, generator)
            elif relative_noise:
                mean = mean * (1 + config.dw_min_std * normal_like(cur, generator))
            return (2 * d["up"] - 1) * mean * d["dw"]

        return apply_pulses(w, n, per_device, step)


LAW = Measured()
