"""The torch continuous-time model: its Euler step, its fixed points against the discrete
energy-based model, and its place in the config/model machinery."""

import pytest
import torch

from neurosim.core.activations import get_activation
from neurosim.config import load_config
from neurosim.core.models import ContinuousModel, EnergyModel, build_model
from neurosim.core.phases import relax

SIZES = [64, 32, 10]


def _pair(eps: float, activation: str = "hard_sigmoid", clamp: bool = True):
    def make(cls):
        return cls(SIZES, get_activation(activation), torch.Generator().manual_seed(3), eps=eps,
                   clamp=clamp, dtype=torch.float64)

    return make(ContinuousModel), make(EnergyModel)


def _inputs(batch: int = 5) -> torch.Tensor:
    return torch.rand(batch, SIZES[0], generator=torch.Generator().manual_seed(7), dtype=torch.float64)


def test_euler_step_of_the_leaky_integrator():
    """One step is s + (dt/tau) (-s + W rho(s_below) + W^T rho(s_above) + b), written out by hand."""
    model, _ = _pair(0.3, activation="sigmoid", clamp=False)
    x = _inputs()
    state = [torch.rand(5, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) for n in SIZES[1:]]
    rho = model.activation
    w1, w2 = model.weights
    b1, b2 = model.biases
    expected1 = state[0] + 0.3 * (-state[0] + x @ w1.T + rho(state[1]) @ w2 + b1)
    expected2 = state[1] + 0.3 * (-state[1] + rho(state[0]) @ w2.T + b2)
    new = model.step(state, model.prepare(x))
    torch.testing.assert_close(new[0], expected1, rtol=0, atol=1e-14)
    torch.testing.assert_close(new[1], expected2, rtol=0, atol=1e-14)


@pytest.mark.parametrize("tau_ms,dt_ms", [(10.0, 5.0), (20.0, 2.0)])
def test_fixed_points_equal_the_discrete_energy_model(tau_ms, dt_ms):
    """With eps = dt / tau, hard sigmoid and clipped states, both take the same steps (rho' = 1 on
    [0, 1]) and settle to the same fixed point, which is a fixed point of the leaky integrator."""
    eps = dt_ms / tau_ms
    continuous, energy = _pair(eps)
    x = _inputs()
    steps = int(100 / eps)
    sc = relax(continuous, continuous.prepare(x), continuous.init_state(5), steps)
    se = relax(energy, energy.prepare(x), energy.init_state(5), steps)
    for a, b in zip(sc, se):
        assert (a - b).abs().max().item() < 1e-12
    after = continuous.step(sc, continuous.prepare(x))
    assert max((a - b).abs().max().item() for a, b in zip(after, sc)) < 1e-10  # settled


def test_without_rho_prime_the_sigmoid_fixed_points_differ():
    """The documented difference: with a sigmoid, rho' != 1 and the energy model's fixed points move."""
    continuous, energy = _pair(0.5, activation="sigmoid", clamp=False)
    x = _inputs()
    sc = relax(continuous, continuous.prepare(x), continuous.init_state(5), 80)
    se = relax(energy, energy.prepare(x), energy.init_state(5), 80)
    assert (sc[0] - se[0]).abs().max().item() > 1e-3


def test_step_is_the_energy_gradient_inside_the_box():
    """Inside [0, 1] (hard sigmoid, rho' = 1) the step is dPhi/ds, so EP's theory applies."""
    model, _ = _pair(0.5, clamp=False)
    x = _inputs(3)
    state = [torch.rand(3, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n)).mul_(0.8).add_(0.1)
             .requires_grad_() for n in SIZES[1:]]
    grads = torch.autograd.grad(model.phi(x, state), state)
    new = model.step([s.detach() for s in state], model.prepare(x))
    for g, s in zip(grads, new):
        torch.testing.assert_close(g, s, rtol=0, atol=1e-13)


def test_config_builds_the_continuous_model():
    config = load_config({"circuit": "mnist_ct1", "estimator": {"lr": [0.1, 0.05]}})
    model = build_model(config.circuit, torch.Generator().manual_seed(0))
    assert isinstance(model, ContinuousModel)
    assert model.sizes == [784, 500, 10] and model.eps == 0.5 and model.clamp
