"""Continual Equilibrium Propagation (C-EP, Ernoult et al. 2020, Eq. 5).

The free phase is EP's. In the nudged phase neurons and synapses move together: after each
neural step s_t -> s_{t+1}, every parameter group n changes by

    theta_{t+1} = theta_t + eta_n / (beta s) (dPhi/dtheta(x, s_{t+1}, theta_t) - dPhi/dtheta(x, s_t, theta_t))

(s the model's nudge scale, as for EP), using only what exists at that moment: the rule is
local in space and in time. Summed over the K steps it telescopes to EP's Eq. 2 as eta -> 0.
``estimator.lr`` holds the eta of each layer. Every per-step update goes through
``neurosim.synapses.apply_updates``, the hook where device models act on each pulse, and the
input drive is rebuilt after each step because W_1 and the biases have changed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..synapses import apply_updates
from .base import Estimator, StepResult


class ContinualEP(Estimator):
    """No ``compute``: the updates are applied while the phase runs, so only ``train_step`` exists."""

    def __init__(self, model, cost, config) -> None:
        super().__init__(model, cost, config)
        if config.symmetric:
            raise ConfigError("estimator.symmetric", True, "false for C-EP (its updates happen during one nudged phase)")
        if cost.param_groups():
            raise ConfigError("loss", "cross_entropy", "mse for C-EP (the read-out is not part of Phi)")

    @torch.no_grad()
    def train_step(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> StepResult:
        model, cost = self.model, self.cost
        beta = self.draw_beta(generator)
        drive, state = self.free_phase(x)
        result = self._result(state, y)
        force_scale = beta * model.nudge_scale
        update_scale = 1.0 / force_scale
        groups = self.groups
        for _ in range(self.config.K):
            force = cost.force(model.output(state), y).mul_(force_scale)
            new = model.step(state, drive, force)
            flat = [d.mul_(update_scale) for d in model.dphi_dtheta_difference(x, new, state)]
            apply_updates(groups, [flat[i:i + 2] for i in range(0, len(flat), 2)], self.config.lr)
            drive = model.prepare(x)
            state = new
        return result
