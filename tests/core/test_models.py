"""The dynamics and parameter gradients of the models, against autograd of Phi and E (float64)."""

from __future__ import annotations

import pytest
import torch

from neurosim.core.activations import ACTIVATIONS, get_activation
from neurosim.errors import ConfigError
from neurosim.core.models import EnergyModel, PrototypicalModel

SIZES = [7, 6, 5, 3]


def make(kind: str, activation: str = "sigmoid", seed: int = 0, eps: float = 0.3):
    g = torch.Generator().manual_seed(seed)
    act = get_activation(activation)
    if kind == "energy":
        return EnergyModel(SIZES, act, g, eps=eps, dtype=torch.float64)
    return PrototypicalModel(SIZES, act, g, dtype=torch.float64)


def random_state(model, batch=4, low=0.05, high=0.95, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [low + (high - low) * torch.rand(batch, n, generator=g, dtype=torch.float64) for n in model.sizes[1:]]


def random_input(batch=4, seed=2):
    return torch.rand(batch, SIZES[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def autograd_dphi_ds(model, x, state):
    leaves = [s.clone().requires_grad_(True) for s in state]
    return torch.autograd.grad(model.phi(x, leaves), leaves)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_energy_step_is_minus_eps_dE_ds(activation):
    model = make("energy", activation)
    x, state = random_input(), random_state(model)
    leaves = [s.clone().requires_grad_(True) for s in state]
    dE = torch.autograd.grad(model.energy(x, leaves), leaves)
    new = model.step(state, model.prepare(x))
    for s, s_new, g in zip(state, new, dE):
        torch.testing.assert_close(s_new - s, -model.eps * g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_energy_step_is_dphi_ds(activation):
    model = make("energy", activation)
    x, state = random_input(), random_state(model)
    for s_new, g in zip(model.step(state, model.prepare(x)), autograd_dphi_ds(model, x, state)):
        torch.testing.assert_close(s_new, g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_prototypical_step_is_rho_of_dphi_ds(activation):
    model = make("prototypical", activation)
    x, state = random_input(), random_state(model)
    expected = [model.activation(g) for g in autograd_dphi_ds(model, x, state)]
    for s_new, e in zip(model.step(state, model.prepare(x)), expected):
        torch.testing.assert_close(s_new, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dt", [0.2, 0.5])
def test_damped_prototypical_step_and_its_phi(dt):
    g = torch.Generator().manual_seed(0)
    model = PrototypicalModel(SIZES, get_activation("sigmoid"), g, dt=dt, dtype=torch.float64)
    undamped = PrototypicalModel(SIZES, get_activation("sigmoid"), torch.Generator().manual_seed(0),
                                 dtype=torch.float64)
    x, state = random_input(), random_state(model)
    target = [model.activation(gr) for gr in autograd_dphi_ds(undamped, x, state)]
    for s, s_new, t in zip(state, model.step(state, model.prepare(x)), target):
        torch.testing.assert_close(s_new, (1 - dt) * s + dt * t, rtol=1e-12, atol=1e-12)
    # Phi_dt = (1 - dt)/2 ||s||^2 + dt Phi: its parameter gradient is dt times the undamped one
    for a, b in zip(model.dphi_dtheta(x, state), undamped.dphi_dtheta(x, state)):
        torch.testing.assert_close(a, dt * b)
    assert model.nudge_scale == dt


@pytest.mark.parametrize("kind", ["prototypical", "energy"])
def test_nudge_force_is_added_to_the_output_only(kind):
    model = make(kind)
    x, state = random_input(), random_state(model)
    drive = model.prepare(x)
    force = torch.full((4, SIZES[-1]), 0.25, dtype=torch.float64)
    free, nudged = model.step(state, drive), model.step(state, drive, force)
    for a, b in zip(free[:-1], nudged[:-1]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(nudged[-1], free[-1] + force)


@pytest.mark.parametrize("kind", ["prototypical", "energy"])
def test_dphi_dtheta_matches_autograd(kind):
    model = make(kind)
    x, state = random_input(), random_state(model)
    params = model.flat_params()
    expected = torch.autograd.grad(model.phi(x, state) / x.shape[0], params)
    for got, want in zip(model.dphi_dtheta(x, state), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    other = random_state(model, seed=5)
    diff = model.dphi_dtheta_difference(x, state, other)
    for d, a, b in zip(diff, model.dphi_dtheta(x, state), model.dphi_dtheta(x, other), strict=True):
        torch.testing.assert_close(d, a - b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["prototypical", "energy"])
def test_input_drive_is_computed_once_per_phase(kind):
    """step() must use the prepared drive, not recompute W_1 x at every step."""
    model = make(kind)
    x, state = random_input(), random_state(model)
    drive = model.prepare(x)
    before = model.step(state, drive)
    with torch.no_grad():
        model.weights[0].mul_(3.0)  # would change the result if step() read W_1
    after = model.step(state, drive)
    torch.testing.assert_close(before[0], after[0], rtol=0, atol=0)


def test_clamped_energy_states_stay_in_unit_box():
    g = torch.Generator().manual_seed(0)
    model = EnergyModel([7, 6, 3], get_activation("sigmoid"), g, eps=0.9, clamp=True, dtype=torch.float64)
    with torch.no_grad():
        for w in model.weights:
            w.mul_(20)
    x, state = random_input(), random_state(model, low=-2, high=3)
    drive = model.prepare(x)
    for _ in range(5):
        state = model.step(state, drive)
        assert all(bool(((s >= 0) & (s <= 1)).all()) for s in state)


def test_hard_sigmoid_state_at_zero_can_move():
    """rho'(0) = 1 (closed interval), else a free phase starting at s = 0 would never move."""
    g = torch.Generator().manual_seed(0)
    model = EnergyModel([7, 6, 3], get_activation("hard_sigmoid"), g, eps=0.5, dtype=torch.float64)
    x = random_input()
    with torch.no_grad():
        state = model.step(model.init_state(4), model.prepare(x))
    assert float(state[0].abs().sum()) > 0


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="circuit.activation"):
        get_activation("relu6")


def test_same_seed_gives_same_weights_on_any_dtype():
    a = PrototypicalModel(SIZES, get_activation("sigmoid"), torch.Generator().manual_seed(3), dtype=torch.float64)
    b = PrototypicalModel(SIZES, get_activation("sigmoid"), torch.Generator().manual_seed(3), dtype=torch.float32)
    for p, q in zip(a.flat_params(), b.flat_params()):
        torch.testing.assert_close(p.float(), q)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_value_and_prime_match_autograd(name):
    act = get_activation(name)
    x = torch.linspace(-1.5, 2.5, 101, dtype=torch.float64).requires_grad_(True)
    value = act(x)
    (derivative,) = torch.autograd.grad(value.sum(), x)
    v, p = act.value_and_prime(x.detach())
    inside = (x.detach() - 0).abs().gt(1e-9) & (x.detach() - 1).abs().gt(1e-9)  # hard sigmoid kinks
    torch.testing.assert_close(v, value.detach())
    torch.testing.assert_close(p[inside], derivative[inside])
    torch.testing.assert_close(act.prime(x.detach()), p)


def test_parameters_list_reads_like_a_parameter_list():
    """The step loop's cheap parameter list (plain-list slices, direct iteration) must hold the
    same parameters, in the same order, under the same state-dict names as nn.ParameterList."""
    from torch import nn

    from neurosim.core.models.base import Parameters

    values = [nn.Parameter(torch.full((2,), float(k))) for k in range(4)]
    fast, plain = Parameters(values), nn.ParameterList(values)
    assert [id(p) for p in fast] == [id(p) for p in plain]
    assert [id(p) for p in fast[1:]] == [id(p) for p in plain[1:]] and isinstance(fast[1:], list)
    assert fast[2] is plain[2] and fast[-1] is plain[-1] and len(fast) == 4
    assert list(fast.state_dict()) == list(plain.state_dict()) == ["0", "1", "2", "3"]
    fast[1] = nn.Parameter(torch.zeros(2))  # replacing an entry keeps its place
    assert [p.tolist()[0] for p in fast] == [0.0, 0.0, 2.0, 3.0]
    fast.append(nn.Parameter(torch.ones(2)))
    assert len(list(fast)) == 5 and fast[4] is list(fast)[-1]
