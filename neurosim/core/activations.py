"""Activation functions of the papers, written as rho(x) = f(gain * x + offset).

Splitting the affine part out lets the dynamics fold ``gain`` into one fused matrix product
(``torch.addmm(..., alpha=gain)``) and ``offset`` into the constant input drive, so a
relaxation step costs one matmul and one in-place nonlinearity per layer: at the papers'
batch size of 20 the per-op overhead, not the arithmetic, bounds the speed on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from neurosim.errors import ConfigError


@dataclass(frozen=True)
class Activation:
    name: str
    gain: float
    offset: float
    f: Callable[[Tensor], Tensor]
    """The nonlinearity, out of place (autograd-safe)."""
    apply_: Callable[[Tensor], Tensor]
    """The same, in place, for an already scaled and shifted pre-activation (hot loop)."""
    _prime: Callable[[Tensor], Tensor]
    _value_and_prime: Callable[[Tensor], tuple[Tensor, Tensor]]

    def __call__(self, x: Tensor) -> Tensor:
        """rho(x), differentiable (used by Phi, autograd checks and BPTT)."""
        return self.f(x * self.gain + self.offset)

    def prime(self, x: Tensor) -> Tensor:
        """rho'(x), the factor of the energy-based dynamics."""
        return self._prime(x)

    def value_and_prime(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """rho(x) and rho'(x) from one evaluation of the nonlinearity (the energy step needs both)."""
        return self._value_and_prime(x)


def _sigmoid_prime(x: Tensor) -> Tensor:
    r = torch.sigmoid(4.0 * x - 2.0)
    return 4.0 * r * (1.0 - r)


def _sigmoid_value_and_prime(x: Tensor) -> tuple[Tensor, Tensor]:
    r = torch.sigmoid(4.0 * x - 2.0)
    return r, (1.0 - r).mul_(r).mul_(4.0)


def _hard_sigmoid_value_and_prime(x: Tensor) -> tuple[Tensor, Tensor]:
    return x.clamp(0.0, 1.0), _hard_sigmoid_prime(x)


def _tanh_value_and_prime(x: Tensor) -> tuple[Tensor, Tensor]:
    r = torch.tanh(x)
    return r, 1.0 - r * r


def _hard_sigmoid_prime(x: Tensor) -> Tensor:
    # Closed interval, as the papers' code: with an open one a state starting at 0 never moves.
    return ((x >= 0) & (x <= 1)).to(x.dtype)


def _tanh_prime(x: Tensor) -> Tensor:
    return 1.0 - torch.tanh(x) ** 2


ACTIVATIONS: dict[str, Activation] = {
    # 1 / (1 + exp(-4 (x - 1/2))) = sigmoid(4x - 2): Ernoult et al. 2019, prototypical setting
    "sigmoid": Activation("sigmoid", 4.0, -2.0, torch.sigmoid, torch.sigmoid_, _sigmoid_prime,
                          _sigmoid_value_and_prime),
    # clamp(x, 0, 1): Scellier & Bengio 2017
    "hard_sigmoid": Activation("hard_sigmoid", 1.0, 0.0, lambda v: v.clamp(0.0, 1.0),
                                 lambda v: v.clamp_(0.0, 1.0), _hard_sigmoid_prime,
                                 _hard_sigmoid_value_and_prime),
    "tanh": Activation("tanh", 1.0, 0.0, torch.tanh, torch.tanh_, _tanh_prime, _tanh_value_and_prime),
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError("circuit.activation", name, "one of " + ", ".join(ACTIVATIONS)) from None
