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


# --------------------------------------------------------------------------- tol_scope: sample

def conv_network(**est):
    raw = {"circuit": {"dynamics": "convolutional", "input_shape": [1, 10, 10], "activation": "hard_sigmoid",
                       "conv": [{"channels": 3, "kernel": 3, "pool": 2}, {"channels": 4, "kernel": 2, "pool": 2}],
                       "layers": [4]},
           "loss": "mse", "seed": 2, "estimator": {"name": "ep", "T": 150, "K": 40, "beta": 0.3,
                                                    "lr": [0.1, 0.1, 0.1], **est}}
    return build_network(load_config(raw), dtype=torch.float64)


def conv_batch(seed=0, n=7):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 100, generator=g, dtype=torch.float64)
    return x, torch.nn.functional.one_hot(torch.randint(0, 4, (n,), generator=g), 4).to(torch.float64)


@torch.no_grad()
@pytest.mark.parametrize("kind, every", [("prototypical", 1), ("prototypical", 3), ("conv", 1), ("conv", 4)])
def test_per_sample_phases_end_each_sample_as_if_relaxed_alone(kind, every):
    """Settled samples leave the batch: each one's fixed point and step count are those of the
    sample relaxed on its own with the per-batch rule, free and nudged."""
    from neurosim.core.phases import relax_nudged

    net = network() if kind == "prototypical" else conv_network()
    model, cost = net.model, net.cost
    x, y = batch(4) if kind == "prototypical" else conv_batch(4)
    n, tol = x.shape[0], 1e-9
    together = StepCounter()
    drive = model.prepare(x)
    free = relax(model, drive, model.init_state(n), 200, tol, together, every=every, per_sample=True)
    nudged = relax_nudged(model, drive, free, 150, cost, y, 0.3, tol, together, every, per_sample=True)
    samples = together.steps["free_sample"]
    assert len(samples) == n and len(set(samples)) > 1  # samples settle at different steps
    assert together.steps["free"] == [max(samples)] and together.steps["nudged"] == [max(together.steps["nudged_sample"])]
    for i in range(n):
        alone = StepCounter()
        xi, yi = x[i:i + 1], y[i:i + 1]
        d = model.prepare(xi)
        f = relax(model, d, model.init_state(1), 200, tol, alone, every=every)
        b = relax_nudged(model, d, f, 150, cost, yi, 0.3, tol, alone, every)
        assert alone.steps["free"] == [samples[i]] and alone.steps["nudged"] == [together.steps["nudged_sample"][i]]
        for got, want in zip(free + nudged, f + b):
            torch.testing.assert_close(got[i:i + 1], want, rtol=0, atol=1e-13)


@torch.no_grad()
def test_per_sample_phase_that_never_settles_is_the_fixed_phase_bit_for_bit():
    net = conv_network()
    model, (x, _) = net.model, conv_batch(1)
    drive = model.prepare(x)
    fixed = relax(model, drive, model.init_state(x.shape[0]), 60)
    never = relax(model, drive, model.init_state(x.shape[0]), 60, tol=1e-300, per_sample=True)
    for a, b in zip(fixed, never):
        assert torch.equal(a, b)


def test_tol_scope_sample_trains_evaluates_and_is_validated(tmp_path):
    from neurosim.run.trainer import train

    x, y = batch()
    for estimator in ("ep", "cep", "bptt"):
        net = network(estimator, T=120, K=20 if estimator != "bptt" else 10, tol=1e-8, tol_scope="sample")
        net.estimator.train_step(x, y)
        steps = net.estimator.counter.steps
        assert len(steps["free_sample"]) == BATCH and max(steps["free_sample"]) == steps["free"][0]
    out = tmp_path / "run"
    train({"circuit": {"layers": [784, 16, 10]}, "data": {"name": "mnist-sample", "train_subset": 100,
                                                           "test_subset": 50},
           "estimator": {"name": "ep", "T": 40, "K": 10, "tol": 1e-4, "tol_scope": "sample", "lr": [0.05, 0.02]},
           "train": {"epochs": 1, "batch_size": 20}},
          out=out, progress=False)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    for phase in ("free", "nudged", "eval"):
        assert 1 <= row[f"{phase}_sample_steps_mean"] <= row[f"{phase}_steps_mean"] <= row[f"{phase}_steps_max"]
    with pytest.raises(ConfigError) as info:
        network(tol_scope="sample")  # no tol
    assert info.value.key == "estimator.tol_scope"
    with pytest.raises(ConfigError) as info:
        network(tol=1e-6, tol_scope="layer")
    assert info.value.key == "estimator.tol_scope"


def test_tol_scope_sample_is_refused_with_a_read_side():
    raw = {"circuit": {"layers": [8, 6, 4], "activation": "sigmoid"}, "loss": "mse",
           "estimator": {"name": "ep", "T": 20, "K": 5, "lr": [0.1, 0.1], "tol": 1e-6, "tol_scope": "sample"},
           "synapses": {"device": "levels_64", "params": {"read_noise_std": 0.01}}}
    net = build_network(load_config(raw), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 8, generator=g, dtype=torch.float64)
    with pytest.raises(ConfigError) as info:
        net.estimator.train_step(x, torch.eye(4, dtype=torch.float64)[:3])
    assert info.value.key == "estimator.tol_scope"


def test_a_run_resumes_with_another_tol_scope_but_not_another_tol(tmp_path):
    from neurosim.run.trainer import train

    out = tmp_path / "run"
    raw = {"circuit": {"layers": [784, 16, 10]}, "data": {"name": "mnist-sample", "train_subset": 60,
                                                          "test_subset": 20},
           "estimator": {"name": "ep", "T": 30, "K": 8, "tol": 1e-4, "lr": [0.05, 0.02]},
           "train": {"epochs": 1, "batch_size": 20}}
    train(raw, out=out, progress=False)
    train(raw, out=out, resume=True, overrides=["train.epochs=2", "estimator.tol_scope=sample"], progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "free_sample_steps_mean" not in rows[0] and "free_sample_steps_mean" in rows[1]  # the switch shows
    with pytest.raises(ConfigError) as info:
        train(raw, out=out, resume=True, overrides=["train.epochs=3", "estimator.tol=1e-5"], progress=False)
    assert info.value.key == "estimator.tol"
