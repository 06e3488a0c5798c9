"""The Brian2 backend (numpy target: no compiler) against the torch continuous-time model.

Tiny float64 networks (64-32-10 on 8x8 MNIST digits): the same states at every step, the same
EP and C-EP weight updates to 1e-12, fixed points of the discrete energy model, C-EP's summed
updates tending to EP's as eta -> 0, exact weight travel, and the errors a user can meet.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("brian2")

import neurosim
from neurosim.backends.brian2.rate import Brian2RateNetwork, Layout, Schedule
from neurosim.backends.brian2.train import load_params, torch_params
from neurosim.backends.brian2.weights import matrix_from_synapses, synapse_values
from neurosim.config import load_config
from neurosim.data import load_dataset, small_digits
from neurosim.errors import ConfigError, NeurosimError
from neurosim.core.models import EnergyModel
from neurosim.core.phases import relax
from neurosim.core.network import build_network

from mnist_data import SAMPLE
SIZES = (64, 32, 10)
T, K, EPS, BETA = 12, 4, 0.5, 0.5


@pytest.fixture(scope="module")
def digits():
    """Eight 8x8 MNIST digits (center 24x24 crop, 3x3 average pooling) and one-hot targets."""
    return small_digits(n=8, dataset=SAMPLE)


def _config(rule: str, lr=(0.2, 0.1)):
    return load_config({"circuit": "digits8_ct2",
                        "estimator": {"name": rule, "T": T, "K": K, "beta": BETA, "lr": list(lr)},
                        "train": {"batch_size": 1}, "compute": {"dtype": "float64"},
                        "backend": {"name": "brian2", "target": "numpy"}})


def _brian2(config, network, n, record_states=False, activation="hard_sigmoid", clamp=True):
    layout = Layout(SIZES, activation, EPS, 10.0, clamp, T, K, config.estimator.name, n, n, record_states)
    return Brian2RateNetwork(layout, torch_params(network), config.estimator.lr, "numpy")


def _schedule(x, y, betas):
    n = len(x)
    return Schedule(x.numpy(), y.numpy(), np.arange(n), np.asarray(betas, dtype=float), np.ones(n))


@torch.no_grad()
def _torch_example(model, x, y, beta, rule, lrs):
    """One training example written out with the formulas of SPEC §4 (independent of the
    estimators): the state after every step, and the parameters updated in place."""
    rho = model.activation
    params = list(zip(model.weights, model.biases))

    def rates(state):
        return [x[0]] + [rho(s[0]) for s in state]

    def drive():
        return model.prepare(x)

    state, out = model.init_state(1), []
    for t in range(T):
        state = model.step(state, drive())
        out.append([s[0].clone() for s in state])
    free = rates(state)
    for t in range(T, T + K):
        before = rates(state)
        state = model.step(state, drive(), (y - state[-1]) * (beta * model.nudge_scale))
        out.append([s[0].clone() for s in state])
        if rule == "cep":  # dW/dt = (eta/beta) d/dt[rho_i rho_j], one Euler step
            after = rates(state)
            for n, (w, b) in enumerate(params):
                w += lrs[n] / beta * (torch.outer(after[n + 1], after[n]) - torch.outer(before[n + 1], before[n]))
                b += lrs[n] / beta * (after[n + 1] - before[n + 1])
    if rule == "ep":
        nudged = rates(state)
        for n, (w, b) in enumerate(params):
            w += lrs[n] / beta * (torch.outer(nudged[n + 1], nudged[n]) - torch.outer(free[n + 1], free[n]))
            b += lrs[n] / beta * (nudged[n + 1] - free[n + 1])
    return out


@pytest.mark.parametrize("rule", ["ep", "cep"])
def test_states_and_updates_equal_torch(digits, rule):
    """Every state at every step, and the learnt weights, of Brian2 and of torch (the formulas
    above, and the EP / C-EP estimators on the ContinuousModel) agree to 1e-12."""
    x, y = digits
    n = 3
    betas = [BETA, -BETA, BETA]
    config = _config(rule, lr=(0.02, 0.01))
    network = build_network(config, "cpu", torch.float64)
    reference = build_network(config, "cpu", torch.float64)
    b2 = _brian2(config, network, n, record_states=True)
    result = b2.run(_schedule(x[:n], y[:n], betas))
    worst_state = 0.0
    for k in range(n):
        trajectory = _torch_example(reference.model, x[k:k + 1], y[k:k + 1], betas[k], rule, config.estimator.lr)
        for t, states in enumerate(trajectory):
            for layer, s in enumerate(states):
                diff = np.abs(result.states[layer][k * (T + K) + t] - s.numpy()).max()
                worst_state = max(worst_state, diff)
        np.testing.assert_allclose(result.free_outputs[k], trajectory[T - 1][-1].numpy(), rtol=0, atol=1e-12)
        network.estimator.config.beta = betas[k]  # the torch estimator learns from the same example
        network.estimator.train_step(x[k:k + 1], y[k:k + 1])
    assert worst_state < 1e-12
    before = torch_params(build_network(config, "cpu", torch.float64))
    for (wb, bb), (wt, bt), (wr, br), (w0, _) in zip(b2.params, torch_params(network), torch_params(reference),
                                                     before):
        assert np.abs(wb - w0).max() > 1e-4  # it learnt
        for w, b in ((wt, bt), (wr, br)):
            np.testing.assert_allclose(wb, w, rtol=0, atol=1e-12)
            np.testing.assert_allclose(bb, b, rtol=0, atol=1e-12)


def test_fixed_points_equal_the_discrete_energy_model(digits):
    """Brian2's free fixed point (gate 0: a pure free run) is EnergyModel's with eps = dt / tau."""
    x, y = digits
    config = _config("ep")
    network = build_network(config, "cpu", torch.float64)
    layout = Layout(SIZES, "hard_sigmoid", EPS, 10.0, True, 60, 1, "ep", 2, 2, record_states=True)
    b2 = Brian2RateNetwork(layout, torch_params(network), [0.0, 0.0], "numpy")
    out = b2.run(Schedule(x[:2].numpy(), y[:2].numpy(), np.arange(2), np.full(2, BETA), np.zeros(2)))
    energy = EnergyModel(list(SIZES), network.model.activation, torch.Generator(), eps=EPS, clamp=True,
                         dtype=torch.float64)
    energy.load_state_dict(network.model.state_dict())
    with torch.no_grad():
        fixed = relax(energy, energy.prepare(x[:2]), energy.init_state(2), 60)
    for k in range(2):
        for layer in range(2):
            brian2_state = out.states[layer][k * 61 + 59]
            np.testing.assert_allclose(brian2_state, fixed[layer][k].numpy(), rtol=0, atol=1e-12)
            # a fixed point: the last steps no longer move
            assert np.abs(brian2_state - out.states[layer][k * 61 + 58]).max() < 1e-6


def test_continual_updates_approach_ep_as_eta_goes_to_zero(digits):
    """dW/dt = (eta/beta) d/dt[rho_i rho_j] summed over the nudged phase, divided by eta, tends to
    EP's update per unit learning rate, linearly in eta."""
    x, y = digits
    config = _config("ep")
    network = build_network(config, "cpu", torch.float64)
    start = torch_params(network)

    def change(rule, rate):
        layout = Layout(SIZES, "hard_sigmoid", EPS, 10.0, True, T, K, rule, 1, 1)
        b2 = Brian2RateNetwork(layout, start, [rate, rate], "numpy")
        b2.run(_schedule(x[:1], y[:1], [BETA]))
        return [np.concatenate([(w - w0).ravel(), b - b0]) / rate for (w, b), (w0, b0) in zip(b2.params, start)]

    ep = change("ep", 1e-6)
    errors = []
    for eta in (1e-2, 1e-3):
        cep = change("cep", eta)
        errors.append(max(np.linalg.norm(c - e) / np.linalg.norm(e) for c, e in zip(cep, ep)))
    print("relative distance C-EP/eta to EP/lr at eta = 1e-2, 1e-3:", errors)
    assert errors[1] < 1e-2
    assert errors[0] / errors[1] > 5  # first order in eta


def test_weights_round_trip_exactly(digits):
    """torch -> Brian2 (by synapse indices) -> torch gives back the same bits."""
    x, y = digits
    config = _config("ep")
    network = build_network(config, "cpu", torch.float64)
    start = [tuple(a.copy() for a in pair) for pair in torch_params(network)]
    b2 = _brian2(config, network, 1)
    b2.lrs = [0.0, 0.0]
    b2.run(_schedule(x[:1], y[:1], [BETA]))
    fresh = build_network(_config("ep"), "cpu", torch.float64)
    with torch.no_grad():
        for p in fresh.model.parameters():
            p.zero_()
    load_params(fresh, b2.params)
    for (w, b), (w0, b0) in zip(torch_params(fresh), start):
        assert np.array_equal(w, w0) and np.array_equal(b, b0)


def test_weight_transfer_uses_indices_not_order():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(4, 6))
    i_pre, j_post = np.meshgrid(np.arange(6), np.arange(4))
    perm = rng.permutation(24)
    i_pre, j_post = i_pre.ravel()[perm], j_post.ravel()[perm]
    w = synapse_values(matrix, i_pre, j_post)
    assert np.array_equal(w, matrix[j_post, i_pre])
    assert np.array_equal(matrix_from_synapses(w, i_pre, j_post, (4, 6)), matrix)
    with pytest.raises(NeurosimError, match="24 pairs"):
        matrix_from_synapses(w[:-1], i_pre[:-1], j_post[:-1], (4, 6))
    i_dup = i_pre.copy()
    i_dup[0] = i_pre[1] if j_post[0] == j_post[1] else i_dup[0]
    j_dup = j_post.copy()
    j_dup[0], i_dup[0] = j_post[1], i_pre[1]
    with pytest.raises(NeurosimError, match="more than one synapse"):
        matrix_from_synapses(w, i_dup, j_dup, (4, 6))


BASE = {"circuit": {"dynamics": "continuous", "layers": [784, 12, 10], "activation": "hard_sigmoid", "eps": 0.5,
                    "clamp": True},
        "estimator": {"name": "ep", "T": 8, "K": 3, "beta": 0.5, "lr": [0.02, 0.01], "random_sign": True},
        "data": {"name": SAMPLE, "train_subset": 24, "test_subset": 12, "download": False},
        "train": {"batch_size": 1, "epochs": 2}, "compute": {"dtype": "float64"},
        "backend": {"name": "brian2", "target": "numpy"}}


def test_train_with_brian2_equals_torch_training(tmp_path):
    """neurosim.train through Brian2: the torch trainer's files, metrics and (to 1e-12) weights."""
    b2 = neurosim.train(BASE, out=tmp_path / "b2", progress=False)
    th = neurosim.train({**BASE, "backend": {"name": "torch"}}, out=tmp_path / "torch", progress=False)
    for name in ("config.yaml", "metrics.jsonl", "result.json", "curves.png", "checkpoint.pt"):
        assert (tmp_path / "b2" / name).exists()
    for rb, rt in zip(b2.history, th.history):
        assert rb["train_error"] == rt["train_error"] and rb["test_error"] == rt["test_error"]
        assert abs(rb["train_loss"] - rt["train_loss"]) < 1e-12 and abs(rb["test_loss"] - rt["test_loss"]) < 1e-12
        assert set(rt) <= set(rb)
    for pb, pt in zip(b2.network.model.parameters(), th.network.model.parameters()):
        assert (pb - pt).abs().max().item() < 1e-12
    # Resume: one epoch, then the second from the checkpoint, ends with the same weights.
    neurosim.train({**BASE, "train": {"batch_size": 1, "epochs": 1}}, out=tmp_path / "r", progress=False)
    resumed = neurosim.train(BASE, out=tmp_path / "r", resume=True, progress=False)
    for pr, pb in zip(resumed.network.model.parameters(), b2.network.model.parameters()):
        assert torch.equal(pr, pb)


@pytest.mark.parametrize("key,value,match", [
    ("circuit.dynamics", "energy", "continuous"),
    ("estimator.name", "bptt", "ep or cep"),
    ("estimator.symmetric", True, "one nudged phase"),
    ("train.batch_size", 20, "online"),
    ("compute.dtype", "float32", "float64"),
    ("synapses.device", "levels_64", "ideal"),
    ("backend.spikes", "bursting", "regular"),
    ("backend.target", "gpu", "cpp_standalone"),
    ("backend.tau_ms", -1.0, "positive"),
])
def test_unsupported_configs_name_the_key(key, value, match):
    overrides = [f"{key}={value}"]
    if key == "estimator.symmetric":
        overrides.append("estimator.random_sign=false")
    with pytest.raises(ConfigError, match=match) as info:
        load_config(BASE, overrides)
    assert info.value.key == key


def test_schedule_of_the_wrong_shape_is_refused(digits):
    x, y = digits
    config = _config("ep")
    b2 = _brian2(config, build_network(config, "cpu", torch.float64), 2)
    with pytest.raises(NeurosimError, match="images has shape"):
        b2.run(_schedule(x[:3], y[:3], [BETA] * 3))
    with pytest.raises(NeurosimError, match="non-zero"):
        b2.run(_schedule(x[:2], y[:2], [BETA, 0.0]))


@pytest.mark.skipif(os.environ.get("NEUROSIM_TEST_STANDALONE") != "1" or shutil.which("g++") is None,
                    reason="compiles a C++ project (about 30 s); set NEUROSIM_TEST_STANDALONE=1 to run")
@pytest.mark.parametrize("rule", ["ep", "cep"])
def test_standalone_equals_numpy(digits, rule, tmp_path):
    """cpp_standalone: built once, re-run with run_args, the numpy target's results."""
    x, y = digits
    config = _config(rule)
    network = build_network(config, "cpu", torch.float64)
    layout = Layout(SIZES, "hard_sigmoid", EPS, 10.0, True, T, K, rule, 4, 8)
    sched = Schedule(x.numpy(), y.numpy(), np.array([3, 1, 4, 1]), np.array([BETA, -BETA, BETA, BETA]), np.ones(4))
    numpy_net = Brian2RateNetwork(layout, torch_params(network), config.estimator.lr, "numpy")
    standalone = Brian2RateNetwork(layout, torch_params(network), config.estimator.lr, "cpp_standalone", tmp_path)
    other = Schedule(x.numpy()[::-1].copy(), y.numpy()[::-1].copy(), sched.rows, sched.betas, sched.gates)
    for schedule in (sched, other):  # the second run re-uses the binary: learnt weights, another data table
        a, b = numpy_net.run(schedule), standalone.run(schedule)
        np.testing.assert_allclose(a.free_outputs, b.free_outputs, rtol=0, atol=1e-12)
    for (wa, ba), (wb, bb) in zip(numpy_net.params, standalone.params):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ba, bb, rtol=0, atol=1e-12)


def test_a_torch_trained_network_runs_in_brian2(tmp_path):
    """A checkpoint trained in torch (batch 4, float32) loads into Brian2 and gives the torch
    evaluation's free-phase outputs and test error."""
    from neurosim.backends.brian2.train import evaluate_brian2
    from neurosim.run.trainer import evaluate

    config = {**BASE, "backend": {"name": "torch"}, "train": {"batch_size": 4, "epochs": 1},
              "compute": {"dtype": "float32"}}
    run = neurosim.train(config, out=tmp_path / "torch", progress=False)
    result = evaluate_brian2(tmp_path / "torch", target="numpy")
    test = load_dataset(SAMPLE, "test", dtype=torch.float64, subset=12)
    model = run.network.model.double()
    with torch.no_grad():
        outputs = relax(model, model.prepare(test.images), model.init_state(12), 8)[-1]
    np.testing.assert_allclose(result["free_outputs"], outputs.numpy(), rtol=0, atol=1e-12)
    assert result["test_error"] == evaluate(model, run.network.cost, test, 8)[0]
    neurosim.train({**config, "circuit": {**BASE["circuit"], "dynamics": "energy"}}, out=tmp_path / "e",
                   progress=False)
    with pytest.raises(ConfigError, match="continuous"):
        evaluate_brian2(tmp_path / "e")


def test_standalone_progress_lines_reach_the_callback(tmp_path):
    """The compiled binary prints 'neurosim-progress <fraction> <seconds>' lines; the watcher
    thread passes the latest one on while it runs and once more at the end."""
    import time

    from neurosim.backends.brian2.rate import PROGRESS_TAG, ProgressWatcher as _ProgressWatcher

    stdout = tmp_path / "stdout.txt"
    seen = []
    with _ProgressWatcher(stdout, lambda fraction, seconds: seen.append((fraction, seconds)), every=0.05):
        time.sleep(0.1)  # no file yet: nothing reported, no error
        stdout.write_text(f"Brian2 says hello\n{PROGRESS_TAG} 0.25 2.0\n")
        time.sleep(0.3)
        stdout.write_text(f"{PROGRESS_TAG} 0.25 2.0\n{PROGRESS_TAG} 1 8.5\n")
    assert seen[0] == (0.25, 2.0) and seen[-1] == (1.0, 8.5)
    with _ProgressWatcher(stdout, None):  # no callback: no thread
        pass


def test_bench_times_a_brian2_config_one_example_at_a_time():
    rows = neurosim.bench(BASE, samples=6)
    assert len(rows) == 1 and rows[0]["batch_size"] == 1 and rows[0]["samples"] == 6
    assert rows[0]["estimator"] == BASE["estimator"]["name"] and rows[0]["samples_per_second"] > 0
    assert rows[0]["samples_per_cpu_second"] > 0 and rows[0]["device"].startswith("brian2")
