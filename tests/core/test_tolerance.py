"""``estimator.tol``: phases that stop once the network has settled (float64, small networks)."""

from __future__ import annotations

import json

import pytest
import torch

from neurosim.config import load_config
from neurosim.core.network import build_network
from neurosim.core.phases import StepCounter, relax
from neurosim.errors import ConfigError
from neurosim.studies.theorem1 import run_check

BATCH = 5


def network(estimator: str = "ep", T: int = 200, K: int = 80, dynamics: str = "prototypical", **est):
    raw = {"circuit": {"dynamics": dynamics, "layers": [8, 6, 5, 4], "activation": "sigmoid", "eps": 0.3},
           "loss": "mse", "seed": 3,
           "estimator": {"name": estimator, "T": T, "K": K, "beta": 0.2, "lr": [0.1, 0.1, 0.1], **est}}
    return build_network(load_config(raw), dtype=torch.float64)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, 8, generator=g, dtype=torch.float64)
    return x, torch.nn.functional.one_hot(torch.randint(0, 4, (BATCH,), generator=g), 4).to(torch.float64)


def flat(updates):
    return [u for group in updates for u in group]


@torch.no_grad()
def test_a_settled_phase_stops_and_its_state_is_the_fixed_point():
    net = network()
    model, (x, _) = net.model, batch()
    drive = model.prepare(x)
    counter = StepCounter()
    settled = relax(model, drive, model.init_state(BATCH), 200, tol=1e-10, counter=counter)
    used = counter.steps["free"][0]
    assert 5 < used < 200  # it stopped, and not at once
    long = relax(model, drive, model.init_state(BATCH), 400)
    for a, b in zip(settled, long):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-8)
    # the step it stopped at is the first whose change is below tol
    before = relax(model, drive, model.init_state(BATCH), used - 1)
    after = relax(model, drive, model.init_state(BATCH), used)
    assert max(float((a - b).abs().max()) for a, b in zip(after, before)) < 1e-10
    before2 = relax(model, drive, model.init_state(BATCH), used - 2)
    assert max(float((a - b).abs().max()) for a, b in zip(before, before2)) >= 1e-10


@torch.no_grad()
@pytest.mark.parametrize("every", [3, 7])
def test_checking_every_k_steps_stops_at_the_first_checked_settled_step(every):
    net = network()
    model, (x, _) = net.model, batch()
    drive = model.prepare(x)
    each, sparse = StepCounter(), StepCounter()
    relax(model, drive, model.init_state(BATCH), 200, tol=1e-10, counter=each)
    state = relax(model, drive, model.init_state(BATCH), 200, tol=1e-10, counter=sparse, every=every)
    first = each.steps["free"][0]
    used = sparse.steps["free"][0]
    # the first multiple of k at or after the step checking each step stops at (the change only
    # shrinks on the way to the fixed point)
    assert used == -(-first // every) * every
    for a, b in zip(state, relax(model, drive, model.init_state(BATCH), used)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_tol_every_goes_through_the_estimators_and_is_validated():
    x, y = batch()
    for estimator in ("ep", "cep", "bptt"):
        net = network(estimator, T=120, K=20 if estimator != "bptt" else 10, tol=1e-9, tol_every=4)
        net.estimator.train_step(x, y)
        steps = net.estimator.counter.steps
        assert steps["free"][0] % 4 == 0 or steps["free"][0] == (120 if estimator != "bptt" else 110)
        if estimator == "ep":
            assert steps["nudged"][0] % 4 == 0 or steps["nudged"][0] == 20
    with pytest.raises(ConfigError, match="estimator.tol_every"):
        network(tol=1e-6, tol_every=0)


def test_without_tol_every_phase_runs_its_fixed_steps_as_before():
    net = network(T=30, K=8)
    x, y = batch()
    updates, _ = net.estimator.compute(x, y)
    reference = network(T=30, K=8, tol=None)
    again, _ = reference.estimator.compute(x, y)
    for a, b in zip(flat(updates), flat(again)):
        assert torch.equal(a, b)
    assert net.estimator.counter.steps == {}  # nothing counted without tol


@pytest.mark.parametrize("estimator, dynamics", [("ep", "prototypical"), ("ep", "energy"),
                                                 ("vf", "vector_field"), ("bptt", "prototypical")])
def test_updates_with_tol_equal_updates_of_long_fixed_phases(estimator, dynamics):
    """A tight tolerance with generous caps gives the updates of phases long enough to settle."""
    T = 500 if dynamics == "energy" else 300  # the energy model's Euler steps settle more slowly
    K = 60 if estimator == "bptt" else T - 100  # BPTT: K is the backpropagated steps
    fixed = network(estimator, T=T, K=K, dynamics=dynamics)
    tolerant = network(estimator, T=T, K=K, dynamics=dynamics, tol=1e-11)
    x, y = batch(1)
    want, _ = fixed.estimator.compute(x, y)
    got, _ = tolerant.estimator.compute(x, y)
    for a, b in zip(flat(got), flat(want)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    counted = tolerant.estimator.counter.steps
    assert counted["free"][0] < (T if estimator != "bptt" else T - K)
    if estimator in ("ep", "vf"):
        assert counted["nudged"][0] < K


def test_cep_stops_only_its_free_phase():
    net = network("cep", T=200, K=10, tol=1e-9, lr=[0.01, 0.01, 0.01])
    x, y = batch()
    net.estimator.train_step(x, y)
    assert set(net.estimator.counter.steps) == {"free"} and net.estimator.counter.steps["free"][0] < 200


def test_theorem1_with_tol_agrees_as_fixed_T_at_the_same_residual():
    net = network(T=400, K=20)
    x, y = batch(2)
    fixed = run_check(net.model, net.cost, x, y, 400, 20, 0.01)
    tolerant = run_check(net.model, net.cost, x, y, 400, 20, 0.01, tol=1e-9)
    assert tolerant.free_residual < 1e-9
    for a, b in zip(fixed.records, tolerant.records):
        for key in ("rel_err", "sign_agreement"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-6)


def test_tol_is_validated_and_refused_by_the_brian2_backends():
    with pytest.raises(ConfigError) as info:
        load_config({"estimator": {"tol": 0.0}})
    assert info.value.key == "estimator.tol"
    with pytest.raises(ConfigError) as info:
        load_config("mnist_ct1_ep_brian2", ["estimator.tol=1e-4"])
    assert info.value.key == "estimator.tol"


def test_steps_used_go_into_metrics(tmp_path):
    from neurosim.run.trainer import train

    out = tmp_path / "run"
    train({"circuit": {"layers": [784, 16, 10]}, "data": {"name": "mnist-sample", "train_subset": 100,
                                                           "test_subset": 50},
           "estimator": {"name": "ep", "T": 40, "K": 10, "tol": 1e-4, "lr": [0.05, 0.02]},
           "train": {"epochs": 1, "batch_size": 20}},
          out=out, progress=False)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    for phase, cap in (("free", 40), ("nudged", 10), ("eval", 40)):
        assert 1 <= row[f"{phase}_steps_mean"] <= row[f"{phase}_steps_max"] <= cap
