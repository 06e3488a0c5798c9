"""Compiled (numba) pulse counts on the CPU: the stochastic rounding of ``neurosim.hardware.arrays``
in one pass each, instead of a few dozen torch operations.

A device write at batch 20 spends most of its time not in arithmetic but in launching small
tensor operations (block sums, searches, gathers, sorts: about 40 per write, each a few
microseconds). The two counts here do the same work in one compiled loop, and draw the same
distribution as the torch paths they replace (``tests/hardware/test_pulse_counts.py`` holds
both to floor(p + U) per device):

- ``formed_counts``: an update formed in pulse units (EP's per-batch write, C-EP's fallback):
  floor(p + U) for every device, U from a counter-based generator (SplitMix64's output function
  of seed + device index: a few integer operations per device, no generator state to carry), in
  one pass. Cheaper than the torch paths at every density, so it needs no sparse variant.
- ``factored_counts``: C-EP's rank-B update of W_1 counted from its factors, as
  ``arrays.factored_pulse_counts`` does (points of a rate bounded by the factors, thinned at the
  device; the rows that can reach half a pulse formed), without forming the update.

The random numbers are seeded from the run's torch generator at every call (the counter's seed;
numba's generator for the factored count), so a run repeats and resumes exactly; the stream
differs from the torch paths' (fixed-seed fingerprints of device runs change with the path, as
they did when the sparse count came in).

Used where numba imports and the tensors live on the CPU (``available``); ``NEUROSIM_KERNELS=torch``
turns it off (the torch paths stay, and run on CUDA). The first call compiles (about a second
per dtype, cached on disk by numba).
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import torch
from torch import Tensor

RATE = 2 * math.log(2)
"""max of -log(1 - p) / p over p in (0, 1/2] (as ``arrays.RATE``): the dominating rate."""

_KERNELS: dict[str, Any] = {}


def available() -> bool:
    """Whether the compiled counts are used: numba is installed and NEUROSIM_KERNELS is not 'torch'."""
    if os.environ.get("NEUROSIM_KERNELS", "").strip().lower() == "torch":
        return False
    return importlib.util.find_spec("numba") is not None


def usable(tensor: Tensor, generator: torch.Generator | None) -> bool:
    """Whether a write on ``tensor`` with ``generator`` can take the compiled path (CPU, float)."""
    return (tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64)
            and (generator is None or generator.device.type == "cpu"))


def _seed(generator: torch.Generator | None, bits: int = 32) -> int:
    """A seed for a kernel, drawn from the run's torch generator (numba's own generator takes 32 bits)."""
    return int(torch.randint(0, 2**bits - 1, (1,), generator=generator, dtype=torch.int64))


def _compiled():
    """The numba module, imported on first use (importing numba costs a few tenths of a second:
    the command line and the runs that never write to devices do not pay it)."""
    if "module" not in _KERNELS:
        from neurosim.hardware import pulse_kernels_numba

        _KERNELS["module"] = pulse_kernels_numba
    return _KERNELS["module"]


def formed_counts(signed: Tensor, rounding: str, generator: torch.Generator | None
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """``arrays.pulse_counts`` of an update in pulse units (flat indices sorted, counts, signs)."""
    flat = signed.detach().reshape(-1)
    if not flat.is_contiguous():
        flat = flat.contiguous()
    index, n, up = _compiled().formed(flat.numpy(), rounding == "deterministic", _seed(generator, 62))
    return torch.from_numpy(index), torch.from_numpy(n), torch.from_numpy(up)


def factored_counts(lf: Tensor, rt: Tensor, cumulative: Tensor, sums: Tensor, rows: Tensor, block: Tensor,
                    sign: float, rounding: str, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
    """``arrays.factored_pulse_counts`` from its prepared factors: ``lf`` [B, out] scaled to pulse
    units, ``rt`` the right factor transposed [in, B] with what is read of it (``cumulative``,
    ``sums``), and the rows that can reach half a pulse with their formed update ``block``."""
    index, n, up = _compiled().factored(
        lf.contiguous().numpy(), rt.contiguous().numpy(), cumulative.numpy(), sums.numpy(), rows.numpy(),
        block.contiguous().numpy(), sign, rounding == "deterministic", _seed(generator), RATE)
    return torch.from_numpy(index), torch.from_numpy(n), torch.from_numpy(up)
