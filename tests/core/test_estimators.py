"""EP and BPTT estimators against independent autograd computations (float64)."""

from __future__ import annotations

import pytest
import torch

from neurosim.config import load_config
from neurosim.core.network import build_network

BATCH = 5


def network(kind: str, estimator: str = "ep", loss: str = "mse", dt: float = 1.0, **est):
    circuit = {"dynamics": kind, "layers": [8, 6, 5, 4], "activation": "sigmoid", "eps": 0.3, "dt": dt}
    raw = {"circuit": circuit, "loss": loss, "seed": 3,
           "estimator": {"name": estimator, "T": 30, "K": 8, "beta": 0.2, "lr": [0.1, 0.1, 0.1], **est}}
    config = load_config(raw)
    return build_network(config, dtype=torch.float64)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, 8, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (BATCH,), generator=g)
    return x, torch.nn.functional.one_hot(labels, 4).to(torch.float64)


def autograd_dphi_dtheta(model, x, state):
    return torch.autograd.grad(model.phi(x, state) / x.shape[0], model.flat_params())


def flat(updates):
    return [u for group in updates for u in group]


def relax_reference(model, x, state, steps, force=None):
    for _ in range(steps):
        state = model.step(state, model.prepare(x), None if force is None else force(state))
    return state


@pytest.mark.parametrize("kind, dt", [("prototypical", 1.0), ("prototypical", 0.5), ("energy", 1.0)])
def test_ep_update_is_phi_difference_over_beta(kind, dt):
    net = network(kind, dt=dt)
    model, x_y = net.model, batch()
    x, y = x_y
    updates, _ = net.estimator.compute(x, y)
    with torch.no_grad():
        free = relax_reference(model, x, model.init_state(BATCH), 30)
        scale = 0.2 * model.nudge_scale
        nudged = relax_reference(model, x, free, 8, lambda s: (y - s[-1]) * scale)
    expected = [(a - b) / scale for a, b in zip(autograd_dphi_dtheta(model, x, nudged),
                                                autograd_dphi_dtheta(model, x, free))]
    for got, want in zip(flat(updates), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["prototypical", "energy"])
def test_symmetric_ep_uses_plus_and_minus_beta(kind):
    net = network(kind, symmetric=True)
    model = net.model
    x, y = batch()
    updates, _ = net.estimator.compute(x, y)
    with torch.no_grad():
        free = relax_reference(model, x, model.init_state(BATCH), 30)
        scale = 0.2 * model.nudge_scale
        plus = relax_reference(model, x, free, 8, lambda s: (y - s[-1]) * scale)
        minus = relax_reference(model, x, free, 8, lambda s: (y - s[-1]) * -scale)
    expected = [(a - b) / (2 * scale) for a, b in zip(autograd_dphi_dtheta(model, x, plus),
                                                      autograd_dphi_dtheta(model, x, minus))]
    for got, want in zip(flat(updates), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_random_sign_draws_both_signs_and_keeps_the_update_a_descent_direction():
    net = network("energy", random_sign=True)
    g = torch.Generator().manual_seed(0)
    signs = {net.estimator.draw_beta(g) > 0 for _ in range(50)}
    assert signs == {True, False}
    x, y = batch()
    up = flat(net.estimator.compute(x, y, torch.Generator().manual_seed(1))[0])
    reference = network("energy")
    ref = flat(reference.estimator.compute(x, y)[0])
    cos = sum((a * b).sum() for a, b in zip(up, ref)) / (
        sum((a * a).sum() for a in up).sqrt() * sum((b * b).sum() for b in ref).sqrt())
    assert cos > 0.9  # -beta and +beta estimate the same gradient, up to O(beta)


@pytest.mark.parametrize("kind", ["prototypical", "energy"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_bptt_equals_autograd_through_unrolled_dynamics(kind, loss):
    """Reference: unroll s_{t+1} = rho(dPhi/ds) (or dPhi/ds) built from autograd of Phi itself."""
    net = network(kind, "bptt", loss)
    model, cost = net.model, net.cost
    x, y = batch()
    updates, result = net.estimator.compute(x, y)
    with torch.no_grad():
        state = relax_reference(model, x, model.init_state(BATCH), 30 - 8)
    state = [s.clone().requires_grad_(True) for s in state]
    for _ in range(8):
        grads = torch.autograd.grad(model.phi(x, state), state, create_graph=True)
        state = [model.activation(g) for g in grads] if kind == "prototypical" else list(grads)
    params = model.flat_params() + [p for grp in cost.param_groups() for p in grp]
    loss_value = cost.value(model.output(state), y).mean()
    expected = torch.autograd.grad(loss_value, params)
    for got, want in zip(flat(updates), expected, strict=True):
        torch.testing.assert_close(got, -want, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(result.loss.mean(), loss_value.detach())


def test_ep_with_small_beta_approaches_bptt_on_a_converged_energy_model():
    """Theorem 1 summed over the nudged phase: symmetric EP with small beta ~ -dL/dtheta."""
    ep = network("energy", symmetric=True, beta=1e-4, T=400, K=400)
    bptt = network("energy", "bptt", T=400, K=400)
    x, y = batch()
    g_ep = torch.cat([u.flatten() for u in flat(ep.estimator.compute(x, y)[0])])
    g_bptt = torch.cat([u.flatten() for u in flat(bptt.estimator.compute(x, y)[0])])
    rel = float((g_ep - g_bptt).norm() / g_bptt.norm())
    assert rel < 1e-6, rel  # measured 7e-9; one-sided beta = 0.1 gives 4e-2


def test_cross_entropy_readout_learns_from_dl_dtheta():
    net = network("prototypical", loss="cross_entropy")
    model, cost = net.model, net.cost
    x, y = batch()
    updates, _ = net.estimator.compute(x, y)
    with torch.no_grad():
        free = relax_reference(model, x, model.init_state(BATCH), 30)
        nudged = relax_reference(model, x, free, 8, lambda s: cost.force(s[-1], y) * 0.2)
    out = nudged[-1].detach()
    expected = torch.autograd.grad(cost.value(out, y).mean(), [cost.weight, cost.bias])
    for got, want in zip(updates[-1], expected, strict=True):
        torch.testing.assert_close(got, -want, rtol=1e-10, atol=1e-12)
    assert len(updates) == 3  # two dynamical weight layers, then the read-out


def test_train_step_applies_lr_per_layer():
    net = network("prototypical", lr=[0.0, 0.5, 0.0])
    before = [p.detach().clone() for p in net.model.flat_params()]
    x, y = batch()
    updates, _ = net.estimator.compute(x, y)
    net.estimator.train_step(x, y)
    after = net.model.flat_params()
    torch.testing.assert_close(after[0], before[0], rtol=0, atol=0)
    torch.testing.assert_close(after[2], before[2] + 0.5 * updates[1][0])
    torch.testing.assert_close(after[4], before[4], rtol=0, atol=0)


@pytest.mark.parametrize("kind, dt", [("prototypical", 1.0), ("prototypical", 0.5), ("energy", 1.0)])
def test_cep_updates_telescope_to_the_ep_update_as_eta_vanishes(kind, dt):
    """Eq. 5 summed over the K nudged steps equals Eq. 2 up to O(eta)."""
    eta = 1e-7
    cep = network(kind, "cep", dt=dt, lr=[eta] * 3)
    ep = network(kind, dt=dt)
    x, y = batch()
    before = [p.detach().clone() for p in cep.model.flat_params()]
    cep.estimator.train_step(x, y)
    moved = [(p.detach() - b) / eta for p, b in zip(cep.model.flat_params(), before)]
    expected = flat(ep.estimator.compute(x, y)[0])
    for got, want in zip(moved, expected, strict=True):
        rel = float((got - want).norm() / want.norm())
        assert rel < 1e-5, rel  # O(eta): measured 1e-6 at eta = 1e-7, 1e-4 at eta = 1e-5


def test_cep_with_larger_eta_departs_from_ep():
    x, y = batch()
    expected = torch.cat([u.flatten() for u in flat(network("prototypical").estimator.compute(x, y)[0])])
    errors = []
    for eta in (1e-4, 1e-2, 1e-1):
        cep = network("prototypical", "cep", lr=[eta] * 3)
        before = torch.cat([p.detach().flatten() for p in cep.model.flat_params()])
        cep.estimator.train_step(x, y)
        moved = (torch.cat([p.detach().flatten() for p in cep.model.flat_params()]) - before) / eta
        errors.append(float((moved - expected).norm() / expected.norm()))
    assert errors[0] < errors[1] < errors[2], errors


@pytest.mark.parametrize("beta", [0.2, -0.2])
def test_cep_in_phase_feedback_has_the_sign_of_beta(beta):
    """A weight that moves during the nudged phase moves the states that drive it: by (eta/beta)
    times their own change, so Hebbian (beta > 0) feedback amplifies the summed update beyond EP's
    and anti-Hebbian (beta < 0) feedback shrinks it, more so as eta grows (experiments/cep_feedback.py
    on MNIST; here measured gains on W_1: 1.11 / 1.38 / 3.10 and 0.89 / 0.72 / 0.39 at eta 0.01 / 0.03 / 0.1).
    At eta -> 0 both telescope to EP's update at their own beta."""
    x, y = batch()
    expected = flat(network("prototypical", dt=0.5, beta=beta).estimator.compute(x, y)[0])
    gains = []
    for eta in (1e-7, 1e-2, 3e-2, 1e-1):
        cep = network("prototypical", "cep", dt=0.5, beta=beta, lr=[eta] * 3)
        before = [p.detach().clone() for p in cep.model.flat_params()]
        cep.estimator.train_step(x, y)
        moved = [(p.detach() - b) / eta for p, b in zip(cep.model.flat_params(), before)]
        gains.append([float((m * e).sum() / (e * e).sum()) for m, e in zip(moved[::2], expected[::2])])
    assert all(abs(g - 1) < 1e-5 for g in gains[0]), gains[0]
    for layer in range(3):
        series = [g[layer] for g in gains]
        assert series == (sorted(series) if beta > 0 else sorted(series, reverse=True)), series
    assert (gains[-1][0] > 2.0) if beta > 0 else (gains[-1][0] < 0.5), gains[-1]


def test_cep_sends_every_step_through_the_synapse_hook(monkeypatch):
    import neurosim.hardware.synapses as synapses_module

    calls = []
    real = synapses_module.apply_updates
    monkeypatch.setattr(synapses_module, "apply_updates", lambda *a: (calls.append(1), real(*a)))
    net = network("energy", "cep", lr=[1e-3] * 3)
    net.estimator.train_step(*batch())
    assert len(calls) == 8  # K steps, one update each


@pytest.mark.parametrize("override, key", [({"symmetric": True}, "estimator.symmetric")])
def test_cep_rejects_what_it_cannot_do(override, key):
    from neurosim.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        network("prototypical", "cep", **override)
    with pytest.raises(ConfigError, match="loss"):
        network("prototypical", "cep", loss="cross_entropy")


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_cep_rank_b_drive_gives_the_weights_of_materialised_updates(dt):
    """Following W_1 x through x x^T and updating W_1 once equals updating it at every step."""
    x, y = batch()
    nets = [network("prototypical", "cep", dt=dt, lr=[0.05, 0.03, 0.02], materialize_updates=m)
            for m in (False, True)]
    for _ in range(3):  # several batches, so that drift would accumulate
        for net in nets:
            net.estimator.train_step(x, y)
    for fast, slow in zip(nets[0].model.flat_params(), nets[1].model.flat_params(), strict=True):
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    assert not torch.equal(nets[0].model.weights[0], network("prototypical").model.weights[0])


@pytest.mark.parametrize("kind", ["prototypical", "continuous"])
@pytest.mark.parametrize("device", ["levels_64", "aihwkit_pcm", "aihwkit_reram_sb"])
@pytest.mark.parametrize("follow_transposed", [1, 10**9])  # both ways of summing the change
def test_cep_device_drive_follows_the_written_devices(monkeypatch, kind, device, follow_transposed):
    """On devices, C-EP updates W_1 x from the devices each write touched (``Change``) instead of
    rebuilding it: after every step it must equal the drive rebuilt from the weights, whatever the
    device did (stochastic pulses, write noise, a differential pair's refresh)."""
    import neurosim.core.estimators.cep as cep

    circuit = {"dynamics": kind, "layers": [8, 6, 5, 4], "activation": "sigmoid", "eps": 0.3}
    raw = {"circuit": circuit, "loss": "mse", "seed": 3, "synapses": {"device": device},
           "estimator": {"name": "cep", "T": 20, "K": 6, "beta": 0.5, "lr": [0.5, 0.3, 0.2]}}
    net = build_network(load_config(raw), dtype=torch.float64)
    model, real, checked = net.model, cep.follow_input_writes, []

    def checking(drive, x, change, *args):
        before = drive.clone()
        out = real(drive, x, change, *args)
        torch.testing.assert_close(out, model.prepare(x)[0], rtol=0, atol=1e-12)
        checked.append(bool(change.index.numel()) and not torch.equal(out, before))
        return out

    monkeypatch.setattr(cep, "follow_input_writes", checking)
    monkeypatch.setattr(cep, "FOLLOW_FRACTION", 1.0)  # follow every write (a small W_1 changes mostly)
    monkeypatch.setattr(cep, "FOLLOW_TRANSPOSED", follow_transposed)
    x, y = batch()
    for seed in range(4):
        net.estimator.train_step(x, y, torch.Generator().manual_seed(seed))
    assert len(checked) == 4 * 6 and any(checked), checked  # some writes moved devices of W_1
    report = net.estimator.synapses.report()
    assert report["pulses"] > 0
    if device == "aihwkit_pcm":  # the pair's refresh moved weights too, and the drive followed
        assert report["refreshes"] > 0
        assert report["pulses_per_device_max"] >= report["pulses_per_device_mean"]
