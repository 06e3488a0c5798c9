"""Estimators turn a batch into parameter updates: EP, and BPTT as the baseline.

Updates are ascent directions Delta theta ~ -dL/dtheta, grouped like the parameters (one
group per weight layer, plus the read-out of a cross-entropy cost), and are applied by
``neurosim.hardware.synapses`` so that device models can intercept them.
"""

from __future__ import annotations

from neurosim.config import EstimatorConfig
from neurosim.core.losses import Cost
from neurosim.core.models import LayeredModel
from neurosim.core.estimators.base import Estimator, StepResult
from neurosim.core.estimators.bptt import BPTT
from neurosim.core.estimators.cep import ContinualEP
from neurosim.core.estimators.ep import EquilibriumPropagation

__all__ = ["Estimator", "StepResult", "BPTT", "ContinualEP", "EquilibriumPropagation", "build_estimator"]


def build_estimator(model: LayeredModel, cost: Cost, config: EstimatorConfig, synapses=None) -> Estimator:
    if config.name in ("ep", "vf"):  # the model's kind decides between Eq. 2 and the VF sum
        return EquilibriumPropagation(model, cost, config, synapses)
    if config.name == "bptt":
        return BPTT(model, cost, config, synapses)
    if config.name in ("cep", "cvf"):
        return ContinualEP(model, cost, config, synapses)
    raise ValueError(f"unknown estimator {config.name!r}")  # config validation prevents this
