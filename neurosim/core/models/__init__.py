"""Discrete-time models: dynamics plus parameters (see base.LayeredModel for the interface)."""

from __future__ import annotations

import torch

from neurosim.core.activations import get_activation
from neurosim.config import CircuitConfig
from neurosim.core.models.base import LayeredModel, State
from neurosim.core.models.continuous import ContinuousModel
from neurosim.core.models.convolutional import ConvolutionalModel
from neurosim.core.models.energy import EnergyModel
from neurosim.core.models.prototypical import PrototypicalModel
from neurosim.core.models.toy import ToyModel
from neurosim.core.models.vector_field import VectorFieldModel

__all__ = ["ContinuousModel", "ConvolutionalModel", "EnergyModel", "LayeredModel", "PrototypicalModel", "State", "ToyModel", "VectorFieldModel", "build_model"]


def build_model(circuit: CircuitConfig, generator: torch.Generator, dtype: torch.dtype = torch.float32,
                device: str | torch.device = "cpu") -> LayeredModel:
    """The model a circuit describes, with weights drawn from ``generator`` (CPU, float64 draws,
    so a seed gives the same initial network on every device and dtype)."""
    activation = get_activation(circuit.activation)
    common = dict(dtype=dtype, device=device, init_gain=circuit.init_gain)
    if circuit.dynamics == "prototypical":
        return PrototypicalModel(circuit.layers, activation, generator, dt=circuit.dt, **common)
    if circuit.dynamics == "convolutional":
        return ConvolutionalModel(circuit.input_shape, circuit.conv, circuit.layers, activation, generator,
                                  dt=circuit.dt, **common)
    if circuit.dynamics == "vector_field":
        return VectorFieldModel(circuit.layers, activation, generator, dt=circuit.dt,
                                initial_angle=circuit.initial_angle, **common)
    if circuit.dynamics == "energy":
        return EnergyModel(circuit.layers, activation, generator, eps=circuit.eps, clamp=circuit.clamp, **common)
    if circuit.dynamics == "continuous":
        return ContinuousModel(circuit.layers, activation, generator, eps=circuit.eps, clamp=circuit.clamp, **common)
    if circuit.dynamics == "toy":
        return ToyModel(circuit.layers, activation, generator, eps=circuit.eps, **common)
    raise ValueError(f"unknown dynamics {circuit.dynamics!r}")  # config validation prevents this
