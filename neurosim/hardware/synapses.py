"""Applying an update to the synapses: ideal, or through a simulated device.

Every estimator hands its updates to ``Synapses.apply`` instead of writing into the weights
itself: this is the single place where device models (finite pulses, asymmetric and nonlinear
conductance steps, noise, faults; ``neurosim.hardware.devices``) replace the ideal rule
theta <- theta + lr * Delta theta. C-EP and C-VF call it at every nudged step, EP once per batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurosim.hardware.arrays import Change, OuterProduct
from neurosim.hardware.devices import DeviceArray, DeviceConfig, DifferentialArray, create_array
from neurosim.hardware.read_side import ReadSide


@torch.no_grad()
def apply_updates(groups: list[list[nn.Parameter]], updates: list[list[Tensor]], lrs: list[float]) -> None:
    """Ideal synapses: theta <- theta + lr * Delta theta, with one learning rate per group."""
    for params, deltas, lr in zip(groups, updates, lrs, strict=True):
        for p, d in zip(params, deltas, strict=True):
            p.add_(d.materialize() if isinstance(d, OuterProduct) else d, alpha=lr)


class Synapses:
    """Ideal synapses (the default): exactly ``apply_updates``."""

    ideal = True

    def apply(self, groups: list[list[nn.Parameter]], updates: list[list[Tensor]], lrs: list[float]
              ) -> dict[int, Change]:
        """Apply the updates; returns, per ``id(param)`` of each weight stored on devices, what the
        write did (``arrays.Change``): empty for ideal synapses, which change by exactly lr x update."""
        apply_updates(groups, updates, lrs)
        return {}

    def report(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class DeviceSynapses(Synapses):
    """Weight matrices and kernels stored on devices (one device type per weight layer); biases
    stay ideal (they are usually digital on a chip, and a device there would only add a second,
    untested mapping). Optionally a ``ReadSide`` that the model uses at every weight read."""

    ideal = False

    def __init__(self, configs: list[DeviceConfig], groups: list[list[nn.Parameter]], seed: int,
                 read_side: ReadSide | None = None) -> None:
        self.configs = configs
        self.arrays: dict[int, DeviceArray | DifferentialArray] = {}
        index = 0  # counts every weight tensor, so a layer's d2d draw does not depend on the others' devices
        for config, params in zip(configs, groups, strict=True):
            for p in params:
                if p.dim() < 2:
                    continue
                if not config.ideal:
                    self.arrays[id(p)] = create_array(config, p.data, index)
                index += 1
        device = groups[0][0].device if groups and groups[0] else torch.device("cpu")
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.read_side = read_side

    @torch.no_grad()
    def apply(self, groups: list[list[nn.Parameter]], updates: list[list[Tensor]], lrs: list[float]
              ) -> dict[int, Change]:
        changes: dict[int, Change] = {}
        for params, deltas, lr in zip(groups, updates, lrs, strict=True):
            for p, d in zip(params, deltas, strict=True):
                array = self.arrays.get(id(p))
                if array is None:
                    p.add_(d.materialize() if isinstance(d, OuterProduct) else d, alpha=lr)
                else:  # the rate is folded into the pulse count (one pass, not a scaled copy first)
                    changes[id(p)] = array.apply(p.data, d, self.generator, scale=lr)
        return changes

    def report(self) -> dict[str, float]:
        """Programming pulses (total, up, down, max per device) and the energy estimate."""
        totals = [a.pulse_totals() for a in self.arrays.values()]
        up = sum(t["pulses_up"] for t in totals)
        down = sum(t["pulses_down"] for t in totals)
        devices = sum(t["devices"] for t in totals)
        return {"pulses": up + down, "pulses_up": up, "pulses_down": down,
                "pulses_per_device_mean": (up + down) / devices if devices else 0.0,
                "pulses_per_device_max": max((t["pulses_max_per_device"] for t in totals), default=0),
                "energy_joules": sum((t["pulses_up"] + t["pulses_down"]) * a.config.energy_per_pulse
                                     for t, a in zip(totals, self.arrays.values())),
                **({"refreshes": sum(t["refreshes"] for t in totals if "refreshes" in t)}
                   if any("refreshes" in t for t in totals) else {})}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "arrays": [a.state_dict() for a in self.arrays.values()],
                **({"read_side": self.read_side.state_dict()} if self.read_side is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.generator.set_state(state["generator"])
        if "arrays" in state:
            for a, saved in zip(self.arrays.values(), state["arrays"], strict=True):
                a.load_state_dict(saved)
        else:  # checkpoints written before arrays saved their own state: counters only
            for a, up, down in zip(self.arrays.values(), state["pulses_up"], state["pulses_down"], strict=True):
                a.load_state_dict({"pulses_up": up, "pulses_down": down})
        if self.read_side is not None:
            self.read_side.load_state_dict(state.get("read_side", {}))
