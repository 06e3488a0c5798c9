"""Vector-field (VF) networks: the prototypical dynamics with untied forward and backward weights.

Ernoult et al. 2020 (C-VF): s_{t+1} = F(x, s_t, theta) with

    F^n(s) = (1 - dt) s^n + dt rho(W_n s^{n-1} + B_{n+1} s^{n+1} + b_n)

where W_n (forward, layer n-1 -> n) and B_{n+1} (backward, layer n+1 -> n) are separate
parameters. With B_{n+1} = W_{n+1}^T this is exactly the prototypical model; otherwise F is
not the gradient of any Phi, and the update rule of C-VF replaces dPhi/dtheta differences by

    Delta theta_t = (1 / (beta dt)) (dF/dtheta(x, s_t, theta_t))^T (s_{t+1} - s_t),

i.e. for a weight from neuron j to neuron i: (1/beta) rho'(a_i) (s_i,t+1 - s_i,t) s_j,t, with a
the pre-activation at step t. The rule is local: it uses the two neurons of the synapse and the
post-synaptic neuron's own pre-activation. Summed over the nudged phase with theta fixed it is
plain VF's end-of-phase update.

The asymmetry is measured by the angle between vec(W_{n+1}) and vec(B_{n+1}^T). The initial
angle is a config value: B^T = cos(a) W + sin(a) ||W|| R_perp / ||R_perp||, with R drawn like W
and R_perp its component orthogonal to W, gives exactly the angle a and the norm of W.

Parameter group n (one learning rate) holds the connections between layers n-1 and n in both
directions: [W_n, b_n, B_n] (group 1 has no B: the input receives no feedback).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neurosim.core.models.base import Parameters, State
from neurosim.core.models.prototypical import PrototypicalModel


def angled_copy(w: Tensor, degrees: float, generator: torch.Generator) -> Tensor:
    """A tensor at exactly ``degrees`` from ``w`` (as flat vectors) with the same norm (float64)."""
    w = w.to(torch.float64)
    if degrees == 0:
        return w.clone()
    r = torch.rand(w.shape, generator=generator, dtype=torch.float64) * 2 - 1
    r = r - (r * w).sum() / (w * w).sum() * w
    r = r * (w.norm() / r.norm())
    a = math.radians(degrees)
    return math.cos(a) * w + math.sin(a) * r


def angle_degrees(a: Tensor, b: Tensor) -> float:
    """Angle between two tensors seen as flat vectors, in degrees."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    cosine = float(a @ b) / float(a.norm() * b.norm())
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


class VectorFieldModel(PrototypicalModel):
    has_phi = False

    def __init__(self, sizes: list[int], activation, generator: torch.Generator, *,
                 initial_angle: float = 0.0, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", **kwargs) -> None:
        super().__init__(sizes, activation, generator, dtype=dtype, device=device, **kwargs)
        self.initial_angle = float(initial_angle)
        self.backward = Parameters()
        for w in self.weights[1:]:  # B_{n+1} maps layer n+1 to layer n: shape of W_{n+1}^T
            b = angled_copy(w.detach().cpu(), self.initial_angle, generator).t().contiguous()
            self.backward.append(nn.Parameter(b.to(device=device, dtype=dtype)))

    def param_groups(self) -> list[list[nn.Parameter]]:
        groups = [[self.weights[0], self.biases[0]]]
        for w, b, back in zip(self.weights[1:], self.biases[1:], self.backward):
            groups.append([w, b, back])
        return groups

    def param_names(self) -> list[str]:
        names = ["W_1", "b_1"]
        for n in range(2, self.num_layers + 1):
            names += [f"W_{n}", f"b_{n}", f"B_{n}"]
        return names

    def _feedback(self, n: int) -> Tensor:
        return self.backward[n].t()

    def _feedbacks(self) -> list[Tensor]:
        return [b.t() for b in self.backward]

    def angles(self) -> list[float]:
        """Angle between W_n and B_n^T (degrees) for n = 2..N: 0 is a symmetric network."""
        return [angle_degrees(w, back.t()) for w, back in zip(self.weights[1:], self.backward)]

    def diagnostics(self) -> dict[str, float | list[float]]:
        return {"angle_deg": [round(a, 4) for a in self.angles()]}

    def nudged_step(self, x: Tensor, state: State, drive: list[Tensor], force: Tensor | None,
                    first_layer: bool = True) -> tuple[State, list[Tensor], Tensor | None]:
        primes: list[Tensor] = []
        new = self._step(state, drive, force, primes)
        batch = x.shape[0]
        # delta^n = dF^n/da^n (s^n_{t+1} - s^n_t) = dt rho'(a^n_t) (s^n_{t+1} - s^n_t)
        deltas = [p.mul_(a - b).mul_(self.dt) for p, a, b in zip(primes, new, state)]
        local: list[Tensor] = []
        if first_layer:
            local += [deltas[0].t() @ x / batch, deltas[0].mean(0)]
        for n in range(1, len(state)):
            local += [deltas[n].t() @ state[n - 1] / batch,   # W_{n+1}: post n, pre n-1
                      deltas[n].mean(0),
                      deltas[n - 1].t() @ state[n] / batch]   # B_{n+1}: post n-1, pre n
        return new, local, None if first_layer else deltas[0]

    def phi(self, x: Tensor, state: State) -> Tensor:
        raise TypeError("a vector-field model has no primitive function Phi (use nudged_step)")

    def dphi_dtheta(self, x: Tensor, state: State) -> list[Tensor]:
        raise TypeError("a vector-field model has no primitive function Phi (use nudged_step)")

    def dphi_dtheta_difference(self, x, state_a, state_b, first_layer=True):
        raise TypeError("a vector-field model has no primitive function Phi (use nudged_step)")
