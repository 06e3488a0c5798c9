"""Synaptic device models: what a requested weight change becomes on a physical device.

A weight is stored as the state of one device, mapped linearly to the range [w_min, w_max].
An update Delta w is turned into a number of programming pulses, n = Delta w / dw_min, rounded
stochastically (an update smaller than one pulse happens with the matching probability: C-EP's
per-step updates are mostly far below one pulse) or deterministically (lost). Each pulse then
moves the device by its step response:

- ``constant``: dw_up up, dw_down down, clipped at the bounds;
- ``soft_bounds``: up  dw_up (1 - w/w_max), down dw_down (1 - w/w_min) (aihwkit's SoftBounds);
- ``linear_step``: up dw_up (1 - gamma_up w/w_max), down dw_down (1 - gamma_down w/w_min) (aihwkit's
  LinearStep: a step that shrinks linearly with the state; gamma = 1 is ``soft_bounds``);
- ``exp_step``: aihwkit's ExpStep, a step dw_d max(1 - A_d exp(d gamma_d z), 0) with
  z = 2 a w / (w_max - w_min) + b and d = +1 up, -1 down (fits of ReRAM and PCM); it has no
  closed form over n pulses, so pulses are applied one at a time to the devices that get them;
- ``nonlinear``: the NeuroSim curves G(P) = B (1 - exp(-P/A)) + G_min over P = 0..states
  pulses, with A = a_up * states up and a mirrored curve with A = a_down * states down.

n pulses of one sign are applied in closed form (the three responses are all iterated maps
with a closed form), with cycle-to-cycle noise on the step whose variance adds over the n
pulses. Device-to-device variation (spread of dw_min, of the up/down asymmetry and of the
bounds) is drawn once per device from the device seed; stuck devices never move. Pulse counts
are kept per device, up and down, for endurance and energy.

The configuration is data (``devices/*.yaml``, each with its sources); this module only runs it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from neurosim.errors import ConfigError
from neurosim.schema import build, load_yaml

RESPONSES = ("constant", "soft_bounds", "linear_step", "exp_step", "nonlinear")
ROUNDING = ("stochastic", "deterministic")
STUCK_AT = ("min", "max", "random")
MAPPINGS = ("single", "differential")


@dataclass
class DeviceConfig:
    """One device type; every field can come from a preset and be overridden in a config."""

    name: str = "custom"
    """The preset's name (its file in ``devices/``)."""
    description: str = ""
    """One line saying what the device is."""
    source: str = ""
    """Where every number comes from (papers, tables, code and commits)."""
    ideal: bool = False
    """Ideal synapses: theta <- theta + lr Delta theta exactly (all other fields ignored)."""
    mapping: str = "single"
    """'single': one device per weight, its range mapped onto [w_min, w_max]; 'differential': a
    pair, w = G+ - G-, each device spanning [0, w_max] and moved by potentiation pulses only
    (G+ for increases, G- for decreases: the usual scheme for PCM and other one-directional
    devices)."""
    refresh_threshold: float | None = None
    """'differential' only: when either device of a pair passes this fraction of w_max, both are
    reset and the weight is written back onto one of them (aihwkit's OneSidedUnitCell refresh;
    the write-back is taken as exact and counted as pulses). null: no refresh."""
    response: str = "constant"
    """Step response to one pulse: 'constant', 'soft_bounds', 'linear_step', 'exp_step' or 'nonlinear'
    (NeuroSim's exponential conductance curve)."""
    w_min: float = -0.5
    w_max: float = 0.5
    """Weight range the device's conductance range maps to (weight units)."""
    states: int | None = None
    """Number of conductance steps between the bounds; sets dw_min = (w_max - w_min) / states."""
    dw_min: float = 0.001
    """Mean size of one pulse's step at w = 0 (weight units); ignored when ``states`` is set."""
    up_down: float = 0.0
    """Asymmetry: dw_up = dw_min (1 + up_down), dw_down = dw_min (1 - up_down). Pulse counts use
    the nominal dw_min (the controller does not know each device), so asymmetry and the
    device-to-device spreads bias the updates."""
    gamma_up: float = 1.0
    gamma_down: float = 1.0
    """``linear_step`` only: slope of the step size towards each bound (0: constant steps)."""
    exp_A_up: float = 0.0
    exp_A_down: float = 0.0
    exp_gamma_up: float = 0.0
    exp_gamma_down: float = 0.0
    exp_a: float = 0.0
    exp_b: float = 0.0
    """``exp_step`` only: aihwkit's A_up, A_down, gamma_up, gamma_down, a and b."""
    a_up: float = 1.0
    a_down: float = 1.0
    """``nonlinear`` only: A / states of the potentiation and depression curves (small: strongly
    nonlinear; large: nearly linear)."""
    dw_min_std: float = 0.0
    """Cycle-to-cycle noise: relative standard deviation of each pulse's step."""
    write_noise_std: float = 0.0
    """Write noise, in units of dw_min (aihwkit's definition): the weight the array presents is the
    device's hidden state plus a Gaussian redrawn each time the device is programmed; updates act
    on the hidden state, so the noise does not accumulate."""
    dw_min_dtod: float = 0.0
    up_down_dtod: float = 0.0
    w_bounds_dtod: float = 0.0
    """Device-to-device spreads (relative std of dw_min and of the bounds; absolute of up_down)."""
    w_min_dtod: float | None = None
    w_max_dtod: float | None = None
    """Separate spreads of the lower and upper bound, where a source gives two (else w_bounds_dtod)."""
    stuck_fraction: float = 0.0
    """Fraction of devices that never move (drawn once per device from ``seed``)."""
    stuck_at: str = "random"
    """Where stuck devices sit: 'min', 'max' or 'random' (either bound)."""
    rounding: str = "stochastic"
    """How a change of n pulses that is not whole is rounded: 'stochastic' (0.3 pulse happens with
    probability 0.3) or 'deterministic' (truncated: the fraction of a pulse is lost)."""
    energy_per_pulse: float = 0.0
    """Joules per programming pulse, for the energy estimate."""
    read_noise_std: float = 0.0
    """Read side (``neurosim.hardware.read_side``; also with ``ideal: true``, for ideal programming and
    imperfect reads): standard deviation of each read of a weight, in weight units, drawn anew
    at every use of the weight in the dynamics."""
    dac_bits: int | None = None
    """Resolution of the converters that drive neuron outputs (and pixels) onto the array."""
    adc_bits: int | None = None
    """Resolution of the converter that reads each neuron's input W u + b ..."""
    adc_range: float = 4.0
    """... over [-adc_range, adc_range] (pre-activation units; clipped outside)."""
    drift_nu: float = 0.0
    """Conductance drift after programming, G(t) = G(t0) (t / t0)^-nu (PCM: nu ~ 0.05)."""
    drift_nu_dtod: float = 0.0
    """Device-to-device spread of nu (absolute standard deviation)."""
    drift_t0: float = 1.0
    """Seconds after programming at which the programmed conductance is read as G(t0)."""
    seed: int = 0
    """Draws the device-to-device variation and stuck devices (pulse noise follows the run seed)."""

    @property
    def reads_ideally(self) -> bool:
        return not self.read_noise_std and self.dac_bits is None and self.adc_bits is None

    @property
    def step(self) -> float:
        return (self.w_max - self.w_min) / self.states if self.states else self.dw_min

    def validate(self, prefix: str = "synapses") -> None:
        for key in ("read_noise_std", "drift_nu", "drift_nu_dtod"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{prefix}.{key}", getattr(self, key), "a non-negative number")
        for key in ("dac_bits", "adc_bits"):
            bits = getattr(self, key)
            if bits is not None and not 1 <= bits <= 24:
                raise ConfigError(f"{prefix}.{key}", bits, "a converter resolution of 1 to 24 bits, or null")
        if not self.adc_range > 0:
            raise ConfigError(f"{prefix}.adc_range", self.adc_range, "a positive range")
        if not self.drift_t0 > 0:
            raise ConfigError(f"{prefix}.drift_t0", self.drift_t0, "a positive time in seconds")
        if self.ideal:
            return
        if self.response not in RESPONSES:
            raise ConfigError(f"{prefix}.response", self.response, "one of " + ", ".join(RESPONSES))
        if self.rounding not in ROUNDING:
            raise ConfigError(f"{prefix}.rounding", self.rounding, "one of " + ", ".join(ROUNDING))
        if self.stuck_at not in STUCK_AT:
            raise ConfigError(f"{prefix}.stuck_at", self.stuck_at, "one of " + ", ".join(STUCK_AT))
        if not self.w_min < 0 < self.w_max:
            raise ConfigError(f"{prefix}.w_min", [self.w_min, self.w_max], "w_min < 0 < w_max")
        if self.states is not None and self.states < 1:
            raise ConfigError(f"{prefix}.states", self.states, "a positive number of states")
        if not self.step > 0:
            raise ConfigError(f"{prefix}.dw_min", self.dw_min, "a positive step")
        if not -1 < self.up_down < 1:
            raise ConfigError(f"{prefix}.up_down", self.up_down, "an asymmetry in (-1, 1)")
        for key in ("dw_min_std", "write_noise_std", "dw_min_dtod", "up_down_dtod", "w_bounds_dtod",
                    "energy_per_pulse"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{prefix}.{key}", getattr(self, key), "a non-negative number")
        for key in ("w_min_dtod", "w_max_dtod"):
            if getattr(self, key) is not None and getattr(self, key) < 0:
                raise ConfigError(f"{prefix}.{key}", getattr(self, key), "a non-negative spread, or null")
        if self.response == "linear_step":
            for key in ("gamma_up", "gamma_down"):
                if not 0 <= getattr(self, key) <= 1:
                    raise ConfigError(f"{prefix}.{key}", getattr(self, key), "a slope in [0, 1] for linear_step")
        if self.mapping not in MAPPINGS:
            raise ConfigError(f"{prefix}.mapping", self.mapping, "one of " + ", ".join(MAPPINGS))
        if self.refresh_threshold is not None and not (self.mapping == "differential"
                                                       and 0 < self.refresh_threshold <= 1):
            raise ConfigError(f"{prefix}.refresh_threshold", self.refresh_threshold,
                              "a fraction in (0, 1] of w_max, with mapping differential (or null)")
        if not 0 <= self.stuck_fraction <= 1:
            raise ConfigError(f"{prefix}.stuck_fraction", self.stuck_fraction, "a fraction in [0, 1]")
        if self.response == "nonlinear":
            if not self.states:
                raise ConfigError(f"{prefix}.states", self.states, "a number of states for response nonlinear")
            for key in ("a_up", "a_down"):
                if not getattr(self, key) > 0:
                    raise ConfigError(f"{prefix}.{key}", getattr(self, key), "a positive curve constant")


def device_config(name: str, overrides: Mapping[str, Any] | None = None, prefix: str = "synapses") -> DeviceConfig:
    """A preset of ``devices/`` (or a YAML path) with ``overrides`` applied, validated."""
    import yaml

    from neurosim import presets as catalog

    path = catalog.find("devices", name)
    try:
        raw = load_yaml(Path(path).read_text()) or {}  # YAML 1.2 numbers, as config files
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "(file)", f"valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), type(raw).__name__, "a mapping of device parameters")
    raw.setdefault("name", Path(path).stem)
    config = build(DeviceConfig, {**raw, **dict(overrides or {})}, prefix)  # type-checked, keys named
    config.validate(prefix)
    return config


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
        w_max = config.w_max * spread(_pick(config.w_max_dtod, config.w_bounds_dtod)).clamp_min(0.01)
        w_min = config.w_min * spread(_pick(config.w_min_dtod, config.w_bounds_dtod)).clamp_min(0.01)
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
            count.add_(_uniform(count, generator))
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
        new = self._respond(flat[index], n, up, self.dw_up.view(-1)[index], self.dw_down.view(-1)[index],
                            w_min, w_max, generator)
        new = torch.minimum(torch.maximum(new, w_min), w_max)
        flat[index] = new
        if self.hidden is not None:  # the array presents the new state plus fresh write noise
            weight.view(-1)[index] = new + _normal(new, generator) * (c.write_noise_std * c.step)
        counts = n.to(torch.int64)
        self.pulses_up.view(-1).index_add_(0, index[up], counts[up])
        self.pulses_down.view(-1).index_add_(0, index[~up], counts[~up])

    def _respond(self, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor, w_min: Tensor,
                 w_max: Tensor, generator: torch.Generator | None) -> Tensor:
        """The weights after n pulses of the sign of ``up`` (closed form), with c2c noise."""
        c = self.config
        if c.response == "constant":
            change = torch.where(up, dw_up, -dw_down) * n
        elif c.response in ("soft_bounds", "linear_step"):
            # w_{k+1} = w_k + dw (1 - w_k/b) -> w_n = b - (b - w_0)(1 - dw/b)^n, with the bound b
            # at which the step vanishes: w_max / gamma (soft bounds: gamma = 1, b = w_max)
            gamma_up, gamma_down = (1.0, 1.0) if c.response == "soft_bounds" else (c.gamma_up, c.gamma_down)
            change_up = (_geometric(w, n, dw_up, w_max / gamma_up) if gamma_up else dw_up * n)
            change_down = (_geometric(w, n, -dw_down, w_min / gamma_down) if gamma_down else -dw_down * n)
            change = torch.where(up, change_up, change_down)
        elif c.response == "exp_step":
            return self._exp_steps(w, n, up, dw_up, dw_down, w_min, w_max, generator)
        else:  # nonlinear (NeuroSim): pulse number P on the curve of the pulse direction
            span = w_max - w_min
            x = ((w - w_min) / span).clamp(0, 1)  # normalised conductance
            states = float(c.states)
            a_up, a_down = c.a_up * states, c.a_down * states
            b_up = 1 / (1 - math.exp(-states / a_up))
            b_down = 1 / (1 - math.exp(-states / a_down))
            p_up = -a_up * torch.log1p(-(x / b_up).clamp(max=1 - 1e-12))
            x_up = b_up * (1 - torch.exp(-(p_up + n).clamp(max=states) / a_up))
            # depression mirrors the curve: 1 - x follows the same shape in the pulses applied
            p_down = -a_down * torch.log1p(-((1 - x) / b_down).clamp(max=1 - 1e-12))
            x_down = 1 - b_down * (1 - torch.exp(-(p_down + n).clamp(max=states) / a_down))
            change = (torch.where(up, x_up, x_down) - x) * span
        if c.dw_min_std:
            mean_step = torch.where(up, dw_up, dw_down)
            change = change + _normal(w, generator) * (c.dw_min_std * mean_step * n.sqrt())
        return w + change

    def state_dict(self) -> dict:
        return {"pulses_up": self.pulses_up, "pulses_down": self.pulses_down, "hidden": self.hidden}

    def load_state_dict(self, state: dict) -> None:
        self.pulses_up.copy_(state["pulses_up"])
        self.pulses_down.copy_(state["pulses_down"])
        if self.hidden is not None and state.get("hidden") is not None:
            self.hidden.copy_(state["hidden"])

    def _exp_steps(self, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor, w_min: Tensor,
                   w_max: Tensor, generator: torch.Generator | None) -> Tensor:
        """Pulse by pulse (no closed form), each with its c2c noise, clipped at the bounds."""
        c = self.config
        sign = torch.where(up, 1.0, -1.0).to(w.dtype)
        dw = torch.where(up, dw_up, dw_down)
        big_a = torch.where(up, c.exp_A_up, c.exp_A_down).to(w.dtype)
        gamma = torch.where(up, c.exp_gamma_up, c.exp_gamma_down).to(w.dtype)
        span = w_max - w_min
        w = w.clone()
        for k in range(int(n.max())):
            active = n > k
            z = 2 * c.exp_a * w / span + c.exp_b
            step = dw * (1 - big_a * torch.exp(sign * gamma * z)).clamp_min(0)
            if c.dw_min_std:
                step = step * (1 + c.dw_min_std * _normal(w, generator))
            w = torch.where(active, (w + sign * step).clamp(w_min, w_max), w)
        return w

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


def _geometric(w: Tensor, n: Tensor, step: Tensor, bound: Tensor) -> Tensor:
    """Change after n steps of w += step (1 - w / bound): bound - w - (bound - w)(1 - step/bound)^n."""
    return (bound - w) * (1 - (1 - step / bound).clamp_min(0) ** n)


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


def _uniform(like: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None or generator.device == like.device:
        return torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return torch.rand(like.shape, generator=generator, dtype=like.dtype).to(like.device)


def _normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None or generator.device == like.device:
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)


def pulse_response(config: DeviceConfig, devices: int = 5, seed: int = 0) -> tuple[list[int], Tensor]:
    """Weights of ``devices`` devices driven from w_min by as many up pulses as the range holds,
    then as many down pulses: the curve a datasheet shows ([devices, 2 * pulses + 1]). For a
    differential pair, the curve of one device of the pair over [0, w_max]."""
    if config.mapping == "differential":
        config = dataclasses.replace(config, w_min=0.0, mapping="single", refresh_threshold=None)
    n = round((config.w_max - config.w_min) / config.step)
    w = torch.full((devices,), config.w_min, dtype=torch.float64)
    array = DeviceArray.create(dataclasses.replace(config, stuck_fraction=0.0), w, 0)
    g = torch.Generator().manual_seed(seed)
    trace = [w.clone()]
    for up in [True] * n + [False] * n:
        array.apply(w, torch.full_like(w, config.step if up else -config.step), g)  # one pulse per device
        trace.append(w.clone())
    return list(range(2 * n + 1)), torch.stack(trace, 1)


def plot_pulse_response(config: DeviceConfig, path: Path, devices: int = 5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurosim.io import atomic_write

    pulses, traces = pulse_response(config, devices)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for row in traces:
        ax.plot(pulses, row.tolist(), lw=1)
    ax.axvline(len(pulses) // 2, color="gray", ls=":", lw=0.8)
    ax.set_xlabel("pulse number (up, then down)")
    ax.set_ylabel("weight")
    pair = ", one device of each G+/G- pair" if config.mapping == "differential" else ""
    ax.set_title(f"{config.name}: {config.response}, {devices} devices{pair}", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)


def describe(config: DeviceConfig) -> str:
    """A preset as text: every parameter, then its sources."""
    if config.ideal:
        return f"{config.name}: {config.description}\nsource: {config.source}"
    lines = [f"{config.name}: {config.description}"]
    for f in dataclasses.fields(config):
        if f.name not in ("name", "description", "source"):
            lines.append(f"  {f.name:<16} {getattr(config, f.name)}")
    lines.append(f"  {'step (derived)':<16} {config.step:.6g}")
    lines.append(f"source: {config.source}")
    return "\n".join(lines)
