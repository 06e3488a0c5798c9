"""Vector-field models, VF and C-VF (float64 against autograd and against the tied network)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import neurosim
from neurosim.config import load_config
from neurosim.errors import ConfigError
from neurosim.studies.gdu import run_check
from neurosim.core.losses import MSECost
from neurosim.core.models.vector_field import angle_degrees, angled_copy
from neurosim.core.network import build_network

from mnist_data import SAMPLE_OVERRIDES
BATCH = 5


def network(dynamics="vector_field", estimator="cvf", angle=0.0, dt=0.5, activation="sigmoid", **est):
    circuit = {"dynamics": dynamics, "layers": [8, 6, 5, 4], "activation": activation, "dt": dt}
    if dynamics == "vector_field":
        circuit["initial_angle"] = angle
    raw = {"circuit": circuit, "seed": 3,
           "estimator": {"name": estimator, "T": 40, "K": 8, "beta": 0.2, "lr": [0.1, 0.1, 0.1], **est}}
    return build_network(load_config(raw), dtype=torch.float64)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, 8, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (BATCH,), generator=g)
    return x, torch.nn.functional.one_hot(labels, 4).to(torch.float64)


def flat(updates):
    return [u for group in updates for u in group]


def random_state(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(BATCH, n, generator=g, dtype=torch.float64) for n in model.sizes[1:]]


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_tied_vector_field_at_angle_zero_is_the_prototypical_network(dt):
    vf = network(dt=dt).model
    proto = network("prototypical", "ep", dt=dt).model
    for w, b in zip(vf.weights[1:], vf.backward):
        assert torch.equal(b, w.t())
    for a, b in zip(list(vf.weights) + list(vf.biases), list(proto.weights) + list(proto.biases)):
        assert torch.equal(a, b)  # the same draws: B adds none at angle 0
    x, y = batch()
    sv, sp = vf.init_state(BATCH), proto.init_state(BATCH)
    dv, dp = vf.prepare(x), proto.prepare(x)
    for t in range(30):
        force = 0.1 * (y - sv[-1]) if t >= 20 else None
        sv, sp = vf.step(sv, dv, force), proto.step(sp, dp, None if force is None else force.clone())
        for a, b in zip(sv, sp):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-15)


@pytest.mark.parametrize("degrees", [0.0, 5.0, 30.0, 45.0, 60.0, 89.0, 90.0, 135.0, 180.0])
def test_initial_angle_construction_gives_the_requested_angle(degrees):
    g = torch.Generator().manual_seed(0)
    w = torch.rand(50, 30, generator=g, dtype=torch.float64) - 0.5
    b = angled_copy(w, degrees, g)
    assert abs(angle_degrees(w, b) - degrees) < 1e-6
    assert math.isclose(float(b.norm()), float(w.norm()), rel_tol=1e-12)
    model = build_network(load_config({"circuit": {"dynamics": "vector_field", "layers": [784, 512, 128, 10],
                                                   "initial_angle": degrees},
                                       "estimator": {"name": "cvf", "lr": [0.01] * 3}})).model  # float32
    assert all(abs(a - degrees) < 1.0 for a in model.angles())
    assert model.diagnostics() == {"angle_deg": [round(a, 4) for a in model.angles()]}


@pytest.mark.parametrize("angle", [0.0, 40.0])
@pytest.mark.parametrize("dt", [1.0, 0.5])
@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid", "tanh"])
def test_local_update_is_df_dtheta_transposed_times_the_state_change(angle, dt, activation):
    """nudged_step's numerator equals autograd's (dF/dtheta(s_t))^T (s_{t+1} - s_t) / batch."""
    model = network(angle=angle, dt=dt, activation=activation).model
    x, y = batch()
    state = random_state(model)
    force = 0.3 * (y - state[-1])
    with torch.no_grad():
        new, local, du = model.nudged_step(x, state, model.prepare(x), force)
    assert du is None
    with torch.enable_grad():
        out = model.step(state, model.prepare(x), force)
        want = torch.autograd.grad(out, model.flat_params(), [(a - b) / BATCH for a, b in zip(new, state)])
    for got, expected, name in zip(local, want, model.param_names(), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-13, msg=name)
    with torch.no_grad():
        _, rest, du = model.nudged_step(x, state, model.prepare(x), force, first_layer=False)
    torch.testing.assert_close(du.t() @ x / BATCH, local[0])
    torch.testing.assert_close(du.mean(0), local[1])
    for a, b in zip(rest, local[2:], strict=True):
        torch.testing.assert_close(a, b)


def test_vf_update_is_the_sum_of_local_updates_along_the_nudged_phase():
    net = network(estimator="vf", angle=30.0)
    model, est = net.model, net.estimator
    x, y = batch()
    updates, _ = est.compute(x, y)
    drive, state = est.free_phase(x)
    total = None
    with torch.no_grad():
        for _ in range(est.config.K):
            force = net.cost.force(model.output(state), y).mul_(0.2 * model.nudge_scale)
            state, local, _ = model.nudged_step(x, state, drive, force)
            total = local if total is None else [t + d for t, d in zip(total, local)]
    for got, want in zip(flat(updates), total, strict=True):
        torch.testing.assert_close(got, want / (0.2 * model.nudge_scale), rtol=1e-10, atol=1e-14)


def test_cvf_updates_sum_to_the_vf_update_as_eta_vanishes():
    eta = 1e-7
    cvf = network(estimator="cvf", angle=30.0, lr=[eta] * 3)
    vf = network(estimator="vf", angle=30.0)
    x, y = batch()
    before = [p.detach().clone() for p in cvf.model.flat_params()]
    cvf.estimator.train_step(x, y)
    moved = [(p.detach() - b) / eta for p, b in zip(cvf.model.flat_params(), before)]
    for got, want in zip(moved, flat(vf.estimator.compute(x, y)[0]), strict=True):
        rel = float((got - want).norm() / want.norm())
        assert rel < 1e-5, rel


def test_cvf_rank_b_drive_gives_the_weights_of_materialised_updates():
    x, y = batch()
    nets = [network(angle=45.0, lr=[0.05, 0.03, 0.02], materialize_updates=m) for m in (False, True)]
    for _ in range(3):
        for net in nets:
            net.estimator.train_step(x, y)
    for fast, slow in zip(nets[0].model.flat_params(), nets[1].model.flat_params(), strict=True):
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    assert nets[0].model.angles()[0] > 45.0 - 10 and nets[0].model.angles() != network(angle=45.0).model.angles()


def test_symmetric_vf_averages_the_two_signs():
    net = network(estimator="vf", angle=20.0, symmetric=True)
    plus = network(estimator="vf", angle=20.0)
    minus = network(estimator="vf", angle=20.0, beta=-0.2)
    x, y = batch()
    got = flat(net.estimator.compute(x, y)[0])
    a, b = flat(plus.estimator.compute(x, y)[0]), flat(minus.estimator.compute(x, y)[0])
    for g, p, m in zip(got, a, b, strict=True):
        torch.testing.assert_close(g, (p + m) / 2, rtol=1e-10, atol=1e-14)


def test_bptt_trains_vector_fields_through_both_weight_directions():
    net = network(estimator="bptt", angle=30.0)
    updates, _ = net.estimator.compute(*batch())
    assert all(float(u.abs().max()) > 0 for u in flat(updates))  # backward weights get gradients too


def test_theorem_one_agreement_degrades_with_the_angle():
    """Fig. 1c's x axis: the tied network satisfies Theorem 1 best (up to rho' spread)."""
    x, y = batch()
    errors = []
    for angle in (0.0, 30.0, 80.0):
        model = network(angle=angle, dt=0.5, activation="tanh").model
        check = run_check(model, MSECost(), x, y, T=200, K=8, beta=1e-4)
        errors.append(max(r["rel_error"] for r in check.records if r["quantity"] == "W"))
    assert errors[0] < errors[1] < errors[2], errors


@pytest.mark.parametrize("raw, key", [
    ({"circuit": {"dynamics": "vector_field"}, "estimator": {"name": "ep"}}, "estimator.name"),
    ({"circuit": {"dynamics": "vector_field"}, "estimator": {"name": "cep"}}, "estimator.name"),
    ({"circuit": {"dynamics": "prototypical"}, "estimator": {"name": "cvf"}}, "estimator.name"),
    ({"circuit": {"dynamics": "vector_field", "initial_angle": 200}, "estimator": {"name": "cvf"}},
     "circuit.initial_angle"),
    ({"circuit": {"dynamics": "prototypical", "initial_angle": 30}}, "circuit.initial_angle"),
    ({"circuit": {"dynamics": "vector_field"}, "estimator": {"name": "cvf", "symmetric": True}},
     "estimator.symmetric"),
])
def test_vector_field_config_errors_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key):
        build_network(load_config(raw))


def test_cvf_training_learns_and_logs_the_angle(tmp_path):
    overrides = [*SAMPLE_OVERRIDES, "train.epochs=4", "circuit.initial_angle=45"]
    result = neurosim.train("mnist_fc1_cvf", out=tmp_path / "run", overrides=overrides, progress=False)
    # 1,000 digits x 4 epochs at the paper's eta: measured 80.8%, 73.6%, 65.2%, 57.0% (chance 90%)
    errors = [r["test_error"] for r in result.history]
    assert errors[-1] < 0.65 and errors == sorted(errors, reverse=True), errors
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(len(r["angle_deg"]) == 1 for r in rows)
    summary = json.loads((tmp_path / "run" / "result.json").read_text())
    assert abs(summary["initial"]["angle_deg"][0] - 45) < 1.0
    assert summary["final"]["angle_deg"] == rows[-1]["angle_deg"] != summary["initial"]["angle_deg"]
