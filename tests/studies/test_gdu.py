"""Theorem 1 (GDU): EP's processes against BPTT's, the toy model, the metrics and the report (float64).

Bounds come from the mathematics (see neurosim/gdu.py): for a step s_{t+1} = dPhi/ds (toy,
energy-based) DeltaEP(t) = -grad(t) + O(beta) one-sided, + O(beta^2) symmetric, with O(1)
constants on these tiny networks (measured: rel_error ~ 0.9 beta); for the prototypical step
rho(dPhi/ds) the processes differ by the factors diag(rho'), so with tanh (rho' = 1 - s^2) the
relative error is, to first order, at most ~2 delta with delta = max s_*^2 (one factor D, one
D^-1; measured ~0.3 delta).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from neurosim.core.activations import get_activation
from neurosim.studies.gdu import (bptt_processes, compare, compare_all, ep_processes, format_table,
                          free_trajectory, gdu, quantities, run_check)
from neurosim.core.losses import MSECost
from neurosim.core.models import EnergyModel, PrototypicalModel
from neurosim.core.models.toy import ToyModel
from neurosim.core.phases import relax

SIZES = [8, 6, 5, 4]
BATCH = 5
T, K = 100, 8


def make(kind: str, activation: str = "tanh", gain: float = 0.5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    act = get_activation(activation)
    common = dict(dtype=torch.float64, init_gain=[gain] * (len(SIZES) - 1))
    if kind == "toy":
        return ToyModel(SIZES, act, g, eps=0.5, **common)
    if kind == "energy":
        return EnergyModel(SIZES, act, g, eps=0.5, **common)
    return PrototypicalModel(SIZES, act, g, dt=1.0, **common)


def batch(seed: int = 0, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.rand(BATCH, SIZES[0], generator=g, dtype=torch.float64)
    labels = torch.randint(0, SIZES[-1], (BATCH,), generator=g)
    return x, torch.nn.functional.one_hot(labels, SIZES[-1]).to(torch.float64)


def worst(records, key="rel_error", eta=0.0):
    return max(r[key] for r in records if r["eta"] == eta)


# --------------------------------------------------------------------------- the toy model


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_toy_step_and_parameter_gradient_are_exact_derivatives_of_phi(activation):
    model = make("toy", activation, gain=1.0)
    x, _ = batch()
    state = [torch.rand(BATCH, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) - 0.5
             for n in SIZES[1:]]
    leaves = [s.clone().requires_grad_(True) for s in state]
    dphi_ds = torch.autograd.grad(model.phi(x, leaves), leaves)
    for got, want in zip(model.step(state, model.prepare(x)), dphi_ds, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    dphi_dtheta = torch.autograd.grad(model.phi(x, state) / BATCH, model.flat_params())
    for got, want in zip(model.dphi_dtheta(x, state), dphi_dtheta, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    _, coupling = model.prepare(x)
    torch.testing.assert_close(coupling, coupling.t(), rtol=0, atol=0)
    assert bool((coupling.diagonal() == 0).all())
    assert bool((coupling != 0).sum() == coupling.numel() - coupling.shape[0])  # all-to-all


def test_toy_free_phase_converges_to_a_fixed_point():
    model = make("toy")
    x, _ = batch()
    trajectory = free_trajectory(model, x, T, 1)
    assert max(float((a - b).abs().max()) for a, b in zip(*trajectory)) < 1e-14


# --------------------------------------------------------------------------- BPTT processes


@pytest.mark.parametrize("kind", ["toy", "prototypical", "energy"])
def test_bptt_processes_are_autograd_gradients_of_the_unrolled_dynamics(kind):
    # A free phase far from converged (T = K + 2 steps from 0), so that the states of the
    # unrolled steps differ and a step paired with the wrong state shows.
    model, cost, short = make(kind), MSECost(), K + 2
    x, y = batch()
    got = bptt_processes(model, cost, x, y, free_trajectory(model, x, short, K))
    # Independent: unroll the last K steps with a separate copy of the model per step.
    with torch.no_grad():
        start = relax(model, model.prepare(x), model.init_state(BATCH), short - K)
    copies = [copy.deepcopy(model) for _ in range(K)]
    states = [[s.clone().requires_grad_(True) for s in start]]
    for net in copies:
        states.append(net.step(states[-1], net.prepare(x)))
    loss = cost.value(model.output(states[-1]), y).mean()
    inputs = [p for net in copies for p in net.flat_params()] + [s for st in states[1:] for s in st]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)
    n_p = len(list(model.flat_params()))
    per_step = [grads[k * n_p:(k + 1) * n_p] for k in range(K)]
    per_state = grads[K * n_p:]
    n_s = len(SIZES) - 1
    for t in range(K):  # grad_theta(t) is the copy of the step producing s_{T-t}
        for a, b in zip(got.params, per_step[K - 1 - t], strict=True):
            torch.testing.assert_close(a[t], b, rtol=1e-10, atol=1e-13)
        for n in range(n_s):  # grad_s(t) = d(sum_batch l)/ds_{T-t} = BATCH dL/ds_{T-t}
            torch.testing.assert_close(got.states[n][t], BATCH * per_state[(K - 1 - t) * n_s + n],
                                       rtol=1e-10, atol=1e-13)
    # The sum over t is the plain BPTT gradient with shared parameters (the BPTT estimator's).
    with torch.enable_grad():
        s = [v.clone() for v in start]
        s = relax(model, model.prepare(x), s, K)
        plain = torch.autograd.grad(cost.value(model.output(s), y).mean(), model.flat_params())
    for a, b in zip(got.params, plain, strict=True):
        torch.testing.assert_close(a.sum(0), b, rtol=1e-10, atol=1e-13)
    # grad_s(0) = dl/ds_T: only the output layer, (s_T - y) for the squared error.
    final = free_trajectory(model, x, short, 1)[-1]
    torch.testing.assert_close(got.states[-1][0], final[-1] - y, rtol=1e-12, atol=1e-14)
    assert all(bool((p[0] == 0).all()) for p in got.states[:-1])


# --------------------------------------------------------------------------- Theorem 1


@pytest.mark.parametrize("kind", ["toy", "energy"])
def test_exact_models_match_bptt_up_to_order_beta(kind):
    model = make(kind)
    x, y = batch()
    one_sided = run_check(model, MSECost(), x, y, T, K, beta=1e-6)
    assert one_sided.free_residual < 1e-14
    assert worst(one_sided.records) < 1e-5  # O(beta) = 1e-6 with an O(1) constant
    assert min(r["cosine"] for r in one_sided.records) > 1 - 1e-10
    assert min(r["sign_agreement"] for r in one_sided.records) == 1.0
    symmetric = run_check(model, MSECost(), x, y, T, K, beta=1e-3, symmetric=True)
    assert worst(symmetric.records) < 1e-5  # O(beta^2) = 1e-6


def test_prototypical_matches_bptt_within_the_spread_of_rho_prime():
    model = make("prototypical", gain=0.2)
    x, y = batch(scale=0.5)
    check = run_check(model, MSECost(), x, y, T, K, beta=1e-4, symmetric=True)
    free = free_trajectory(model, x, T, 1)[-1]
    delta = max(float((s * s).max()) for s in free)  # 1 - tanh' = s^2
    assert check.free_residual < 1e-14 and delta < 0.05
    assert worst(check.records) < 2 * delta
    assert min(r["cosine"] for r in check.records) > 0.9999
    # Larger weights spread rho' more: the same check with twice the weights is less accurate.
    bigger = run_check(make("prototypical", gain=0.4), MSECost(), x, y, T, K, beta=1e-4, symmetric=True)
    assert worst(bigger.records) > 2 * worst(check.records)


def test_the_check_fails_for_broken_updates_or_a_free_phase_that_has_not_converged():
    model, cost = make("toy"), MSECost()
    x, y = batch()
    check = run_check(model, cost, x, y, T, K, beta=1e-6)
    ep, minus_grad = check.ep[0.0], check.minus_grad
    assert worst(check.records) < 1e-5
    dropped = compare_all(ep.scaled(1e-6), minus_grad, model)  # forgot the 1/beta
    assert min(r["rel_error"] for r in dropped) > 0.99
    shifted = compare_all(ep.shifted(1), minus_grad, model)  # paired t with t+1
    assert min(r["rel_error"] for r in shifted) > 0.5
    flipped = compare_all(ep.scaled(-1.0), minus_grad, model)  # a gradient ascent
    assert max(r["cosine"] for r in flipped) < -0.999 and max(r["sign_agreement"] for r in flipped) == 0
    early = run_check(make("toy", gain=1.0), cost, x, y, T=30, K=K, beta=1e-6)  # hypothesis broken
    assert early.free_residual > 1e-6 and worst(early.records) > 1.0


def test_error_grows_with_beta_linearly_one_sided_and_quadratically_symmetric():
    model = make("toy")
    x, y = batch()
    betas = [1e-4, 1e-3, 1e-2, 1e-1]
    one = [worst(run_check(model, MSECost(), x, y, T, K, beta=b).records) for b in betas]
    two = [worst(run_check(model, MSECost(), x, y, T, K, beta=b, symmetric=True).records) for b in betas]
    for small, large in zip(one, one[1:]):
        assert 5 < large / small < 20  # O(beta)
    for small, large in zip(two, two[1:]):
        assert 50 < large / small < 200  # O(beta^2)


def test_error_grows_with_eta_and_c_ep_leaves_the_model_unchanged():
    model = make("toy")
    before = [p.detach().clone() for p in model.flat_params()]
    x, y = batch()
    etas = [0.0, 1e-6, 1e-5, 1e-4]
    check = run_check(model, MSECost(), x, y, T, K, beta=1e-3, etas=etas)
    errors = [worst(check.records, eta=eta) for eta in etas]
    assert errors == sorted(errors) and errors[-1] > 100 * errors[0]
    for p, q in zip(model.flat_params(), before):
        assert torch.equal(p, q)


def test_c_ep_applies_the_continual_update_after_each_step():
    model, cost = make("toy"), MSECost()
    x, y = batch()
    start = free_trajectory(model, x, T, 1)[-1]
    beta, eta, steps = 1e-3, 1e-2, 3
    got = ep_processes(model, cost, x, y, start, steps, beta, eta)
    net, state = copy.deepcopy(model), start
    scale = beta * net.nudge_scale
    for t in range(steps):  # Eq. 5 written out: step with theta_t, record, then update theta
        with torch.no_grad():
            new = net.step(state, net.prepare(x), (y - state[-1]) * scale)
            delta = [(a - b) / scale for a, b in zip(net.dphi_dtheta(x, new), net.dphi_dtheta(x, state))]
            for p, d, g in zip(net.flat_params(), delta, got.params, strict=True):
                torch.testing.assert_close(g[t], d, rtol=1e-9, atol=1e-12)
                p.add_(eta * d)
        for a, b, g in zip(new, state, got.states, strict=True):
            torch.testing.assert_close(g[t], (a - b) / scale, rtol=1e-9, atol=1e-12)
        state = new
    plain = ep_processes(model, cost, x, y, start, steps, beta)
    torch.testing.assert_close(got.params[0][0], plain.params[0][0], rtol=0, atol=0)  # same theta_0
    assert not torch.allclose(got.params[0][2], plain.params[0][2], rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- metrics and report


def test_compare_metrics():
    b = torch.tensor([[1.0, -2.0, 0.0, 3.0], [0.5, 0.0, -1.0, 0.0]], dtype=torch.float64)
    same = compare(b.clone(), b)
    assert same["rel_error"] == 0 and same["cosine"] == pytest.approx(1.0) and same["sign_agreement"] == 1.0
    assert same["entries"] == 5  # the three exact zeros of the gradient carry no sign
    a = b.clone()
    a[0, 0] = -1.0  # one sign wrong
    a[0, 1] = 0.0  # zero where the gradient is not: a disagreement
    a[1, 1] = 0.1  # non-zero where the gradient is exactly zero: not counted
    a[1, 0] = 1e-3  # right sign
    b[1, 2] = 1e-7  # negligible next to max |grad| = 3 (SIGN_TOL): not counted
    a[1, 2] = -1.0
    got = compare(a, b)
    assert got["entries"] == 4 and got["sign_agreement"] == pytest.approx(2 / 4)
    assert got["rel_error"] == pytest.approx(float((a - b).norm() / b.norm()))
    assert got["cosine"] == pytest.approx(float(torch.nn.functional.cosine_similarity(a.sum(0), b.sum(0), dim=0)))
    assert compare(torch.zeros(2, 3), torch.zeros(2, 3))["cosine"] is None


def test_quantities_are_named_from_param_groups():
    params, states = quantities(make("prototypical"), 3)
    assert [q.name for q in params] == ["W_1", "b_1", "W_2", "b_2", "W_3", "b_3"]
    assert [(q.kind, q.layer) for q in params[2:4]] == [("W", 2), ("b", 2)]
    assert [q.name for q in states] == ["s^1", "s^2", "s^3"]


def _mapping(layers: list[int], dataset: str = "mnist") -> dict:
    return {"name": "gdu_test", "seed": 0, "loss": "mse",
            "circuit": {"dynamics": "prototypical", "layers": layers, "activation": "tanh",
                        "init_gain": [0.5] * (len(layers) - 1)},
            "estimator": {"name": "ep", "T": 100, "K": 6, "beta": 1e-3, "symmetric": True,
                          "lr": [0.1] * (len(layers) - 1)},
            "data": {"name": dataset}, "train": {"batch_size": 4},
            "compute": {"dtype": "float64"}}


def test_gdu_writes_records_table_and_figure(tmp_path):
    x, _ = batch()
    labels = torch.tensor([0, 1, 2, 3, 1])
    result = gdu(_mapping([8, 6, 4]), out=tmp_path, etas=[1e-5, 0.0, 1e-5], batch=(x, labels), progress=False)
    records = json.loads((tmp_path / "gdu.json").read_text())
    assert records == result.records
    assert [r["eta"] for r in records] == [0.0] * 6 + [1e-5] * 6  # eta = 0 first, no repeats
    assert [r["name"] for r in records[:6]] == ["W_1", "b_1", "W_2", "b_2", "s^1", "s^2"]
    for r in records:
        assert {"eta", "layer", "quantity", "rel_error", "cosine", "sign_agreement"} <= set(r)
    assert (tmp_path / "gdu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "config.yaml").exists()
    table = format_table(records)
    assert len(table.splitlines()) == 13 and "s^2" in table and "W_1" in table


def test_gdu_on_an_mnist_batch(tmp_path):
    result = gdu(_mapping([784, 16, 10], "mnist-sample"), out=tmp_path, progress=False)
    assert result.free_residual < 1e-14
    assert min(r["cosine"] for r in result.records) > 0.9999
    assert result.traces["panels"] == ["W_1", "W_2", "s^1", "s^2"]


# --------------------------------------------------------------------------- shipped configs
# These need the config section ``gdu`` and ``circuit.dynamics: toy`` (see the gdu module's
# proposal); they skip on a tree without them.

def _has_gdu_section() -> bool:
    from neurosim import config

    return "toy" in config.DYNAMICS and hasattr(config.Config(), "gdu")


@pytest.mark.skipif(not _has_gdu_section(), reason="config has no gdu section / toy dynamics yet")
def test_shipped_gdu_configs_load_and_the_toy_config_is_exact(tmp_path):
    from neurosim.config import load_config

    for name in ("gdu_toy", "gdu_fc1", "gdu_energy"):
        config = load_config(name)
        assert config.compute.dtype == "float64" and config.gdu.etas and min(config.gdu.etas) > 0
    g = torch.Generator().manual_seed(0)
    x, labels = torch.rand(4, 784, generator=g, dtype=torch.float64), torch.tensor([3, 1, 4, 1])
    result = gdu("gdu_toy", out=tmp_path, batch=(x, labels), progress=False)
    assert result.free_residual < 1e-14
    assert worst(result.records) < 1e-5
    etas = sorted({r["eta"] for r in result.records})
    errors = [worst(result.records, eta=eta) for eta in etas]
    assert errors == sorted(errors)
