"""Backpropagation through time on the same dynamics: the baseline that EP approximates.

As in Ernoult et al. 2019, the free phase runs T steps and the loss l(s_T, y) is
backpropagated through its last K steps only (the first T - K run without a graph), which
is exactly the computation Theorem 1 compares EP's nudged phase with.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.core.phases import relax
from neurosim.core.estimators.base import Estimator, StepResult


class BPTT(Estimator):
    def compute(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
                ) -> tuple[list[list[Tensor]], StepResult]:
        model, T, K = self.model, self.config.T, self.config.K
        _, state = self.free_phase(x, T - K)  # with estimator.tol: until settled, at most T - K steps
        params = [p for group in self.groups for p in group]
        with torch.enable_grad():
            drive = model.prepare(x)
            state = relax(model, drive, [s.detach() for s in state], K)
            per_sample = self.cost.value(model.output(state), y)
            grads = torch.autograd.grad(per_sample.mean(), params)
        result = StepResult(self.cost.logits(model.output(state)).detach(), per_sample.detach())
        updates, i = [], 0
        for group in self.groups:
            updates.append([-g for g in grads[i:i + len(group)]])
            i += len(group)
        return updates, result
