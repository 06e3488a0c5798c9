"""exp_step's pulse loop on a shrinking working set against the masked full-set loop it replaced."""

from __future__ import annotations

import torch

from neurosim.hardware.devices import device_config
from neurosim.hardware.responses.base import normal_like


def _old(c, w, n, up, dw_up, dw_down, w_min, w_max, generator, noisy):
    sign = torch.where(up, 1.0, -1.0).to(w.dtype)
    dw = torch.where(up, dw_up, dw_down)
    big_a = torch.where(up, w.new_tensor(c.exp_A_up), w.new_tensor(c.exp_A_down))
    gamma = torch.where(up, w.new_tensor(c.exp_gamma_up), w.new_tensor(c.exp_gamma_down))
    span = w_max - w_min
    w = w.clone()
    for k in range(int(n.max())):
        active = n > k
        z = 2 * c.exp_a * w / span + c.exp_b
        step = dw * (1 - big_a * torch.exp(sign * gamma * z)).clamp_min(0)
        if noisy and c.dw_min_std:
            step = step * (1 + c.dw_min_std * normal_like(w, generator))
        w = torch.where(active, (w + sign * step).clamp(w_min, w_max), w)
    return w


def _devices(size, n_max, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = device_config("aihwkit_reram_es")
    w = (torch.rand(size, generator=g, dtype=torch.float64) - 0.5) * 1.1
    n = torch.randint(1, n_max + 1, (size,), generator=g).to(torch.float64)
    up = torch.rand(size, generator=g) < 0.5
    dw_up = torch.full((size,), c.step * 1.3, dtype=torch.float64)
    dw_down = torch.full((size,), c.step * 0.7, dtype=torch.float64)
    return c, w, n, up, dw_up, dw_down, torch.full_like(w, c.w_min), torch.full_like(w, c.w_max)


def test_noise_free_pulses_are_identical_to_the_masked_loop():
    c, *args = _devices(5000, 9)
    law = c.law
    assert torch.equal(law.change(c, *args), _old(c, *args, None, noisy=False) - args[0])


def test_noisy_pulses_draw_the_same_stream_when_every_device_gets_the_same_count():
    c, w, n, *rest = _devices(3000, 1)
    n = torch.full_like(n, 4.0)
    new = c.law.respond(c, w, n, *rest, torch.Generator().manual_seed(5))
    old = _old(c, w, n, *rest, torch.Generator().manual_seed(5), noisy=True)
    assert torch.equal(new, old)


def test_noisy_pulses_match_the_masked_loop_in_distribution():
    c, *args = _devices(20000, 6, seed=1)
    new = c.law.respond(c, *args, torch.Generator().manual_seed(1)) - args[0]
    old = _old(c, *args, torch.Generator().manual_seed(2), noisy=True) - args[0]
    # two-sample Kolmogorov-Smirnov (the noise is heavy-tailed: dw_min_std 5), critical value at p = 0.001
    both = torch.cat([new, old]).sort().values
    cdf = lambda x: torch.searchsorted(x.sort().values, both, right=True).double() / x.numel()
    assert float((cdf(new) - cdf(old)).abs().max()) < 1.95 * (2 / new.numel()) ** 0.5
