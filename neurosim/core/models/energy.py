"""The energy-based (Hopfield) model of Scellier & Bengio 2017 in discrete time.

E(s) = 1/2 sum_n ||s^n||^2 - sum_n rho(s^n)^T W_n rho(s^{n-1}) - sum_n b_n^T rho(s^n), with
layered connections and the input clamped as s^0 = x (pixel intensities in [0, 1] are taken
as firing rates: rho(s^0) = x). Phi = 1/2 ||s||^2 - eps E, so that s_{t+1} = dPhi/ds is the
Euler step of ds/dt = -dE/ds with step eps:

    s^n_{t+1} = (1 - eps) s^n_t + eps rho'(s^n_t) (W_n rho(s^{n-1}_t) + W_{n+1}^T rho(s^{n+1}_t) + b_n)

The nudge is a force integrated with the same step (``nudge_scale = eps``): the nudged
dynamics descend E + beta l, as in the continuous-time model, and the EP update
(1/(eps beta)) (dPhi/dtheta(s^b) - dPhi/dtheta(s)) is the familiar
(1/beta) (rho(s^n_b) rho(s^{n-1}_b)^T - rho(s^n) rho(s^{n-1})^T).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.core.activations import Activation
from neurosim.core.models.base import LayeredModel, State


class EnergyModel(LayeredModel):
    def __init__(self, sizes: list[int], activation: Activation, generator: torch.Generator,
                 eps: float, clamp: bool = False, **kwargs) -> None:
        super().__init__(sizes, activation, generator, **kwargs)
        self.eps = float(eps)
        self.clamp = clamp
        self.nudge_scale = self.eps

    def prepare(self, x: Tensor) -> list[Tensor]:
        first = torch.addmm(self.biases[0], x, self.weights[0].t())
        return [first] + [b.clone() for b in self.biases[1:]]

    def step(self, state: State, drive: list[Tensor], force: Tensor | None = None) -> State:
        rho, prime = zip(*(self.activation.value_and_prime(s) for s in state))
        last = len(state) - 1
        new: State = []
        for n, s in enumerate(state):
            pre = drive[0] if n == 0 else torch.addmm(drive[n], rho[n - 1], self.weights[n].t())
            if n < last:
                pre = torch.addmm(pre, rho[n + 1], self.weights[n + 1])
            s_next = torch.addcmul(s * (1.0 - self.eps), prime[n], pre, value=self.eps)
            if n == last and force is not None:
                s_next = s_next + force
            if self.clamp:  # a projection onto [0, 1]: exact dPhi/ds only inside the box
                s_next = s_next.clamp(0.0, 1.0)
            new.append(s_next)
        return new

    def energy(self, x: Tensor, state: State) -> Tensor:
        """E summed over the batch."""
        rho = [x] + [self.activation(s) for s in state]
        total = sum(0.5 * (s * s).sum() for s in state)
        for n, (w, b) in enumerate(zip(self.weights, self.biases)):
            total = total - ((rho[n] @ w.t()) * rho[n + 1]).sum() - (rho[n + 1] @ b).sum()
        return total

    def phi(self, x: Tensor, state: State) -> Tensor:
        return sum(0.5 * (s * s).sum() for s in state) - self.eps * self.energy(x, state)

    def dphi_dtheta(self, x: Tensor, state: State) -> list[Tensor]:
        batch = x.shape[0]
        rho = [x] + [self.activation(s) for s in state]
        grads: list[Tensor] = []
        for n in range(len(state)):
            grads += [self.eps * rho[n + 1].t() @ rho[n] / batch, self.eps * rho[n + 1].mean(0)]
        return grads
