"""From a validated config to live objects: torch settings, model, cost and estimator."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import Config
from .errors import ConfigError
from .estimators import Estimator, build_estimator
from .losses import Cost, MSECost, SoftmaxCrossEntropyCost
from .models import LayeredModel, build_model
from .synapses import DeviceSynapses, Synapses

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
    synapses = build_synapses(config, model.flat_params() + [p for g in cost.param_groups() for p in g])
    return Network(model, cost, build_estimator(model, cost, config.estimator, synapses), synapses)


def build_synapses(config: Config, params: list) -> Synapses:
    """Ideal synapses, or the device of ``config.synapses`` behind every weight matrix/kernel.
    Building it clips the initial weights into the device range (and sets stuck devices)."""
    from .device_models import device_config

    device = device_config(config.synapses.device, config.synapses.params)
    if device.ideal:
        return Synapses()
    return DeviceSynapses(device, params, seed=config.seed)
