"""The interface shared by all estimators."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from neurosim.config import EstimatorConfig
from neurosim.core.losses import Cost
from neurosim.core.models import LayeredModel, State
from neurosim.core.phases import StepCounter, relax
from neurosim.hardware.synapses import Synapses


@dataclass
class StepResult:
    """What one training batch tells the trainer, from the free phase (before the update)."""

    logits: Tensor
    loss: Tensor
    """Per-sample cost at the free fixed point."""


class Estimator:
    def __init__(self, model: LayeredModel, cost: Cost, config: EstimatorConfig,
                 synapses: Synapses | None = None) -> None:
        self.model = model
        self.cost = cost
        self.config = config
        self.synapses = synapses or Synapses()
        """Where updates are written: ideal, or simulated devices (``neurosim.hardware.synapses``)."""
        self.lr_scale = 1.0
        """The learning-rate schedule's factor for the current epoch (set by the trainer)."""
        self.counter = StepCounter()
        """Steps each phase used (with ``estimator.tol``); the backend reads and clears it each epoch."""

    @property
    def lrs(self) -> list[float]:
        """This epoch's rate of each group: ``estimator.lr`` times the schedule's factor."""
        return [lr * self.lr_scale for lr in self.config.lr]

    @property
    def groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups in learning-rate order: the model's weight layers, then the read-out."""
        return self.model.param_groups() + self.cost.param_groups()

    def compute(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
                ) -> tuple[list[list[Tensor]], StepResult]:
        """Updates (ascent directions, ~ -dL/dtheta) for one batch, and the free-phase result."""
        raise NotImplementedError

    def draw_beta(self, generator: torch.Generator | None) -> float:
        """The nudging strength of this batch: beta, or +/-beta at random (``random_sign``)."""
        beta = self.config.beta
        if self.config.random_sign:
            flip = torch.randint(0, 2, (1,), generator=generator).item()
            beta = -beta if flip else beta
        return beta

    def train_step(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> StepResult:
        updates, result = self.compute(x, y, generator)
        self.synapses.apply(self.groups, updates, self.lrs)
        return result

    @torch.no_grad()
    def free_phase(self, x: Tensor, steps: int | None = None) -> tuple[list[Tensor], State]:
        drive = self.model.prepare(x)
        steps = self.config.T if steps is None else steps
        state = relax(self.model, drive, self.model.init_state(x.shape[0]), steps, self.config.tol,
                      self.counter if self.config.tol is not None else None, every=self.config.tol_every,
                      per_sample=self.config.tol_scope == "sample")
        return drive, state

    def _result(self, state: State, y: Tensor) -> StepResult:
        out = self.model.output(state)
        return StepResult(self.cost.logits(out).detach(), self.cost.value(out, y).detach())
