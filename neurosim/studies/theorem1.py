"""Theorem 1 (Gradient-Descending Updates) checked numerically: EP's processes against BPTT's.

The numerics only, on one batch and a model (no config, files or figure: ``neurosim.studies.gdu``
is the study built on it).

For one batch, after a free phase of T steps (s_0 .. s_T from s = 0), BPTT on the loss
L = mean_batch l(s_T, y), backpropagated through the last K steps, gives for t = 0..K-1

    grad_s(t)     = dL/ds_{T-t}                         (per sample: see below)
    grad_theta(t) = dL/dtheta_{T-t},

where theta_{T-t} is the copy of the parameters used by the step s_{T-t-1} -> s_{T-t}. EP's
nudged phase, started from s^beta_0 = s_T with the force beta * nudge_scale * (-dl/ds), gives

    DeltaEP_s(t)     = (s^beta_{t+1} - s^beta_t) / (beta * nudge_scale)
    DeltaEP_theta(t) = (dPhi/dtheta(s^beta_{t+1}) - dPhi/dtheta(s^beta_t)) / (beta * nudge_scale).

Why these indices pair up (F = dPhi/ds the step, J = dF/ds = d2Phi/ds2, symmetric, and a
converged free phase, s_{T-K} = .. = s_T = s_*):
- t = 0: s^beta_1 - s^beta_0 = F(s_*) - s_* - beta nudge_scale dl/ds = -beta nudge_scale dl/ds,
  so DeltaEP_s(0) = -dl/ds(s_T) = -grad_s(0);
- t -> t+1: DeltaEP_s(t+1) = J DeltaEP_s(t) + O(beta) and grad_s(t+1) = J^T grad_s(t);
- theta: DeltaEP_theta(t) = d2Phi/dtheta ds . DeltaEP_s(t) + O(beta), and the step producing
  s_{T-t} contributes grad_theta(t) = (dF/dtheta)^T grad_s(t) = d2Phi/dtheta ds . grad_s(t).
So DeltaEP(t) = -grad(t) + O(beta) exactly when s_{t+1} = dPhi/ds (energy-based, toy model);
the prototypical model, s_{t+1} = rho(dPhi/ds), has J = D H and dF/dtheta = D d2Phi/ds dtheta with
D = diag(rho'), so it agrees only to the extent that rho' is uniform over the neurons.

Conventions. dPhi/dtheta is a batch mean, hence L is the batch mean and grad_theta is its
gradient. The nudge acts on every sample with its own cost, so DeltaEP_s compares with the
gradient of each sample's own loss: grad_s here is d(sum_batch l)/ds = batch * dL/ds.
The read-out of a cross-entropy cost is not part of Phi and is left out of the comparison.

C-EP (eta > 0, Ernoult et al. 2020, Eq. 5): during the nudged phase, after each neural step,
theta_{t+1} = theta_t + eta DeltaEP_theta(t) (one eta for all layers), applied to a copy of
the model; DeltaEP is recorded with the parameters of the moment. Theorem 2 says the
processes still match in the limit eta -> 0 (then beta -> 0); the error grows with eta/beta.

Symmetric nudging (``estimator.symmetric``) averages the processes of +beta and -beta (each
with its own C-EP copy), which cancels the O(beta) term.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from neurosim.errors import ConfigError
from neurosim.core.losses import Cost
from neurosim.core.models import LayeredModel, State
from neurosim.core.phases import relax

SIGN_TOL = 1e-6
"""Entries whose |grad| is at most SIGN_TOL times the largest |grad| of the process are left
out of the sign agreement: a zero gradient has no sign to match (MNIST's always-blank pixels
give zero rows of W_1; the synchronous layered dynamics give exactly zero processes at every
other t), and a gradient a million times below the largest is below the O(beta) error of
EP's difference quotient, so its sign would measure that error, which rel_error already does.
Where the gradient counts and DeltaEP is exactly zero, the signs disagree."""


# --------------------------------------------------------------------------- processes


@dataclass
class Processes:
    """Time processes t = 0..K-1 of one estimator, stacked on dimension 0.

    ``states[n]``: [K, batch, size of layer n+1]; ``params[i]``: [K, *shape of flat_params()[i]].
    """

    states: list[Tensor]
    params: list[Tensor]

    def scaled(self, factor: float) -> Processes:
        return Processes([s * factor for s in self.states], [p * factor for p in self.params])

    def shifted(self, steps: int) -> Processes:
        """The processes delayed by ``steps`` (zeros first): an index error, for tests."""
        def shift(p: Tensor) -> Tensor:
            return torch.cat([torch.zeros_like(p[:steps]), p[:-steps]]) if steps else p
        return Processes([shift(s) for s in self.states], [shift(p) for p in self.params])


@torch.no_grad()
def free_trajectory(model: LayeredModel, x: Tensor, T: int, K: int, tol: float | None = None) -> list[State]:
    """The last K+1 states s_{T-K} .. s_T of the free phase from s = 0 (first T-K steps not kept;
    with ``tol``, they stop once settled, as training's free phase does)."""
    if not 1 <= K <= T:
        raise ConfigError("estimator.K", K, f"between 1 and T={T} for the Theorem-1 check")
    drive = model.prepare(x)
    state = relax(model, drive, model.init_state(x.shape[0]), T - K, tol)
    trajectory = [state]
    for _ in range(K):
        trajectory.append(model.step(trajectory[-1], drive))
    return trajectory


def bptt_processes(model: LayeredModel, cost: Cost, x: Tensor, y: Tensor, trajectory: list[State]) -> Processes:
    """grad_s(t) and grad_theta(t) (gradients, not yet negated) along the free ``trajectory``.

    Backpropagation one step at a time, from s_T down: each step is recomputed from its
    detached input state with autograd, and one backward pass gives both the gradient that
    flows on to s_{T-t-1} and the gradient w.r.t. the parameters *of this step only*: exactly
    grad_theta(t) of a graph with a separate copy of theta per step (the drive, computed from
    theta by ``prepare``, is part of the copy). Only the model interface is used.
    """
    K = len(trajectory) - 1
    batch = x.shape[0]
    params = list(model.flat_params())
    with torch.enable_grad():
        last = [s.detach().requires_grad_(True) for s in trajectory[-1]]
        loss_sum = cost.value(model.output(last), y).sum()
        g_state = _grads(loss_sum, last, None)
        states: list[list[Tensor]] = []
        thetas: list[list[Tensor]] = []
        for t in range(K):
            states.append(g_state)
            inputs = [s.detach().requires_grad_(True) for s in trajectory[K - 1 - t]]
            out = model.step(inputs, model.prepare(x))
            grads = _grads(out, inputs + params, g_state)
            g_state = grads[:len(inputs)]
            thetas.append([g / batch for g in grads[len(inputs):]])  # L is the batch mean
    return Processes([torch.stack(s) for s in zip(*states)], [torch.stack(p) for p in zip(*thetas)])


def _grads(outputs: Tensor | list[Tensor], inputs: list[Tensor], grad_outputs: list[Tensor] | None
           ) -> list[Tensor]:
    got = torch.autograd.grad(outputs, inputs, grad_outputs=grad_outputs, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g.detach() for g, i in zip(got, inputs)]


@torch.no_grad()
def ep_processes(model: LayeredModel, cost: Cost, x: Tensor, y: Tensor, start: State, K: int,
                 beta: float, eta: float = 0.0, symmetric: bool = False) -> Processes:
    """DeltaEP_s(t) and DeltaEP_theta(t), t = 0..K-1, of the nudged phase started from ``start``.

    With ``eta`` > 0 the continual update of C-EP is applied to a deep copy of the model (the
    model itself is left as it is). With ``symmetric`` the processes of +beta and -beta are
    averaged.
    """
    if beta == 0:
        raise ConfigError("estimator.beta", beta, "a non-zero nudging strength")
    if symmetric:
        plus = ep_processes(model, cost, x, y, start, K, beta, eta)
        minus = ep_processes(model, cost, x, y, start, K, -beta, eta)
        return Processes([(a + b) / 2 for a, b in zip(plus.states, minus.states)],
                         [(a + b) / 2 for a, b in zip(plus.params, minus.params)])
    net = copy.deepcopy(model) if eta else model
    params = list(net.flat_params())
    scale = beta * net.nudge_scale
    drive = net.prepare(x)
    state = start
    states: list[list[Tensor]] = []
    thetas: list[list[Tensor]] = []
    for _ in range(K):
        force = cost.force(net.output(state), y).mul_(scale)
        new, local, _ = net.nudged_step(x, state, drive, force)
        states.append([(a - b) / scale for a, b in zip(new, state)])
        delta = [d / scale for d in local]
        thetas.append(delta)
        if eta:
            for p, d in zip(params, delta, strict=True):
                p.add_(d, alpha=eta)
            drive = net.prepare(x)  # the drive holds W_1 x + b_1 (and more, for some models)
        state = new
    return Processes([torch.stack(s) for s in zip(*states)], [torch.stack(p) for p in zip(*thetas)])


# --------------------------------------------------------------------------- names and metrics


@dataclass(frozen=True)
class Quantity:
    """What a process is about: weights W_n, biases b_n or states s^n of layer n."""

    name: str
    kind: str  # "W", "b" or "s"
    layer: int


def quantities(model: LayeredModel, n_states: int) -> tuple[list[Quantity], list[Quantity]]:
    """Names of flat_params() (from the param groups: group g is layer g+1; matrices and
    kernels are weights W, vectors biases b) and of the state layers s^1 .. s^N."""
    params: list[Quantity] = []
    layers = [layer for layer, group in enumerate(model.param_groups(), start=1) for _ in group]
    for name, p, layer in zip(model.param_names(), model.flat_params(), layers, strict=True):
        params.append(Quantity(name, "W" if p.dim() >= 2 else "b", layer))
    if len(params) != len(list(model.flat_params())):
        raise ValueError("param_groups() and flat_params() of the model disagree")
    states = [Quantity(f"s^{n}", "s", n) for n in range(1, n_states + 1)]
    return params, states


def compare(delta_ep: Tensor, minus_grad: Tensor, sign_tol: float = SIGN_TOL) -> dict[str, Any]:
    """Agreement of one process DeltaEP(t) with -grad(t) (dimension 0 is t).

    rel_error: ||DeltaEP - (-grad)|| / ||grad|| over all t and entries; cosine: between the
    summed updates sum_t DeltaEP(t) and sum_t -grad(t); sign_agreement: fraction of entries
    (over all t) of equal sign, among those where the gradient is not negligible (SIGN_TOL).
    Undefined values (an all-zero gradient) are None, so that the JSON stays standard.
    """
    a, b = delta_ep.double(), minus_grad.double()
    norm_a, norm_b = float(a.norm()), float(b.norm())
    if norm_b > 0:
        rel_error: float | None = float((a - b).norm()) / norm_b
    else:
        rel_error = 0.0 if norm_a == 0 else None
    sum_a, sum_b = a.sum(0).flatten(), b.sum(0).flatten()
    denominator = float(sum_a.norm() * sum_b.norm())
    cosine = float(sum_a @ sum_b) / denominator if denominator > 0 else None
    limit = sign_tol * float(b.abs().max()) if b.numel() else 0.0
    significant = b.abs() > limit
    counted = int(significant.sum())
    agree = int((torch.sign(a) == torch.sign(b))[significant].sum())
    return {"rel_error": rel_error, "cosine": cosine,
            "sign_agreement": agree / counted if counted else None,
            "norm_ep": norm_a, "norm_bptt": norm_b, "entries": counted}


def compare_all(ep: Processes, minus_grad: Processes, model: LayeredModel,
                sign_tol: float = SIGN_TOL) -> list[dict[str, Any]]:
    """One record per quantity (weights and biases in flat_params order, then states)."""
    names_p, names_s = quantities(model, len(ep.states))
    records = []
    for q, a, b in zip(names_p + names_s, ep.params + ep.states, minus_grad.params + minus_grad.states,
                       strict=True):
        records.append({"name": q.name, "quantity": q.kind, "layer": q.layer, **compare(a, b, sign_tol)})
    return records


# --------------------------------------------------------------------------- one batch, all etas


@dataclass
class Check:
    """Everything the check computed for one batch: -grad of BPTT and DeltaEP per eta."""

    minus_grad: Processes
    ep: dict[float, Processes]
    records: list[dict[str, Any]]
    free_residual: float
    """max |s_T - s_{T-1}|: how far the free phase is from the fixed point the theorem assumes."""

    def total_cosine(self, eta: float = 0.0) -> float:
        """Cosine between the total update sum_t DeltaEP_theta(t) and the total gradient
        sum_t -grad_theta(t), all parameters at once (the "angle-grad" of Ernoult et al. 2020)."""
        a = torch.cat([p.double().sum(0).flatten() for p in self.ep[eta].params])
        b = torch.cat([p.double().sum(0).flatten() for p in self.minus_grad.params])
        return float(a @ b) / float(a.norm() * b.norm())


def run_check(model: LayeredModel, cost: Cost, x: Tensor, y: Tensor, T: int, K: int, beta: float,
              etas: Sequence[float] = (0.0,), symmetric: bool = False,
              sign_tol: float = SIGN_TOL, tol: float | None = None) -> Check:
    """The Theorem-1 check on a built model and one batch (y: targets as the cost expects them);
    ``tol``: the free phase stops once settled (``estimator.tol``)."""
    trajectory = free_trajectory(model, x, T, K, tol)
    residual = max(float((a - b).abs().max()) for a, b in zip(trajectory[-1], trajectory[-2]))
    minus_grad = bptt_processes(model, cost, x, y, trajectory).scaled(-1.0)
    ep: dict[float, Processes] = {}
    records: list[dict[str, Any]] = []
    for eta in etas:
        ep[eta] = ep_processes(model, cost, x, y, trajectory[-1], K, beta, eta, symmetric)
        for record in compare_all(ep[eta], minus_grad, model, sign_tol):
            records.append({"eta": eta, "beta": beta, "symmetric": symmetric, "T": T, "K": K,
                            **record, "free_residual": residual})
    return Check(minus_grad, ep, records, residual)


__all__ = ["SIGN_TOL", "Check", "Processes", "Quantity", "bptt_processes", "compare", "compare_all", "ep_processes",
           "free_trajectory", "quantities", "run_check"]
