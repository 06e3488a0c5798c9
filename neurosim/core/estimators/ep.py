"""End-of-phase estimators: Equilibrium Propagation (Eq. 2) and its vector-field form (VF).

EP: Delta theta = (1/(beta s)) (dPhi/dtheta(x, s^beta_*) - dPhi/dtheta(x, s_*)), with s the
model's nudge scale (1, or eps for the energy-based model), or, symmetric (Laborieux et al.
2021), (1/(2 beta s)) (dPhi/dtheta(s^{+beta}_*) - dPhi/dtheta(s^{-beta}_*)), which cancels
the first-order bias in beta. The nudged phases start from the free fixed point s_*.

VF (models without Phi): the same phases, and the update is the sum over the nudged phase of
the local rule (1/(beta s)) (dF/dtheta(s_t))^T (s_{t+1} - s_t) with the weights held fixed:
C-VF's updates in the limit eta -> 0, applied once at the end of the phase. For a model with a
Phi that sum telescopes to EP's endpoint difference, which is what EP computes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.core.models import State
from neurosim.core.phases import relax_nudged, settled
from neurosim.core.estimators.base import Estimator, StepResult
from neurosim.hardware.synapses import OuterProduct


class EquilibriumPropagation(Estimator):
    @torch.no_grad()
    def compute(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
                ) -> tuple[list[list[Tensor]], StepResult]:
        model, cost = self.model, self.cost
        beta = self.draw_beta(generator)
        drive, free = self.free_phase(x)
        result = self._result(free, y)
        nudged, numerator = self._nudged_phase(x, y, drive, free, beta)
        if self.config.symmetric:
            reference, minus = self._nudged_phase(x, y, drive, free, -beta)
            scale = 1.0 / (2.0 * beta * model.nudge_scale)
            readout = [[(a + b) / -2.0 for a, b in zip(ga, gb)] for ga, gb in zip(
                cost.dl_dtheta(model.output(nudged), y), cost.dl_dtheta(model.output(reference), y))]
        else:
            reference, minus = free, None
            scale = 1.0 / (beta * model.nudge_scale)
            readout = [[-g for g in group] for group in cost.dl_dtheta(model.output(nudged), y)]
        if model.has_phi and self._factored_first_layer():
            # W_1's update is du^T x / batch, rank B: devices count its pulses from the two
            # factors (``OuterProduct``) instead of from a formed [out, in] update
            du = model.input_signal(nudged).sub_(model.input_signal(reference))
            rest = model.dphi_dtheta_difference(x, nudged, reference, first_layer=False)
            flat = [OuterProduct(du, x, scale / x.shape[0]), du.mean(0).mul_(scale)] + [d.mul_(scale) for d in rest]
            return model.split_groups(flat) + readout, result
        if model.has_phi:
            flat = model.dphi_dtheta_difference(x, nudged, reference)
        elif minus is None:
            flat = numerator
        else:
            flat = [a.sub_(b) for a, b in zip(numerator, minus)]
        return model.split_groups([d.mul_(scale) for d in flat]) + readout, result

    def _factored_first_layer(self) -> bool:
        """Whether W_1's update goes to the synapses as its factors: on devices (ideal synapses
        add the formed update, one product either way), for models whose W_1 update has rank B."""
        return (self.model.supports_rank_b_drive and not self.config.materialize_updates
                and not self.synapses.ideal)

    def _nudged_phase(self, x: Tensor, y: Tensor, drive: list[Tensor], start: State, beta: float
                      ) -> tuple[State, list[Tensor] | None]:
        """The nudged fixed point and, for a model without Phi, the summed local updates
        (before 1/(beta s)) along the way."""
        model, cost, K = self.model, self.cost, self.config.K
        tol = self.config.tol
        counter = self.counter if tol is not None else None
        if model.has_phi:
            return relax_nudged(model, drive, start, K, cost, y, beta, tol, counter, self.config.tol_every,
                                self.config.tol_scope == "sample"), None
        scale = beta * model.nudge_scale
        state, total, du_sum, used = start, None, None, 0
        for _ in range(K):
            force = cost.force(model.output(state), y).mul_(scale)
            new, local, du = model.nudged_step(x, state, drive, force, first_layer=False)
            total = local if total is None else [t.add_(d) for t, d in zip(total, local)]
            du_sum = du if du_sum is None else du_sum.add_(du)
            used += 1
            done = tol is not None and used % self.config.tol_every == 0 and settled(new, state, tol)
            state = new
            if done:
                break
        if counter is not None:
            counter.add("nudged", used)
        first = [du_sum.t() @ x / x.shape[0], du_sum.mean(0)]  # W_1's sum as one product
        return state, first + total
