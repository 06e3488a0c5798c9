"""``exp_step``: aihwkit's ExpStep, fitted to ReRAM and PCM measurements.

A pulse of direction d (+1 up, -1 down) moves the device by dw_d max(1 - A_d exp(d gamma_d z), 0)
with z = 2 a w / (w_max - w_min) + b. The map has no closed form over n pulses, so the pulses
are applied one at a time, each with its own cycle-to-cycle noise and clipped at the bounds, to
the devices that get them. The spiking backend refuses it (its writes need a closed form).
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from neurosim.hardware.responses.base import ResponseLaw, apply_pulses, compile_elementwise, normal_like


@dataclass
class ExpStepParams:
    """The parameters of ``exp_step`` (flat keys of a preset)."""

    exp_A_up: float = 0.0
    exp_A_down: float = 0.0
    exp_gamma_up: float = 0.0
    exp_gamma_down: float = 0.0
    exp_a: float = 0.0
    exp_b: float = 0.0
    """``exp_step`` only: aihwkit's A_up, A_down, gamma_up, gamma_down, a and b."""


class ExpStep(ResponseLaw):
    name = "exp_step"
    params = ExpStepParams
    pulse_by_pulse = True
    brian2_refusal = "has no closed form over n pulses; torch only"

    def change(self, config, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
               w_min: Tensor, w_max: Tensor) -> Tensor:
        """n noise-free pulses, one at a time (clipped at the bounds after each)."""
        return self._pulses(config, w, n, up, dw_up, dw_down, w_min, w_max, None, noisy=False) - w

    def respond(self, config, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
                w_min: Tensor, w_max: Tensor, generator: torch.Generator | None) -> Tensor:
        """Pulse by pulse, each with its c2c noise, clipped at the bounds."""
        return self._pulses(config, w, n, up, dw_up, dw_down, w_min, w_max, generator, noisy=True)

    def compiled_respond(self, config):
        c = config
        return compile_elementwise(_COMPILED, _build), (float(c.exp_A_up), float(c.exp_A_down), float(c.exp_gamma_up),
                                                         float(c.exp_gamma_down), float(c.exp_a), float(c.exp_b))

    def _pulses(self, config, w, n, up, dw_up, dw_down, w_min, w_max, generator, noisy: bool) -> Tensor:
        c = config
        noise = noisy and bool(c.dw_min_std)
        per_device = {"span": w_max - w_min, "w_min": w_min, "w_max": w_max}
        direction = None if not up.numel() else True if bool(up.all()) else False if not bool(up.any()) else None
        if direction is None:  # both directions: each device its own
            per_device |= {"sign": torch.where(up, 1.0, -1.0).to(w.dtype), "dw": torch.where(up, dw_up, dw_down),
                           # in w's dtype from the start: torch.where of two floats is float32, which
                           # rounded a float64 run's parameters
                           "big_a": torch.where(up, w.new_tensor(c.exp_A_up), w.new_tensor(c.exp_A_down)),
                           "gamma": torch.where(up, w.new_tensor(c.exp_gamma_up), w.new_tensor(c.exp_gamma_down))}
            fixed = {}
        else:  # one direction for all (a SET-only pair's devices, always): its constants as numbers
            per_device["dw"] = dw_up if direction else dw_down
            fixed = {"sign": 1.0 if direction else -1.0,
                     "big_a": c.exp_A_up if direction else c.exp_A_down,
                     "gamma": c.exp_gamma_up if direction else c.exp_gamma_down}

        def step(cur: Tensor, d) -> Tensor:
            d = fixed | d
            z = 2 * c.exp_a * cur / d["span"] + c.exp_b
            size = d["dw"] * (1 - d["big_a"] * torch.exp(d["sign"] * d["gamma"] * z)).clamp_min(0)
            if noise:
                size = size * (1 + c.dw_min_std * normal_like(cur, generator))
            return d["sign"] * size

        return apply_pulses(w, n, per_device, step)


LAW = ExpStep()


_COMPILED: dict = {}


def _build(njit):
    @njit(nogil=True, inline="always")
    def respond(w, n, up, dw_up, dw_down, w_min, w_max, dw_min_std, constants):
        """``ExpStep.respond`` of one device: its n pulses one at a time, each step's size with
        its own multiplicative c2c noise (numba's generator, seeded by the write), clipped at the
        bounds after each; returns the state after them."""
        a_up, a_down, g_up, g_down, exp_a, exp_b = constants
        if up:
            sign, dw, big_a, gamma = 1.0, dw_up, a_up, g_up
        else:
            sign, dw, big_a, gamma = -1.0, dw_down, a_down, g_down
        lo, hi = w_min, w_max
        span = hi - lo
        cur = np.float64(w)
        for _ in range(int(n)):
            z = 2 * exp_a * cur / span + exp_b
            size = dw * max(1 - big_a * math.exp(sign * gamma * z), 0.0)
            if dw_min_std:
                size *= 1 + dw_min_std * np.random.standard_normal()
            cur = min(max(cur + sign * size, lo), hi)
        return cur
    return respond
