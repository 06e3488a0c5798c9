"""The compiled device writes (``neurosim.hardware.pulse_kernels``, numba) against the torch path.

``DeviceArray.program`` compiled (the reads around the law, the law's own compiled ``change``,
the writes after it) draws its noise from the same torch generator in the same order as the
torch path, so the two must give the same devices, counters and weights up to rounding. The
pulse counts' distributions are held in test_pulse_counts.py (on each path).
"""

from __future__ import annotations

import pytest
import torch

from neurosim.hardware import arrays, pulse_kernels
from neurosim.hardware.arrays import OuterProduct
from neurosim.hardware.devices import DeviceArray, DeviceConfig

pytestmark = pytest.mark.skipif(not pulse_kernels.available(),
                                reason="numba is not installed (or NEUROSIM_KERNELS=torch): the compiled path is off")

LAWS = {
    "constant": {},
    "soft_bounds": {"response": "soft_bounds"},
    "linear_step": {"response": "linear_step", "gamma_up": 0.4, "gamma_down": 0.0},
    "nonlinear": {"response": "nonlinear", "states": 64, "a_up": 0.3, "a_down": 0.6},
    "exp_step": {"response": "exp_step", "exp_A_up": 0.2, "exp_A_down": 0.2, "exp_gamma_up": 1.0,
                 "exp_gamma_down": 1.0, "exp_a": 0.5, "exp_b": 0.0},  # pulse by pulse, compiled whole
    # a torch law between the compiled read and write (gather, commit)
    "measured": {"response": "measured", "measured_up": [1.5, 1.0, 0.4], "measured_down": [0.3, 1.0, 1.6]},
}
SPREADS = {"dw_min_dtod": 0.3, "up_down": 0.1, "up_down_dtod": 0.05, "w_bounds_dtod": 0.1}


def _twins(dtype, **params):
    config = DeviceConfig(**{"w_min": -1.0, "w_max": 1.0, "dw_min": 0.02, **params})
    config.validate()
    start = torch.randn(64, 300, generator=torch.Generator().manual_seed(1), dtype=dtype) * 0.3
    out = []
    for _ in range(2):
        w = start.clone()
        out.append((DeviceArray.create(config, w, 0), w))
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("noise", ["none", "c2c", "c2c+write+stuck"])
@pytest.mark.parametrize("law", list(LAWS))
def test_compiled_program_equals_the_torch_path(monkeypatch, law, noise, dtype):
    params = {**LAWS[law], **SPREADS}
    if "c2c" in noise and law != "exp_step":  # exp_step's compiled c2c noise is numba's: held by
        params["dw_min_std"] = 0.3              # distribution below; its write noise is torch's
    if "write" in noise:
        params |= {"write_noise_std": 0.5, "stuck_fraction": 0.05}
    (a, wa), (b, wb) = _twins(dtype, **params)
    g = torch.Generator().manual_seed(7)
    deltas = [torch.randn(64, 300, generator=g, dtype=dtype) * s for s in (0.01, 0.1, 0.002)]
    for step, delta in enumerate(deltas):
        index, n, up = arrays.pulse_counts(delta / a.config.step, "stochastic", torch.Generator().manual_seed(step))
        results = []
        for array, w, compiled in ((a, wa, True), (b, wb, False)):
            monkeypatch.setattr(arrays, "KERNELS", compiled)
            results.append(array.program(w, index, n, up, torch.Generator().manual_seed(100 + step)))
        (ca, cb) = results
        assert torch.equal(ca.index, cb.index), step
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ca.delta, cb.delta, **tol)
        torch.testing.assert_close(wa, wb, **tol)
        assert torch.equal(a.pulses_up, b.pulses_up) and torch.equal(a.pulses_down, b.pulses_down)
        if a.hidden is not None:
            torch.testing.assert_close(a.hidden, b.hidden, **tol)


def test_compiled_program_refuses_a_diverging_count():
    (a, w), _ = _twins(torch.float32)
    index = torch.tensor([0, 5], dtype=torch.int64)
    before = w.clone()
    for bad in (float("nan"), 1e12):
        with pytest.raises(Exception, match="pulses"):
            a.program(w, index, torch.tensor([1.0, bad]), torch.tensor([True, False]), None)
        # refused before anything is written: the weights and the counters are as they were
        assert torch.equal(w, before) and int(a.pulses_up.sum()) == 0 and int(a.pulses_down.sum()) == 0


@pytest.mark.parametrize("noise", ["c2c", "c2c+write+stuck"])
@pytest.mark.parametrize("law", ["constant", "exp_step"])  # a closed form (one pass) and a pulse-by-pulse law
def test_differential_pairs_compiled_equal_the_torch_path(monkeypatch, law, noise):
    """Split, both halves, refresh and weight update compiled against the torch path: the same
    weights, device states, counters, refreshes and leftover pairs above the threshold, write
    after write (many pairs refresh: the threshold is low and the updates large)."""
    params = {**LAWS[law], "dw_min_dtod": 0.2}
    if law == "constant":
        params["dw_min_std"] = 0.2  # exp_step's compiled noise is numba's: noise-free here
    if "write" in noise:
        params |= {"write_noise_std": 0.5, "stuck_fraction": 0.05}
    config = DeviceConfig(w_min=-1.0, w_max=1.0, dw_min=0.02, mapping="differential", refresh_threshold=0.5,
                          **params)
    config.validate()
    start = torch.randn(64, 300, generator=torch.Generator().manual_seed(2)) * 0.3
    weights, pairs = [start.clone(), start.clone()], []
    for w in weights:
        pairs.append(arrays.create_array(config, w, 0))
    g = torch.Generator().manual_seed(3)
    left, right = torch.randn(20, 64, generator=g) * 0.05, torch.rand(20, 300, generator=g)
    refreshed = 0
    for step in range(6):
        # the same counts on both (the paths' counts draw different streams), programmed each way
        monkeypatch.setattr(arrays, "KERNELS", False)
        counts = arrays.pulse_counts(OuterProduct(left, right, 0.05 * (step + 1)).materialize() / config.step,
                                     "stochastic", torch.Generator().manual_seed(step))
        changes = []
        for pair, w, compiled in ((pairs[0], weights[0], True), (pairs[1], weights[1], False)):
            monkeypatch.setattr(arrays, "KERNELS", compiled)
            monkeypatch.setattr(arrays, "factored_pulse_counts", lambda *a: counts)
            changes.append(pair.apply(w, left, torch.Generator().manual_seed(10 + step)))
        a, b = pairs
        tol = dict(rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(weights[0], weights[1], **tol)
        assert torch.equal(changes[0].index, changes[1].index)
        torch.testing.assert_close(changes[0].delta, changes[1].delta, **tol)
        for half in ("plus", "minus"):
            x, y = getattr(a, half), getattr(b, half)
            assert torch.equal(x.pulses_up, y.pulses_up) and torch.equal(x.pulses_down, y.pulses_down), (step, half)
            if x.hidden is not None:
                torch.testing.assert_close(x.hidden, y.hidden, **tol)
        torch.testing.assert_close(a.g_plus, b.g_plus, **tol)
        assert int(a.refreshes) == int(b.refreshes) and int(a.refresh_pulses) == int(b.refresh_pulses), step
        assert (a._above is None) == (b._above is None)
        if a._above is not None:
            assert torch.equal(a._above, b._above)
        refreshed = int(a.refreshes)
    assert refreshed > 0  # the refresh ran, compiled


def test_factored_count_before_and_after_its_alias_tables(monkeypatch):
    """The first write with an input searches its rows' cumulative sums; later ones use alias
    tables built from the same input: both place the points by |R_bj| (per-class pulse means)."""
    monkeypatch.setattr(arrays, "KERNELS", True)
    monkeypatch.setattr(arrays, "KERNEL_DENSE_DENSITY", float("inf"))
    monkeypatch.setattr(arrays, "KERNEL_FIRST_DENSITY", float("inf"))
    g = torch.Generator().manual_seed(0)
    left = torch.randn(20, 64, generator=g) * 0.02
    left[:, :3] *= 60  # a few rows with whole pulses (formed), the rest far below one
    right = torch.rand(20, 784, generator=g) * (torch.rand(20, 784, generator=g) < 0.3)
    update = OuterProduct(left, right, 0.05)
    p = (update.materialize().double() * 3.0).abs().view(-1)
    for fresh in (True, False):  # fresh: a new input tensor at every draw (search); else the same one (alias)
        total = torch.zeros_like(p)
        draws = 300
        for _ in range(draws):
            u = OuterProduct(left, right.clone(), 0.05) if fresh else update
            index, n, _ = arrays.factored_pulse_counts(u, 3.0, "stochastic", g)
            # one sorted run of distinct devices (formed rows and points merged), as programming needs
            assert bool((index[1:] > index[:-1]).all())
            total[index] += n.double()
        r = p - p.floor()
        for lo, hi in ((0, 0.01), (0.01, 0.1), (0.1, 0.5), (0.5, 100)):
            cls = (p >= lo) & (p < hi)
            assert cls.any()
            z = (total[cls] - draws * p[cls]).sum() / (draws * (r * (1 - r))[cls].sum()).sqrt()
            assert abs(float(z)) < 4, (fresh, lo, hi, float(z))


def test_compiled_exp_step_noise_has_the_torch_distribution(monkeypatch):
    """exp_step's per-pulse multiplicative noise, compiled (numba's generator) and in torch: the
    states after 1 and 6 pulses up and down from the same start agree in mean and spread."""
    params = {**LAWS["exp_step"], "dw_min_std": 0.5, "dw_min": 0.05}
    stats = {}
    for compiled in (True, False):
        monkeypatch.setattr(arrays, "KERNELS", compiled)
        (a, w), _ = _twins(torch.float64, **params)
        w.fill_(0.1)
        size = w.numel()
        index = torch.arange(size)
        up = torch.arange(size) % 2 == 0
        n = torch.where(torch.arange(size) % 4 < 2, 1.0, 6.0).double()
        a.program(w, index, n, up, torch.Generator().manual_seed(0))
        flat = w.view(-1)
        stats[compiled] = [(float(flat[m].mean()), float(flat[m].std()))
                           for m in (up & (n == 1), up & (n == 6), ~up & (n == 1), ~up & (n == 6))]
    for (m1, s1), (m2, s2) in zip(stats[True], stats[False]):
        assert abs(m1 - m2) < 4 * (s1 + s2) / 2 / (19200 / 4) ** 0.5 + 1e-12
        assert abs(s1 / s2 - 1) < 0.06


def test_factored_count_weighs_the_rows_it_forms(monkeypatch):
    """The compiled factored count declines (the caller forms the update) where its work would
    cost more than forming: the points, and the rows that can reach half a pulse, which it forms
    itself (a few rows with whole pulses and almost no points: declined only once those rows
    are priced above the dense budget)."""
    monkeypatch.setattr(arrays, "KERNELS", True)
    g = torch.Generator().manual_seed(0)
    left = torch.randn(20, 128, generator=g) * 1e-5
    left[:, :4] = 5.0  # 4 of 128 rows formed (under the one-in-eight cap), next to no points elsewhere
    right = torch.rand(20, 784, generator=g)
    update = OuterProduct(left, right, 1.0)
    # a first write with this input reads it whole (C-EP's later steps reuse what it read, and the
    # density check before the first one prices the formed rows' points, which the kernel skips)
    monkeypatch.setattr(arrays, "KERNEL_DENSE_DENSITY", float("inf"))
    monkeypatch.setattr(arrays, "KERNEL_FIRST_DENSITY", float("inf"))
    arrays.factored_pulse_counts(update, 1.0, "stochastic", g)
    monkeypatch.setattr(arrays, "KERNEL_DENSE_DENSITY", 1 / 64)
    monkeypatch.setattr(arrays, "KERNEL_ROW_COST", 0.0)
    counted = arrays.factored_pulse_counts(update, 1.0, "stochastic", g)
    assert counted is not None and counted[0].numel() >= 4 * 784 * 0.9  # the formed rows' whole pulses
    # 4 rows of 784 devices at row_cost 1 are 4/128 of the devices' worth of candidates: above 1/64
    monkeypatch.setattr(arrays, "KERNEL_ROW_COST", 1.0)
    assert arrays.factored_pulse_counts(update, 1.0, "stochastic", g) is None
    monkeypatch.setattr(arrays, "KERNEL_DENSE_DENSITY", 1 / 16)  # a budget that covers them
    assert arrays.factored_pulse_counts(update, 1.0, "stochastic", g) is not None
