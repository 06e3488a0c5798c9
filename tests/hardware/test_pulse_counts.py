"""The sparse pulse count (``arrays.pulse_counts``) against the dense floor(p + U) it replaced.

The random stream changed (device runs' fixed-seed fingerprints with it), so these tests hold
the distribution: per-device means and variances over many draws, and a chi-square of the
pulse counts of a class of devices against the old implementation's, with fixed seeds.
"""

from __future__ import annotations

import pytest
import torch

from neurosim.hardware import arrays
from neurosim.hardware.arrays import DENSE_BELOW, OuterProduct, pulse_counts, pulse_units


def _old(p: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return (p + torch.rand(p.shape, generator=g, dtype=p.dtype)).floor()


def _dense(p: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    index, n, _ = pulse_counts(p, "stochastic", g)
    out = torch.zeros_like(p)
    out[index] = n
    return out


def _field(size: int = 3 * DENSE_BELOW + 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    p = torch.cat([torch.rand(size - size // 5, generator=g, dtype=torch.float64) * 0.02,  # C-EP's many tiny updates
                   torch.rand(size // 5, generator=g, dtype=torch.float64) * 2.5])         # and a few whole pulses
    return p[torch.randperm(size, generator=g)]


@pytest.fixture(params=["sparse", "dense"], autouse=True)
def path(request, monkeypatch):
    """Every test on both paths of a large array: the sparse count (forced by an infinite density
    threshold) and the dense uniform per device it switches to when candidates would be many."""
    monkeypatch.setattr(arrays, "DENSE_DENSITY", float("inf") if request.param == "sparse" else 0.0)
    return request.param


def test_the_density_switch_picks_the_path_by_expected_pulses(monkeypatch):
    """Few expected pulses: the sparse count (it draws far fewer numbers than devices); many: dense."""
    monkeypatch.setattr(arrays, "DENSE_DENSITY", 1 / 64)
    calls = []
    real = arrays._bernoulli_points
    monkeypatch.setattr(arrays, "_bernoulli_points", lambda *a: calls.append(1) or real(*a))
    g = torch.Generator().manual_seed(0)
    pulse_counts(torch.full((4 * DENSE_BELOW,), 1e-4, dtype=torch.float64), "stochastic", g)
    assert calls == [1]
    pulse_counts(torch.full((4 * DENSE_BELOW,), 0.1, dtype=torch.float64), "stochastic", g)
    assert calls == [1]


def test_each_device_gets_floor_p_plus_u_pulses_in_mean_and_variance():
    p, g, draws = _field(), torch.Generator().manual_seed(0), 400
    total, square = torch.zeros_like(p), torch.zeros_like(p)
    for _ in range(draws):
        n = _dense(p, g)
        total += n
        square += n * n
    r = p - p.floor()
    mean, var = total / draws, square / draws - (total / draws) ** 2
    assert bool(((n == p.floor()) | (n == p.floor() + 1)).all())  # never more than one pulse off
    z = (total - draws * p).sum() / (draws * (r * (1 - r)).sum()).sqrt()
    assert abs(float(z)) < 4
    assert abs(float(var.sum() / (r * (1 - r)).sum()) - 1) < 0.03
    # the tiny updates alone (floor 0): the sparse path's Bernoulli(p)
    small = p < 0.02
    z_small = (total[small] - draws * p[small]).sum() / (draws * (r * (1 - r))[small].sum()).sqrt()
    assert abs(float(z_small)) < 4
    assert abs(float(mean[small].mean() / p[small].mean()) - 1) < 0.02


def test_counts_match_the_old_implementation_by_chi_square():
    """Pulses received by the devices of one class (p in [0.3, 0.4)) per draw: old vs new."""
    p = _field()
    cls = (p >= 0.3) & (p < 0.4)
    g_old, g_new = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    old = torch.stack([_old(p, g_old)[cls].sum() for _ in range(300)])
    new = torch.stack([_dense(p, g_new)[cls].sum() for _ in range(300)])
    edges = torch.quantile(torch.cat([old, new]), torch.linspace(0, 1, 7, dtype=torch.float64)[1:-1])
    a = torch.bincount(torch.bucketize(old, edges), minlength=6).double()
    b = torch.bincount(torch.bucketize(new, edges), minlength=6).double()
    chi2 = float((((a - b) ** 2) / (a + b).clamp_min(1)).sum())
    assert chi2 < 20.5  # 5 degrees of freedom, p = 0.001


def test_deterministic_rounding_and_signs():
    p = _field() * torch.where(torch.arange(_field().numel()) % 2 == 0, 1.0, -1.0).double()
    index, n, up = pulse_counts(p, "deterministic", None)
    expected = p.abs().floor()
    assert torch.equal(index, expected.nonzero().squeeze(1))
    assert torch.equal(n, expected[index]) and torch.equal(up, p[index] > 0)


def test_outer_product_counts_as_its_formed_update():
    g = torch.Generator().manual_seed(0)
    left, right = torch.randn(20, 50, generator=g), torch.rand(20, 300, generator=g)
    update = OuterProduct(left, right, 0.05)
    assert torch.allclose(pulse_units(update, 3.0), update.materialize() * 3.0, rtol=1e-6, atol=1e-7)


def _factors(seed: int = 0, big_rows: int = 3):
    """C-EP-like factors: du of mixed signs, x >= 0, most updates far below one pulse, a few rows
    (big du) with whole pulses."""
    g = torch.Generator().manual_seed(seed)
    left = torch.randn(20, 64, generator=g) * 0.02
    left[:, :big_rows] *= 60
    right = torch.rand(20, 784, generator=g) * (torch.rand(20, 784, generator=g) < 0.3)
    return OuterProduct(left, right, 0.05)


def _factored(update, factor, g, rounding="stochastic"):
    counts = arrays.factored_pulse_counts(update, factor, rounding, g)
    assert counts is not None
    index, n, up = counts
    out = torch.zeros(update.left.shape[1] * update.right.shape[1], dtype=torch.float64)
    out[index] = n.double()
    return out, index, up


def test_factored_counts_have_floor_p_plus_u_distribution(path):
    """Counted from the factors (no formed update): per-device mean, variance and signs as floor(p + U)."""
    if path == "dense":
        pytest.skip("the factored count falls back to the formed update when candidates are many")
    update, factor, draws = _factors(), 3.0, 300
    signed = update.materialize().double().view(-1) * factor
    p = signed.abs()
    g = torch.Generator().manual_seed(0)
    total, square = torch.zeros_like(p), torch.zeros_like(p)
    for _ in range(draws):
        n, index, up = _factored(update, factor, g)
        assert torch.equal(up, signed[index] > 0)
        total += n
        square += n * n
    assert bool(((n == p.floor()) | (n == p.floor() + 1)).all())
    r = p - p.floor()
    z = (total - draws * p).sum() / (draws * (r * (1 - r)).sum()).sqrt()
    assert abs(float(z)) < 4
    var = square / draws - (total / draws) ** 2
    assert abs(float(var.sum() / (r * (1 - r)).sum()) - 1) < 0.05
    for lo, hi in ((0, 0.01), (0.01, 0.1), (0.1, 0.5), (0.5, 100)):  # every class of update sizes
        cls = (p >= lo) & (p < hi)
        assert cls.any()
        zc = (total[cls] - draws * p[cls]).sum() / (draws * (r * (1 - r))[cls].sum()).sqrt()
        assert abs(float(zc)) < 4, (lo, hi, float(zc))


def test_factored_counts_deterministic_and_fallbacks(path):
    update = _factors()
    signed = update.materialize().view(-1) * 3.0
    n, index, up = _factored(update, 3.0, None, "deterministic")
    assert torch.equal(index, signed.abs().floor().nonzero().squeeze(1))
    assert torch.equal(n[index].float(), signed.abs().floor()[index]) and torch.equal(up, signed[index] > 0)
    assert arrays.factored_pulse_counts(update.materialize(), 3.0, "stochastic", None) is None  # formed: not factored
    assert arrays.factored_pulse_counts(_factors(big_rows=64), 3.0, "stochastic", None) is None  # many big rows


def test_factored_counts_follow_an_input_changed_in_place():
    """What is read of the input (x, the same tensor at every C-EP step of a batch) is reused
    across calls; an in-place change of it must not leave the counts on the old input."""
    update = _factors()
    update.left[:, 3:6] *= 16  # rows whose bound stays below one pulse until the input grows 8x
    _factored(update, 3.0, None, "deterministic")
    update.right.mul_(8.0)
    signed = update.materialize().view(-1) * 3.0
    n, index, up = _factored(update, 3.0, None, "deterministic")
    assert torch.equal(index, signed.abs().floor().nonzero().squeeze(1)) and torch.equal(up, signed[index] > 0)
    fresh = OuterProduct(update.left, update.right.clone(), update.scale)  # a new tensor, same values
    assert torch.equal(_factored(fresh, 3.0, None, "deterministic")[0], n)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_many_uniforms_follow_the_torch_generator(dtype):
    """The dense rounding's uniforms come from numpy seeded by the run's torch generator: the same
    generator state gives the same numbers (runs repeat and resume), and they are uniform."""
    like = torch.empty(200_000, dtype=dtype)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    first, again = arrays.many_uniforms(like, a), arrays.many_uniforms(like, b)
    assert first.dtype == dtype and torch.equal(first, again)
    assert not torch.equal(arrays.many_uniforms(like, a), first)  # the generator moved on
    assert float(first.min()) >= 0 and float(first.max()) < 1
    counts = torch.histc(first.double(), bins=10, min=0, max=1)
    chi2 = float(((counts - 20_000) ** 2 / 20_000).sum())
    assert chi2 < 35, chi2  # 9 degrees of freedom: p ~ 1e-4
