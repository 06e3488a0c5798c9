"""Device records: one device type as data (``DeviceConfig``), and the presets that hold them.

A record is what a preset file (``presets/devices/*.yaml``) or ``synapses.params`` sets, one flat
key per field, each documented where it is declared (the device catalog, reference/devices.md,
is generated from these docstrings). The fields common to every device live here; the fields of
one response law (``gamma_up``, ``exp_A_up``, ``a_up``, ...) live with that law in
``neurosim.hardware.responses`` and reach DeviceConfig by inheritance, so the keys stay flat and
every preset written before keeps loading.

``device_config`` reads, builds and validates a preset once per (file, overrides) in a process:
config validation, network assembly and the spiking backend's check all ask for the same
records, and get copies of one validated record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from neurosim.errors import ConfigError
from neurosim.hardware.responses import ResponseLaw, law, names, parameter_classes
from neurosim.schema import build, load_yaml

RESPONSES = names()
ROUNDING = ("stochastic", "deterministic")
STUCK_AT = ("min", "max", "random")
MAPPINGS = ("single", "differential")


@dataclass
class DeviceIdentity:
    """What a device is, how weights map onto it, its law and its nominal step (DeviceConfig's first fields)."""

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
    """Step response to one pulse: 'constant', 'soft_bounds', 'linear_step', 'exp_step', 'nonlinear'
    (NeuroSim's exponential conductance curve) or 'measured' (a look-up table of mean steps, as
    ``neurosim devices fit`` builds from measurements); each law is a module of
    ``neurosim.hardware.responses``."""
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


@dataclass
class DeviceConfig(*reversed(parameter_classes()), DeviceIdentity):
    """One device type; every field can come from a preset and be overridden in a config.

    Fields in order: ``DeviceIdentity``'s, then each response law's parameters (in registry
    order), then the noise, variation, faults, read side and drift below.
    """

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
    endurance: float | None = None
    """Programming pulses a device survives (the datasheet's endurance, in cycles or pulses as its
    source states), for comparing a training's pulses per device against it; null: not stated."""
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

    @property
    def law(self) -> ResponseLaw:
        """The response law of ``response`` (``neurosim.hardware.responses``)."""
        return law(self.response)

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
        response = law(self.response, f"{prefix}.response")
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
        if self.endurance is not None and not self.endurance > 0:
            raise ConfigError(f"{prefix}.endurance", self.endurance, "a positive number of pulses, or null")
        for key in ("w_min_dtod", "w_max_dtod"):
            if getattr(self, key) is not None and getattr(self, key) < 0:
                raise ConfigError(f"{prefix}.{key}", getattr(self, key), "a non-negative spread, or null")
        if self.mapping not in MAPPINGS:
            raise ConfigError(f"{prefix}.mapping", self.mapping, "one of " + ", ".join(MAPPINGS))
        if self.refresh_threshold is not None and not (self.mapping == "differential"
                                                       and 0 < self.refresh_threshold <= 1):
            raise ConfigError(f"{prefix}.refresh_threshold", self.refresh_threshold,
                              "a fraction in (0, 1] of w_max, with mapping differential (or null)")
        if not 0 <= self.stuck_fraction <= 1:
            raise ConfigError(f"{prefix}.stuck_fraction", self.stuck_fraction, "a fraction in [0, 1]")
        response.validate(self, prefix)


_RECORDS: dict[tuple, DeviceConfig] = {}
"""Validated records by (resolved file, its mtime and size, overrides): a file edited between
two runs of one process is read again."""
_MAX_RECORDS = 512


def device_config(name: str, overrides: Mapping[str, Any] | None = None, prefix: str = "synapses") -> DeviceConfig:
    """A preset of ``devices/`` (or a YAML path) with ``overrides`` applied, validated.

    The file is read, built and validated once per (file, overrides); every call returns a copy
    of that record (callers may ``dataclasses.replace`` or edit their copy freely). ``prefix`` only
    names the keys in errors, so it is not part of the cache key.
    """
    from neurosim import presets as catalog

    path = Path(catalog.find("devices", name))
    overrides = dict(overrides or {})
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size,
           tuple(sorted((str(k), repr(v)) for k, v in overrides.items())))
    record = _RECORDS.get(key)
    if record is None:
        record = _load(path, overrides, prefix)
        if len(_RECORDS) >= _MAX_RECORDS:
            _RECORDS.clear()
        _RECORDS[key] = record
    return dataclasses.replace(record)


def clear_cache() -> None:
    """Forget the loaded records (the next ``device_config`` reads its file again)."""
    _RECORDS.clear()


def _load(path: Path, overrides: dict[str, Any], prefix: str) -> DeviceConfig:
    import yaml

    try:
        raw = load_yaml(path.read_text()) or {}  # YAML 1.2 numbers, as config files
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "(file)", f"valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), type(raw).__name__, "a mapping of device parameters")
    raw.setdefault("name", path.stem)
    config = build(DeviceConfig, {**raw, **overrides}, prefix)  # type-checked, keys named
    config.validate(prefix)
    return config


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
