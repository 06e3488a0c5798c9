"""What a response law is: the contract every module of ``responses/`` fulfils.

A response law says how one programming pulse moves a device, as a function of its state. The
rest of a device (pulse counting and rounding, device-to-device spreads, stuck devices, bounds,
write noise, differential pairs, counters) is the same for every law and lives in
``neurosim.hardware.arrays``; a law holds only what differs between laws, in one place, so that a
new law is one module (plus its line in the registry and its tests):

- ``params``: a dataclass of the law's own preset keys, each with a docstring. They stay flat
  keys of a preset and of ``synapses.params`` (``gamma_up: 0.5``): ``DeviceConfig`` inherits
  every law's parameters, so presets and configs written before the laws had modules still load,
  and the device catalog documents each key from its own docstring.
- ``validate``: the checks of those parameters (the common ones are DeviceConfig's).
- ``change``: the closed form of n pulses of one sign, the torch arithmetic the arrays run on
  the devices that get pulses; ``respond`` adds the cycle-to-cycle noise, whose variance adds
  over the n pulses. A law without a closed form (``pulse_by_pulse``) overrides ``respond``.
- ``brian2_update``: the same arithmetic as Brian2 abstract code for the spiking backend's
  event-driven writes (``neurosim.backends.brian2.devices``), or None where the law has no event
  form (the backend then refuses it with ``brian2_refusal``); ``brian2_functions``: the helper
  functions that code calls, as numpy and C++ implementations (declared here as plain data, so
  that the hardware layer does not import Brian2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import Tensor


@dataclass(frozen=True)
class Brian2Function:
    """A function the Brian2 write code of a law calls: ``name(args...)`` in abstract code, with
    a numpy implementation (numpy target) and a C++ one (cpp_standalone). The spiking backend
    turns it into a ``brian2.Function``."""

    name: str
    python: Callable[..., Any]
    cpp: str
    """C++ source defining ``cpp_name``."""
    cpp_name: str
    arg_count: int
    stateless: bool = True
    """False for functions that draw random numbers."""


class ResponseLaw:
    """One response law; subclasses set ``name`` (the preset's ``response``) and override what
    differs. Instances are stateless: the parameters are read from the DeviceConfig each call."""

    name: ClassVar[str] = ""
    params: ClassVar[type | None] = None
    """Dataclass of the law's own preset keys (None: the law has none)."""
    pulse_by_pulse: ClassVar[bool] = False
    """True for a law without a closed form over n pulses: ``respond`` applies them one at a time."""
    brian2_refusal: ClassVar[str] = ""
    """Why the spiking backend cannot run this law (completing "exp_step ..."); empty: it can, and
    ``brian2_update`` returns its code (it returns None exactly when this is set)."""

    def validate(self, config: Any, prefix: str) -> None:
        """Raise ConfigError, naming ``prefix.key``, on a bad value of the law's parameters."""

    def change(self, config: Any, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
               w_min: Tensor, w_max: Tensor) -> Tensor:
        """Noise-free change of the weights ``w`` after ``n`` pulses (float, >= 1) of the sign of
        ``up``; dw_up, dw_down, w_min and w_max are the per-device parameters of the same devices."""
        raise NotImplementedError

    def respond(self, config: Any, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
                w_min: Tensor, w_max: Tensor, generator: torch.Generator | None) -> Tensor:
        """The weights after n pulses, with cycle-to-cycle noise: the n steps' noises are
        independent, so their variance adds (std dw_min_std * mean step * sqrt(n)). The arrays
        clip the result at each device's bounds."""
        change = self.change(config, w, n, up, dw_up, dw_down, w_min, w_max)
        if config.dw_min_std:
            mean_step = torch.where(up, dw_up, dw_down)
            change = change + normal_like(w, generator) * (config.dw_min_std * mean_step * n.sqrt())
        return w + change

    def compiled(self, config: Any) -> tuple[Callable[..., Any], tuple[float, ...]] | None:
        """The law's ``change`` compiled for the CPU writes of ``neurosim.hardware.pulse_kernels``:
        (function, parameters), the function a numba one of a single device, (w, n, up, dw_up,
        dw_down, w_min, w_max, parameters) to its noise-free change, as ``change`` gives it for
        that device (the parameters passed as one tuple). The write runs it inside its one
        compiled pass over the programmed devices (reads, this change, the cycle-to-cycle noise
        as ``respond`` adds it, bounds, write noise, counters). None: the torch ``change`` and
        ``respond`` run (laws without a closed form; a compiled form is an optimisation, held
        equal to ``change`` by tests/hardware/test_pulse_kernels.py)."""
        return None

    def compiled_respond(self, config: Any) -> tuple[Callable[..., Any], tuple[float, ...]] | None:
        """For a law whose noise is not ``respond``'s (a pulse-by-pulse law with noise at every
        pulse): its ``respond`` of one device compiled, (function, parameters), the function a
        numba one taking (w, n, up, dw_up, dw_down, w_min, w_max, dw_min_std, parameters) and
        returning the state after the pulses, noise included (drawn from numba's generator,
        which the write seeds once from the run's generator). None: ``compiled`` or torch."""
        return None

    def brian2_update(self, config: Any) -> list[str] | None:
        """Brian2 abstract code setting ``dev_new``, the weight after ``dev_n`` pulses of the sign
        ``dev_up`` (1 up, 0 down), from ``w`` and the per-device ``dw_up``, ``dw_down``, ``w_lo``,
        ``w_hi``; the caller adds the c2c noise, the clipping and the counters. None: no event form."""
        return None

    def brian2_functions(self) -> list[Brian2Function]:
        """The functions ``brian2_update``'s code calls."""
        return []


def geometric_change(w: Tensor, n: Tensor, step: Tensor, bound: Tensor) -> Tensor:
    """Change after n steps of w += step (1 - w / bound): bound - w - (bound - w)(1 - step/bound)^n."""
    return (bound - w) * (1 - (1 - step / bound).clamp_min(0) ** n)


def uniform_like(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) numbers shaped as ``like``, from ``generator`` (drawn on its device and
    moved, when it lives elsewhere: a CPU generator keeps CUDA runs reproducible against CPU)."""
    if generator is None or generator.device == like.device:
        return torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return torch.rand(like.shape, generator=generator, dtype=like.dtype).to(like.device)


def normal_like(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal numbers shaped as ``like`` (as ``uniform_like``)."""
    if generator is None or generator.device == like.device:
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)


StepFunction = Callable[[Tensor, Mapping[str, Tensor]], Tensor]
"""One pulse of a law without a closed form: the signed step of each device at state ``cur``
(noise included), from the per-device tensors of the working set (``sign``, ``w_min``,
``w_max`` and the law's own)."""


def apply_pulses(w: Tensor, n: Tensor, per_device: Mapping[str, Tensor], step: StepFunction) -> Tensor:
    """The weights after n pulses applied one at a time, each clipped at the device's bounds.

    Pulse k goes to the devices with n > k only: after each pulse the devices done drop out of
    the working set, so a write costs the sum of its pulse counts, not n.max() times the devices
    programmed (most get one pulse, a few many). ``per_device`` holds tensors shaped as ``w``
    (at least ``w_min`` and ``w_max``), subset with the working set and handed to ``step``; a law
    that draws noise draws it inside ``step``, one number per device of the working set.
    """
    out = w.clone()
    if n.numel() == 0:
        return out
    names = list(per_device)
    values = [per_device[k] for k in names]
    where = None  # positions in ``out`` of the working set (None: all of it)
    cur = out.clone()
    for k in range(int(n.max())):
        if k:
            left = n > k
            if not bool(left.all()):
                done = ~left
                if where is None:
                    out[done] = cur[done]
                    where = left.nonzero().squeeze(1)
                else:
                    out[where[done]] = cur[done]
                    where = where[left]
                cur, n = cur[left], n[left]
                values = [t[left] for t in values]
        d = dict(zip(names, values))
        cur = (cur + step(cur, d)).clamp(d["w_min"], d["w_max"])
    if where is None:
        return cur
    out[where] = cur
    return out


def compile_elementwise(cache: dict, build: Callable[[Any], Callable[..., Any]]) -> Callable[..., Any]:
    """A law's compiled function (``ResponseLaw.compiled``'s per-device change or
    ``compiled_respond``'s array function), built once per process by ``build(njit)`` (numba is
    imported here, on first use, not when the law's module is)."""
    if "function" not in cache:
        from numba import njit

        cache["function"] = build(njit)
    return cache["function"]
