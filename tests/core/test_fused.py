"""``compute.fused``: the compiled relaxation computes the eager step's states (float32)."""

from __future__ import annotations

import pytest
import torch

from neurosim.config import load_config
from neurosim.core import fused
from neurosim.core.network import build_network
from neurosim.core.phases import StepCounter, relax, relax_nudged

BATCH = 7
ATOL = 2e-6  # float32: the products sum in another order, the sigmoid's exp is a polynomial


def network(layers=(12, 9, 7, 4), activation="sigmoid", dt=0.5, dynamics="prototypical", loss="mse",
            estimator="ep", fused_=True, **est):
    raw = {"circuit": {"dynamics": dynamics, "layers": list(layers), "activation": activation, "dt": dt,
                       **({"initial_angle": 40.0} if dynamics == "vector_field" else {})},
           "loss": loss, "seed": 5, "compute": {"fused": fused_},
           "estimator": {"name": estimator, "T": 30, "K": 10, "beta": 0.3,
                         "lr": [0.05] * (len(layers) - 1), **est}}
    return build_network(load_config(raw))


def batch(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, net.model.sizes[0], generator=g) * 2 - 0.5
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (BATCH,), generator=g), 4).float()
    return x, y


def eager(model, run):
    """``run()`` with the model stepping in torch."""
    model.fused = False
    try:
        return run()
    finally:
        model.fused = True


def close(a, b, atol=ATOL):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.shape == v.shape and u.is_contiguous()
        torch.testing.assert_close(u, v, rtol=0, atol=atol)


@torch.no_grad()
@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid", "tanh"])
@pytest.mark.parametrize("dt", [1.0, 0.3])
@pytest.mark.parametrize("layers", [(12, 9, 4), (12, 9, 7, 4), (12, 9, 8, 7, 4)])
def test_free_and_nudged_phases_match_the_eager_step(activation, dt, layers):
    net = network(layers, activation, dt)
    model, (x, y) = net.model, batch(net)
    assert model.fused_operands() is not None
    drive = model.prepare(x)
    start = [s.uniform_(0, 1) for s in model.init_state(BATCH)]  # not only from zero
    free = relax(model, drive, start, 30)
    close(free, eager(model, lambda: relax(model, drive, start, 30)))
    for beta in (0.3, -0.7):
        nudged = relax_nudged(model, drive, free, 10, net.cost, y, beta)
        close(nudged, eager(model, lambda: relax_nudged(model, drive, free, 10, net.cost, y, beta)))
    assert all(not torch.equal(a, b) for a, b in zip(free, start))  # the phase did step


@torch.no_grad()
def test_the_eager_path_is_what_runs_without_fusion():
    """compute.fused false: bit for bit the step loop (the fused result differs in rounding)."""
    net = network(fused_=False)
    model, (x, _) = net.model, batch(net)
    assert model.fused_operands() is None
    drive = model.prepare(x)
    state = model.init_state(BATCH)
    for _ in range(30):
        state = model.step(state, drive)
    for a, b in zip(relax(model, drive, model.init_state(BATCH), 30), state):
        assert torch.equal(a, b)


@torch.no_grad()
@pytest.mark.parametrize("every", [1, 4])
def test_a_tolerance_stops_the_compiled_phase_where_the_eager_one_stops(every):
    net = network(dt=0.5)
    model, (x, y) = net.model, batch(net)
    drive = model.prepare(x)
    counts = {}
    for name, run in (("fused", lambda f: f()), ("eager", lambda f: eager(model, f))):
        counter = StepCounter()
        free = run(lambda: relax(model, drive, model.init_state(BATCH), 300, tol=1e-4, counter=counter,
                                 every=every))
        nudged = run(lambda: relax_nudged(model, drive, free, 300, net.cost, y, 0.3, tol=1e-4,
                                          counter=counter, every=every))
        counts[name] = counter.steps, free, nudged
    (steps_f, free_f, nudged_f), (steps_e, free_e, nudged_e) = counts["fused"], counts["eager"]
    for phase in ("free", "nudged"):
        used_f, used_e = steps_f[phase][0], steps_e[phase][0]
        assert 5 < used_e < 300 and used_e % every == 0
        assert abs(used_f - used_e) <= every  # a change at the threshold may round either way
    if steps_f == steps_e:
        close(free_f, free_e, atol=1e-5)
        close(nudged_f, nudged_e, atol=1e-5)


@torch.no_grad()
def test_a_vector_field_relaxes_with_its_own_feedback_matrices():
    net = network(dynamics="vector_field", estimator="vf")
    model, (x, y) = net.model, batch(net)
    assert model.fused_operands() is not None
    drive = model.prepare(x)
    free = relax(model, drive, model.init_state(BATCH), 30)
    close(free, eager(model, lambda: relax(model, drive, model.init_state(BATCH), 30)))
    nudged = relax_nudged(model, drive, free, 10, net.cost, y, 0.3)
    close(nudged, eager(model, lambda: relax_nudged(model, drive, free, 10, net.cost, y, 0.3)))


@pytest.mark.parametrize("estimator", ["ep", "cep", "bptt", "vf", "cvf"])
def test_training_steps_match_with_and_without_fusion(estimator):
    """Whole training steps (EP's phases, C-EP's free phase, BPTT's no-grad prefix): the same
    weights after a few batches, to float32 rounding."""
    dynamics = "vector_field" if estimator in ("vf", "cvf") else "prototypical"
    nets = [network(estimator=estimator, dynamics=dynamics, fused_=flag) for flag in (True, False)]
    for seed in range(3):
        x, y = batch(nets[0], seed)
        for net in nets:
            net.estimator.train_step(x, y)
    for a, b in zip(nets[0].model.parameters(), nets[1].model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@torch.no_grad()
def test_phases_the_compiled_loop_does_not_compute_step_in_torch():
    net = network()
    model, (x, y) = net.model, batch(net)
    operands = model.fused_operands()
    assert fused.usable(model.init_state(BATCH), operands)
    assert not fused.usable([s.double() for s in model.init_state(BATCH)], operands)  # the checks' float64
    with torch.enable_grad():
        assert not fused.usable(model.init_state(BATCH), operands)  # BPTT's unrolled steps need autograd
    wide = network(layers=(12, 200, 200, 4))  # a square 200 x 200 W_2: a library product is faster
    assert not fused.usable(wide.model.init_state(BATCH), wide.model.fused_operands())
    ce = network(layers=(12, 9, 7, 4), loss="cross_entropy")  # the read-out's force is not a pull to y
    drive = ce.model.prepare(x)
    free = relax(ce.model, drive, ce.model.init_state(BATCH), 30)
    # cross_entropy: the last circuit layer becomes the read-out, the dynamics end one layer earlier
    target = torch.nn.functional.one_hot(torch.arange(BATCH) % 4, 4).float()
    nudged = relax_nudged(ce.model, drive, free, 10, ce.cost, target, 0.3)
    reference = eager(ce.model, lambda: relax_nudged(ce.model, drive, free, 10, ce.cost, target, 0.3))
    for a, b in zip(nudged, reference):
        assert torch.equal(a, b)
    one_layer = network(layers=(12, 4))
    assert not fused.usable(one_layer.model.init_state(BATCH), one_layer.model.fused_operands())


def test_a_model_with_a_step_of_its_own_is_not_compiled():
    from neurosim.core.models.prototypical import PrototypicalModel

    class Custom(PrototypicalModel):
        def step(self, state, drive, force=None):
            return super().step(state, drive, force)

    net = network()
    net.model.__class__ = Custom
    assert net.model.fused_operands() is None


@torch.no_grad()
def test_a_large_batch_on_several_threads_shares_its_samples_and_matches():
    """From fused.PARALLEL_BATCH samples on, with more than one torch thread, the samples of a
    step are shared among threads (numba's prange): same states."""
    net = network()
    model = net.model
    g = torch.Generator().manual_seed(1)
    n = fused.PARALLEL_BATCH + 3
    x = torch.rand(n, model.sizes[0], generator=g)
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (n,), generator=g), 4).float()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        drive = model.prepare(x)
        free = relax(model, drive, model.init_state(n), 30)
        close(free, eager(model, lambda: relax(model, drive, model.init_state(n), 30)))
        nudged = relax_nudged(model, drive, free, 10, net.cost, y, 0.3, tol=1e-5)
        close(nudged, eager(model, lambda: relax_nudged(model, drive, free, 10, net.cost, y, 0.3, tol=1e-5)))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("layers", [(12, 9, 4), (12, 9, 7, 4)])
@pytest.mark.parametrize("beta", [0.3, -0.4])
def test_the_compiled_cep_nudged_phase_writes_the_eager_weights(layers, beta, monkeypatch):
    """C-EP on ideal synapses (rank-B path): the whole nudged phase with its per-step writes of
    W_n, b_n (n >= 2) and the drive following W_1, compiled: same weights as the torch steps."""
    calls = []
    original = fused.continual_nudged
    monkeypatch.setattr(fused, "continual_nudged", lambda *a, **k: calls.append(1) or original(*a, **k))
    nets = [network(layers, estimator="cep", fused_=flag, beta=beta, lr=[0.2] * (len(layers) - 1))
            for flag in (True, False)]
    for seed in range(4):
        x, y = batch(nets[0], seed)
        for net in nets:
            net.estimator.train_step(x, y)
    assert len(calls) == 4
    moved = False
    for a, b, start in zip(nets[0].model.parameters(), nets[1].model.parameters(),
                           network(layers, estimator="cep").model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6)
        moved |= not torch.allclose(b, start)
    assert moved


def test_cep_on_devices_writes_every_step_through_the_synapses(monkeypatch):
    """Devices must see each per-step write: the compiled C-EP phase is for ideal synapses only."""
    monkeypatch.setattr(fused, "continual_nudged", lambda *a, **k: pytest.fail("compiled C-EP phase on devices"))
    raw = {"circuit": {"dynamics": "prototypical", "layers": [12, 9, 4], "activation": "sigmoid", "dt": 0.5},
           "loss": "mse", "seed": 5, "synapses": {"device": "levels_64"},
           "estimator": {"name": "cep", "T": 20, "K": 5, "beta": 0.3, "lr": [0.05, 0.05]}}
    net = build_network(load_config(raw))
    x, y = batch(net)
    net.estimator.train_step(x, y)
