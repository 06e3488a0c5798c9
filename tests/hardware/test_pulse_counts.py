"""The sparse pulse count (``arrays.pulse_counts``) against the dense floor(p + U) it replaced.

The random stream changed (device runs' fixed-seed fingerprints with it), so these tests hold
the distribution: per-device means and variances over many draws, and a chi-square of the
pulse counts of a class of devices against the old implementation's, with fixed seeds.
"""

from __future__ import annotations

import pytest
import torch

from neurosim.hardware import arrays, pulse_kernels
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


@pytest.fixture(params=["sparse", "dense", "kernel"], autouse=True)
def path(request, monkeypatch):
    """Every test on each path of a large array: the torch sparse count (forced by an infinite
    density threshold), the dense uniform per device it switches to when candidates would be
    many, and the compiled count (``pulse_kernels``, numba) that CPU runs take where numba imports."""
    if request.param == "kernel" and not pulse_kernels.available():
        pytest.skip("numba is not installed (or NEUROSIM_KERNELS=torch): the compiled count is off")
    monkeypatch.setattr(arrays, "KERNELS", request.param == "kernel")
    for name in ("DENSE_DENSITY", "KERNEL_DENSE_DENSITY", "KERNEL_FIRST_DENSITY", "FORMED_DENSE_DENSITY"):
        monkeypatch.setattr(arrays, name, 0.0 if request.param == "dense" else float("inf"))
    return request.param


def test_the_density_switch_picks_the_path_by_expected_pulses(monkeypatch):
    """Few expected pulses: the sparse count (it draws far fewer numbers than devices); many: dense."""
    monkeypatch.setattr(arrays, "FORMED_DENSE_DENSITY", 1 / 192)
    monkeypatch.setattr(arrays, "KERNELS", False)
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
def test_dense_counts_follow_the_torch_generator(dtype):
    """The dense rounding's random bits come from numpy seeded by the run's torch generator: the
    same generator state gives the same counts (runs repeat and resume), and it moves on."""
    p = _field().to(dtype)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    (i1, n1), (i2, n2) = arrays.dense_counts(p, a), arrays.dense_counts(p, b)
    assert n1.dtype == dtype and torch.equal(i1, i2) and torch.equal(n1, n2)
    assert bool((i1[1:] > i1[:-1]).all())  # sorted, unique
    assert not torch.equal(arrays.dense_counts(p, a)[0], i1)  # the generator moved on


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_counts_are_exact_at_the_16_bit_grid(dtype):
    """U = (K + V) / 2^16 decides most devices from K alone: p on and just off the grid of K
    (where a wrong bound would drop or add pulses) still gets a pulse with probability p."""
    g = torch.Generator().manual_seed(11)
    grid = torch.tensor([1, 3, 7.5, 40, 65535], dtype=torch.float64) / 65536
    values = torch.cat([grid, grid + 1e-7, grid - 1e-7, grid + 2.0 ** -17, 1 + grid])
    p = values.repeat_interleave(4096).to(dtype)
    p64 = p.double()
    total = torch.zeros_like(p64)
    draws = 60
    for _ in range(draws):
        index, n = arrays.dense_counts(p, g)
        assert bool(((n == p[index].floor()) | (n == p[index].floor() + 1)).all())
        total[index] += n.double()
    r = p64 - p64.floor()
    for v in values:
        sel = p == v.to(dtype)
        want = draws * p64[sel].sum()
        sd = (draws * (r[sel] * (1 - r[sel])).sum()).sqrt().clamp_min(1.0)
        assert abs(float(total[sel].sum() - want)) < 5 * float(sd), (float(v), float(total[sel].sum()), float(want))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_counts_decide_by_the_16_bit_draw_where_it_suffices(dtype):
    """With K the 16-bit draw of a device (the same stream, regenerated here): p + K / 2^16 >= 1
    must give a pulse whatever V is, and p + (K + 1) / 2^16 <= 1 none. p on the grid of K makes
    both bounds land exactly on 1 for some devices."""
    import numpy as np

    size = 4 * DENSE_BELOW
    g = torch.Generator().manual_seed(21)
    p = (torch.randint(0, 65536, (size,), generator=g).double() / 65536
         + torch.where(torch.rand(size, generator=g) < 0.5, 0.0, 1e-7))
    twin = torch.Generator()
    twin.set_state(g.get_state())
    seed = int(torch.randint(0, 2**62, (1,), generator=twin))  # the seed dense_counts will draw
    k = torch.from_numpy(np.random.SFC64(seed).random_raw(size // 4).view(np.uint16).astype(np.float64))
    p[:1000] = 1 - k[:1000] / 65536              # p + K / 2^16 = 1: a pulse for any V
    p[1000:2000] = 1 - (k[1000:2000] + 1) / 65536  # p + (K + 1) / 2^16 = 1: none for any V
    p[2000:3000] = 1 - (k[2000:3000] + 0.5) / 65536  # half way: a pulse when V >= 1/2
    p = p.clamp_min(0).to(dtype)
    index, n = arrays.dense_counts(p, g)
    got = torch.zeros(size, dtype=torch.float64)
    got[index] = n.double()
    exact = p.double() + k / 65536
    certain, impossible = exact >= 1, exact + 1 / 65536 <= 1
    assert int(certain.sum()) > 1000 and int(impossible.sum()) > 1000
    assert bool((got[certain] >= 1).all()) and bool((got[impossible] == 0).all())
    assert 400 < int(got[2000:3000].sum()) < 600  # V decides these: Binomial(1000, 1/2)
