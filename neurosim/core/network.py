"""From a validated config to live objects: torch settings, model, cost and estimator."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from neurosim.config import Config
from neurosim.errors import ConfigError
from neurosim.core.estimators import Estimator, build_estimator
from neurosim.core.losses import Cost, MSECost, SoftmaxCrossEntropyCost
from neurosim.core.models import LayeredModel, build_model
from neurosim.hardware.read_side import LayerRead, ReadSide
from neurosim.hardware.synapses import DeviceSynapses, Synapses

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Network:
    model: LayeredModel
    cost: Cost
    estimator: Estimator
    synapses: Synapses = field(default_factory=Synapses)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "cost": self.cost.state_dict(),
                "synapses": self.synapses.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.cost.load_state_dict(state["cost"])
        self.synapses.load_state_dict(state.get("synapses", {}))


def configure_torch(config: Config) -> tuple[torch.device, torch.dtype]:
    """Apply the compute section; returns the torch device and dtype to build on."""
    compute = config.compute
    if compute.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("compute.device", compute.device, "'cpu': this machine has no CUDA GPU")
    if compute.threads:
        torch.set_num_threads(compute.threads)
    # Subnormal floats appear as sigmoid states saturate and slow CPU arithmetic several-fold.
    # numpy caches its float limits on first use and warns if they are computed while flushing.
    import numpy

    numpy.finfo(numpy.float32), numpy.finfo(numpy.float64)
    torch.set_flush_denormal(True)
    return torch.device(compute.device), DTYPES[compute.dtype]


def build_network(config: Config, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> Network:
    """Model, cost and estimator of a config, initialised from its seed."""
    generator = torch.Generator().manual_seed(config.seed)
    circuit = config.circuit
    if config.loss == "cross_entropy":
        if len(circuit.layers) < (1 if circuit.convolutional else 3):
            raise ConfigError("circuit.layers", circuit.layers,
                              "at least 3 sizes with loss cross_entropy (the last is the read-out)")
        dynamic = type(circuit)(**{**circuit.__dict__, "layers": circuit.layers[:-1],
                                   "init_gain": (circuit.init_gain or [])[:-1] or None})
        model = build_model(dynamic, generator, dtype, device)
        cost: Cost = SoftmaxCrossEntropyCost(model.sizes[-1], circuit.layers[-1], generator, dtype, device)
    else:
        model = build_model(circuit, generator, dtype, device)
        cost = MSECost()
    synapses = build_synapses(config, model, model.param_groups() + cost.param_groups())
    model.read_side = getattr(synapses, "read_side", None)
    model.fused = config.compute.fused
    return Network(model, cost, build_estimator(model, cost, config.estimator, synapses), synapses)


def build_synapses(config: Config, model: LayeredModel, groups: list[list[nn.Parameter]]) -> Synapses:
    """Ideal synapses, or the devices of ``config.synapses`` behind the weight matrices/kernels
    (one device type per weight layer), with the read side the model then uses. Building it clips
    the initial weights into each device's range (and sets stuck devices)."""
    configs = [config.synapses.layer_device(index) for index in range(len(groups))]  # loaded at validation
    read_side = _read_side(config, model, configs)
    if all(c.ideal for c in configs) and read_side is None:
        return Synapses()
    return DeviceSynapses(configs, groups, seed=config.seed, read_side=read_side)


def _read_side(config: Config, model: LayeredModel, configs: list) -> ReadSide | None:
    layers = [LayerRead(c.read_noise_std, c.dac_bits, c.adc_bits, c.adc_range)
              for c in configs[:len(model.param_groups())]]
    if not any(layer.active for layer in layers):
        return None
    if not model.supports_read_side:
        raise ConfigError("synapses.params", "read_noise_std/dac_bits/adc_bits",
                          f"none for dynamics {config.circuit.dynamics}: the read side is simulated for "
                          "the fully connected prototypical and vector_field models")
    ends = model.activation(torch.tensor([-1e4, 1e4], dtype=torch.float64))
    device = model.flat_params()[0].device
    generator = torch.Generator(device=device).manual_seed(config.seed * 7919 + 17)
    return ReadSide(layers, float(ends[0]), float(ends[1]), generator)
