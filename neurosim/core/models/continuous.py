"""Continuous-time leaky-integrator EP network (SPEC §4), integrated by Euler steps in torch.

Each neuron is a leaky integrator with time constant tau, driven by the rates rho(s) of its
neighbours through symmetric weights (the Hopfield energy of ``energy.py``):

    tau ds^n/dt = -s^n + W_n rho(s^{n-1}) + W_{n+1}^T rho(s^{n+1}) + b_n   [+ beta (y - s^N) on the output]

with the input clamped as rho(s^0) = x. Euler steps of length dt give, with eps = dt / tau,

    s^n_{t+1} = (1 - eps) s^n_t + eps (W_n rho(s^{n-1}_t) + W_{n+1}^T rho(s^{n+1}_t) + b_n)

and, with ``clamp``, the states are clipped to [0, 1] after each step (Scellier & Bengio 2017).

**The form, chosen once for torch and Brian2 (``neurosim.backends.brian2.equations``)**: no
rho'(s) factor in front of the synaptic input. The gradient flow of E has one, rho'(s) (...);
the two forms share their fixed points wherever rho' = 1, which with rho = hard_sigmoid and
clipped states is everywhere the state can be (rho' is 1 on the closed interval [0, 1]): this
model and ``EnergyModel`` with the same eps then take the *same* steps and reach the same fixed
points (tested). Without the factor a neuron driven beyond a bound does not chatter between the
bound and the flat region where rho' = 0, and the equation is the textbook leaky integrator a
Brian2 user writes. With sigmoid or tanh the fixed points differ from ``EnergyModel``'s (whose
dynamics keep rho'): pick ``energy`` to compare with the discrete papers' EB rows, ``continuous``
for the leaky integrator and its Brian2 twin.

The nudge is a current, integrated with the same Euler step (``nudge_scale = eps``), and EP's
update is (1/beta) (rho(s^n_b) rho(s^{n-1}_b)^T - rho(s^n) rho(s^{n-1})^T), as for ``EnergyModel``;
``phi``/``dphi_dtheta`` are EnergyModel's (Phi = 1/2 ||s||^2 - eps E), so EP, C-EP and BPTT apply
unchanged. dPhi/ds equals this step exactly where rho' = 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.core.models.base import State
from neurosim.core.models.energy import EnergyModel


class ContinuousModel(EnergyModel):
    """Leaky integrators, Euler step eps = dt/tau; no rho' factor (see the module docstring)."""

    supports_rank_b_drive = True  # C-EP follows W_1's per-step changes through x x^T (cep.py)

    def step(self, state: State, drive: list[Tensor], force: Tensor | None = None) -> State:
        rho = [self.activation(s) for s in state]
        last = len(state) - 1
        new: State = []
        for n, s in enumerate(state):
            pre = drive[0] if n == 0 else torch.addmm(drive[n], rho[n - 1], self.weights[n].t())
            if n < last:
                pre = torch.addmm(pre, rho[n + 1], self.weights[n + 1])
            s_next = torch.add(s * (1.0 - self.eps), pre, alpha=self.eps)
            if n == last and force is not None:
                s_next = s_next + force
            if self.clamp:
                s_next = s_next.clamp(0.0, 1.0)
            new.append(s_next)
        return new

    def input_signal(self, state: State) -> Tensor:
        """u = eps rho(s^1): dPhi/dW_1 = u^T x / batch, dPhi/db_1 = mean(u)."""
        return self.eps * self.activation(state[0])

    def bias_drives(self) -> list[Tensor]:
        return [b.clone() for b in self.biases[1:]]
