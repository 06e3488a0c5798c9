"""The toy model of the Theorem-1 check: a fully connected network whose step is exactly dPhi/ds.

Ernoult et al. 2019 (Section 4) first verify the GDU property on a toy network that meets
the theorem's hypothesis *exactly*, s_{t+1} = dPhi/ds(x, s_t, theta), so that EP's updates must
equal BPTT's gradients up to O(beta) and round-off. The prototypical model only meets it
approximately (s_{t+1} = rho(dPhi/ds)), so the toy model is the reference that tells a bug in
the check from the approximation of a model. Here every pair of neurons is coupled once,
symmetrically (across layers, within layers, and to the input); layers only say which
neurons are the output and how parameters are grouped for learning rates and reports.

Math. Let s = (s^1, .., s^N) be all non-input neurons concatenated (M of them), r = rho(s)
elementwise (tanh by default), and x the clamped input (rates, used as is). With a symmetric
coupling C (M x M, zero diagonal), input weights W_x (M x n_0) and biases b,

    Phi(x, s, theta) = (1 - eps)/2 ||s||^2 + eps [ r . (W_x x + b) + 1/2 r^T C r ],
    s_{t+1} = dPhi/ds = (1 - eps) s_t + eps rho'(s_t) * (W_x x + b + C rho(s_t)),

i.e. an Euler step of size eps of ds/dt = -dE/ds for the Hopfield energy
E = 1/2 ||s||^2 - r . (W_x x + b) - 1/2 r^T C r, which is what makes the step an exact
gradient of Phi (the Jacobian of the step is the Hessian of Phi, hence symmetric). With
small couplings (|C| and rho'' bounded) the map is a contraction and the free phase
converges to a unique fixed point, the other hypothesis of the theorem.

Parameters, one group per state layer n (so that ``estimator.lr`` has one rate per layer, as
for the other models): W_n of shape [size_n, n_0 + size_1 + .. + size_n] holds the
connections of layer n to the input, to every layer below, and within layer n, in that
order; b_n its biases. Connections to the layers above are stored in those layers' W, so
C is assembled from the blocks as C[n, m] = W_n^{(m)} for m < n, C[m, n] = W_n^{(m)}^T, and the
lateral block C[n, n] = (A_n + A_n^T)/2 with a zero diagonal (A_n the last block of W_n):
any parameter value gives a symmetric C, so no update can break the symmetry the theorem
needs. Then, per sample,

    dPhi/dW_n = eps r^n (x, r^1, .., r^{n-1}, 1/2 r^n)^T   (diagonal of the last block zero),
    dPhi/db_n = eps r^n,

and the nudge is integrated with the same Euler step (``nudge_scale = eps``), as for the
energy-based model.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neurosim.core.activations import Activation
from neurosim.core.models.base import LayeredModel, Parameters, State


class ToyModel(LayeredModel):
    def __init__(self, sizes: list[int], activation: Activation, generator: torch.Generator,
                 eps: float = 0.5, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 init_gain: list[float] | None = None) -> None:
        # LayeredModel's constructor draws layer-to-layer weights; the toy's W_n are wider, so
        # the shared fields are set here and the draws follow the same uniform fan-in law.
        nn.Module.__init__(self)
        self.sizes = list(sizes)
        self.activation = activation
        self.eps = float(eps)
        self.nudge_scale = self.eps
        self.weights = Parameters()
        self.biases = Parameters()
        gains = init_gain or [1.0] * (len(sizes) - 1)
        for n, (n_out, gain) in enumerate(zip(sizes[1:], gains), start=1):
            width = sum(sizes[:n + 1])
            bound = gain / math.sqrt(width)
            w = (torch.rand(n_out, width, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            w[:, width - n_out:].fill_diagonal_(0.0)  # no self-connections (masked anyway)
            b = (torch.rand(n_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w.to(device=device, dtype=dtype)))
            self.biases.append(nn.Parameter(b.to(device=device, dtype=dtype)))

    # ----------------------------------------------------------------------- structure

    def _coupling(self) -> tuple[Tensor, Tensor]:
        """(W_x [M, n_0], C [M, M]) assembled from the per-layer blocks; differentiable."""
        n0, total = self.sizes[0], sum(self.sizes[1:])
        rows_x, rows_c = [], []
        below = 0  # neurons in the state layers under layer n
        for w, size in zip(self.weights, self.sizes[1:]):
            rows_x.append(w[:, :n0])
            lateral = 0.5 * w[:, n0 + below:]  # C = L + L^T then gives (A + A^T)/2 on the diagonal block
            rows_c.append(torch.cat([w[:, n0:n0 + below], lateral,
                                     w.new_zeros(size, total - below - size)], dim=1))
            below += size
        lower = torch.cat(rows_c, dim=0)
        mask = 1.0 - torch.eye(total, dtype=lower.dtype, device=lower.device)
        return torch.cat(rows_x, dim=0), (lower + lower.t()) * mask

    def _split(self, s: Tensor) -> State:
        return list(s.split(self.sizes[1:], dim=1))

    # ----------------------------------------------------------------------- interface

    def prepare(self, x: Tensor) -> list[Tensor]:
        """[W_x x + b (batch x M), C (M x M)]: everything that is fixed while x and theta are."""
        w_x, coupling = self._coupling()
        bias = torch.cat(list(self.biases))
        return [torch.addmm(bias, x, w_x.t()), coupling]

    def step(self, state: State, drive: list[Tensor], force: Tensor | None = None) -> State:
        s = torch.cat(state, dim=1)
        pre = torch.addmm(drive[0], self.activation(s), drive[1])  # C symmetric: r C = (C r)^T
        new = self._split(torch.addcmul(s * (1.0 - self.eps), self.activation.prime(s), pre, value=self.eps))
        if force is not None:
            new[-1] = new[-1] + force
        return new

    def phi(self, x: Tensor, state: State) -> Tensor:
        drive, coupling = self.prepare(x)
        s = torch.cat(state, dim=1)
        r = self.activation(s)
        return (0.5 * (1.0 - self.eps) * (s * s).sum()
                + self.eps * ((r * drive).sum() + 0.5 * ((r @ coupling) * r).sum()))

    def dphi_dtheta(self, x: Tensor, state: State) -> list[Tensor]:
        batch = x.shape[0]
        rho = [self.activation(s) for s in state]
        grads: list[Tensor] = []
        for n, r in enumerate(rho):
            inputs = torch.cat([x, *rho[:n], 0.5 * r], dim=1)
            g_w = (r.t() @ inputs).mul_(self.eps / batch)
            g_w[:, g_w.shape[1] - r.shape[1]:].fill_diagonal_(0.0)
            grads += [g_w, r.mean(0).mul_(self.eps)]
        return grads
