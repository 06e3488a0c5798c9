"""Equilibrium Propagation (Eq. 2), one-sided or symmetric, with optional random sign of beta.

Delta theta = (1/(beta s)) (dPhi/dtheta(x, s^beta_*) - dPhi/dtheta(x, s_*)), with s the
model's nudge scale (1, or eps for the energy-based model), or, symmetric (Laborieux et al.
2021), (1/(2 beta s)) (dPhi/dtheta(s^{+beta}_*) - dPhi/dtheta(s^{-beta}_*)), which cancels
the first-order bias in beta. The nudged phases start from the free fixed point s_*.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..phases import relax_nudged
from .base import Estimator, StepResult, pair_groups


class EquilibriumPropagation(Estimator):
    @torch.no_grad()
    def compute(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
                ) -> tuple[list[list[Tensor]], StepResult]:
        model, cost, K = self.model, self.cost, self.config.K
        beta = self.draw_beta(generator)
        drive, free = self.free_phase(x)
        result = self._result(free, y)
        nudged = relax_nudged(model, drive, free, K, cost, y, beta)
        if self.config.symmetric:
            reference = relax_nudged(model, drive, free, K, cost, y, -beta)
            scale = 1.0 / (2.0 * beta * model.nudge_scale)
            readout = [[(a + b) / -2.0 for a, b in zip(ga, gb)] for ga, gb in zip(
                cost.dl_dtheta(model.output(nudged), y), cost.dl_dtheta(model.output(reference), y))]
        else:
            reference = free
            scale = 1.0 / (beta * model.nudge_scale)
            readout = [[-g for g in group] for group in cost.dl_dtheta(model.output(nudged), y)]
        flat = [d.mul_(scale) for d in model.dphi_dtheta_difference(x, nudged, reference)]
        return pair_groups(flat) + readout, result
