"""The devices behind one weight tensor: per-device parameters drawn once, programming pulses.

A weight is stored as the state of one device, mapped linearly to the range [w_min, w_max].
An update Delta w is turned into a number of programming pulses, n = Delta w / dw_min, rounded
stochastically (an update smaller than one pulse happens with the matching probability: C-EP's
per-step updates are mostly far below one pulse) or deterministically (lost). The pulses then
move each device by its response law (``neurosim.hardware.responses``: closed forms over n
pulses of one sign, cycle-to-cycle noise whose variance adds over the n pulses); what is common
to every law is here: device-to-device variation (spread of dw_min, of the up/down asymmetry
and of the bounds, drawn once per device from the device seed), stuck devices that never move,
clipping at each device's bounds, write noise, differential pairs with refresh, and the pulse
counters (per device, up and down, for endurance and energy).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from neurosim.hardware.records import DeviceConfig
from neurosim.hardware.responses.base import normal_like, uniform_like


@dataclass
class DeviceArray:
    """The devices behind one weight tensor: per-device parameters, stuck mask and counters."""

    config: DeviceConfig
    dw_up: Tensor
    dw_down: Tensor
    w_min: Tensor
    w_max: Tensor
    stuck: Tensor
    pulses_up: Tensor
    pulses_down: Tensor
    hidden: Tensor | None = None
    """With write noise: the devices' true state (the weight tensor holds what the array presents)."""

    @classmethod
    def create(cls, config: DeviceConfig, weight: Tensor, index: int) -> DeviceArray:
        """Draw the device-to-device variation (reproducible from config.seed and the tensor's
        index) and put the initial weights into the device range; ``weight`` is edited in place."""
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + index)
        shape, kw = weight.shape, dict(dtype=torch.float64)

        def spread(rel: float) -> Tensor:
            return 1 + rel * torch.randn(shape, generator=g, **kw) if rel else torch.ones(shape, **kw)

        # a normal spread can draw a zero or negative step: keep every device movable (>= 1% of nominal),
        # as the bounds below, so that pulse counts stay finite
        dw = config.step * spread(config.dw_min_dtod).clamp_min(0.01)
        up_down = config.up_down + (config.up_down_dtod * torch.randn(shape, generator=g, **kw)
                                    if config.up_down_dtod else 0.0)
        up_down = torch.as_tensor(up_down, **kw).expand(shape).clamp(-0.99, 0.99)
        w_max = config.w_max * spread(_either(config.w_max_dtod, config.w_bounds_dtod)).clamp_min(0.01)
        w_min = config.w_min * spread(_either(config.w_min_dtod, config.w_bounds_dtod)).clamp_min(0.01)
        stuck = torch.rand(shape, generator=g, **kw) < config.stuck_fraction
        to = dict(device=weight.device, dtype=weight.dtype)
        array = cls(config, (dw * (1 + up_down)).to(**to), (dw * (1 - up_down)).to(**to), w_min.to(**to),
                    w_max.to(**to), stuck.to(weight.device),
                    torch.zeros(shape, dtype=torch.int64, device=weight.device),
                    torch.zeros(shape, dtype=torch.int64, device=weight.device))
        with torch.no_grad():
            weight.copy_(torch.minimum(torch.maximum(weight, array.w_min), array.w_max))
            if config.stuck_fraction:
                if config.stuck_at == "min":
                    stuck_value = array.w_min
                elif config.stuck_at == "max":
                    stuck_value = array.w_max
                else:
                    pick = torch.rand(shape, generator=g, **kw).to(weight.device) < 0.5
                    stuck_value = torch.where(pick, array.w_min, array.w_max)
                weight.copy_(torch.where(array.stuck, stuck_value, weight))
            if config.write_noise_std:
                array.hidden = weight.clone()
        return array

    @torch.no_grad()
    def apply(self, weight: Tensor, delta: Tensor, generator: torch.Generator | None) -> None:
        """Program ``delta`` (weight units) into the devices of ``weight`` (in place).

        Pulse counts need one pass over every device (and one random number each, for
        stochastic rounding); the step response then runs only on the devices that do get a
        pulse, which for C-EP's small per-step updates are few.
        """
        c = self.config
        # The controller knows only the nominal step: asymmetry and device-to-device spread then
        # bias the updates, as on a real array (aihwkit and NeuroSim count pulses the same way).
        count = delta.abs().mul_(1.0 / c.step)
        if c.rounding == "stochastic":
            count.add_(uniform_like(count, generator))
        count.floor_()
        index = count.view(-1).nonzero().squeeze(1)
        if self.config.stuck_fraction:
            index = index[~self.stuck.view(-1)[index]]
        if index.numel() == 0:
            return
        n = count.view(-1)[index]
        up = delta.reshape(-1)[index] > 0
        flat = (weight if self.hidden is None else self.hidden).view(-1)
        w_min, w_max = self.w_min.view(-1)[index], self.w_max.view(-1)[index]
        new = c.law.respond(c, flat[index], n, up, self.dw_up.view(-1)[index], self.dw_down.view(-1)[index],
                            w_min, w_max, generator)
        new = torch.minimum(torch.maximum(new, w_min), w_max)
        flat[index] = new
        if self.hidden is not None:  # the array presents the new state plus fresh write noise
            weight.view(-1)[index] = new + normal_like(new, generator) * (c.write_noise_std * c.step)
        counts = n.to(torch.int64)
        self.pulses_up.view(-1).index_add_(0, index[up], counts[up])
        self.pulses_down.view(-1).index_add_(0, index[~up], counts[~up])

    def state_dict(self) -> dict:
        return {"pulses_up": self.pulses_up, "pulses_down": self.pulses_down, "hidden": self.hidden}

    def load_state_dict(self, state: dict) -> None:
        self.pulses_up.copy_(state["pulses_up"])
        self.pulses_down.copy_(state["pulses_down"])
        if self.hidden is not None and state.get("hidden") is not None:
            self.hidden.copy_(state["hidden"])

    def pulse_totals(self) -> dict[str, float]:
        per_device = self.pulses_up + self.pulses_down
        return {"pulses_up": int(self.pulses_up.sum()), "pulses_down": int(self.pulses_down.sum()),
                "pulses_max_per_device": int(per_device.max()) if per_device.numel() else 0,
                "devices": per_device.numel()}


class DifferentialArray:
    """Weights stored as pairs, w = G+ - G-: two ``DeviceArray`` halves over [0, w_max], each moved
    by potentiation pulses only, with an optional refresh of pairs that approach saturation."""

    def __init__(self, config: DeviceConfig, weight: Tensor, index: int) -> None:
        half = dataclasses.replace(config, w_min=0.0, mapping="single")
        self.config = config
        with torch.no_grad():
            w = weight.clamp(-config.w_max, config.w_max)
            self.g_plus, self.g_minus = w.clamp(min=0), (-w).clamp(min=0)
        # separate d2d draws for the two devices of a pair (index and a shifted index)
        self.plus = DeviceArray.create(half, self.g_plus, index)
        self.minus = DeviceArray.create(half, self.g_minus, index + 500_009)
        self.refreshes = torch.zeros((), dtype=torch.int64, device=weight.device)
        self.refresh_pulses = torch.zeros((), dtype=torch.int64, device=weight.device)
        with torch.no_grad():
            weight.copy_(self.g_plus - self.g_minus)

    @torch.no_grad()
    def apply(self, weight: Tensor, delta: Tensor, generator: torch.Generator | None) -> None:
        self.plus.apply(self.g_plus, delta.clamp(min=0), generator)
        self.minus.apply(self.g_minus, delta.clamp(max=0).neg_(), generator)
        threshold = self.config.refresh_threshold
        if threshold is not None:
            full = (self.g_plus > threshold * self.plus.w_max) | (self.g_minus > threshold * self.minus.w_max)
            if bool(full.any()):
                self._refresh(full)
        torch.sub(self.g_plus, self.g_minus, out=weight)

    def _refresh(self, full: Tensor) -> None:
        hidden_plus = self.g_plus if self.plus.hidden is None else self.plus.hidden
        hidden_minus = self.g_minus if self.minus.hidden is None else self.minus.hidden
        w = (hidden_plus - hidden_minus)[full]
        for g, hidden, value in ((self.g_plus, self.plus.hidden, w.clamp(min=0)),
                                 (self.g_minus, self.minus.hidden, (-w).clamp(min=0))):
            g[full] = value
            if hidden is not None:
                hidden[full] = value
        self.refreshes += int(full.sum())
        step = self.config.step
        self.refresh_pulses += int(torch.ceil(w.abs() / step).sum()) + 2 * int(full.sum())  # write-back + 2 resets

    def state_dict(self) -> dict:
        return {"plus": self.plus.state_dict(), "minus": self.minus.state_dict(), "g_plus": self.g_plus,
                "g_minus": self.g_minus, "refreshes": self.refreshes, "refresh_pulses": self.refresh_pulses}

    def load_state_dict(self, state: dict) -> None:
        self.plus.load_state_dict(state["plus"])
        self.minus.load_state_dict(state["minus"])
        for key in ("g_plus", "g_minus", "refreshes", "refresh_pulses"):
            getattr(self, key).copy_(state[key])

    def pulse_totals(self) -> dict[str, float]:
        plus, minus = self.plus.pulse_totals(), self.minus.pulse_totals()
        up = plus["pulses_up"]
        down = minus["pulses_up"]  # a decrease of w is a potentiation of G-
        return {"pulses_up": up, "pulses_down": down + int(self.refresh_pulses),
                "pulses_max_per_device": max(plus["pulses_max_per_device"], minus["pulses_max_per_device"]),
                "devices": plus["devices"] + minus["devices"], "refreshes": int(self.refreshes)}


def create_array(config: DeviceConfig, weight: Tensor, index: int) -> DeviceArray | DifferentialArray:
    """The devices behind one weight tensor, in the config's mapping."""
    if config.mapping == "differential":
        return DifferentialArray(config, weight, index)
    return DeviceArray.create(config, weight, index)


def _either(value: float | None, default: float) -> float:
    return default if value is None else value
