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
- ``factored_counts``: a rank-B update of W_1 (C-EP's per-step one, EP's per-batch one) counted
  from its factors, as ``arrays.factored_pulse_counts`` does (points of a rate bounded by the
  factors, thinned at the device; the rows that can reach half a pulse formed), without
  forming the update: the points' number drawn first and their places walked over the (b, i)
  cells, each j drawn from an alias table of its input row once the input is used again (C-EP),
  by a search before; it declines (the caller forms the update) where its expected work, the
  points and the rows it forms, would cost more than forming.

The random numbers are seeded from the run's torch generator at every call (the counters' seed;
numba's generator for the factored count's number of points), so a run repeats and resumes
exactly; the stream
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


def input_tables(magnitude: Tensor, cache: dict) -> tuple[Tensor, Tensor, Tensor]:
    """How the factored count draws an input index j of row b (probability |R_bj| / sum_j): at
    the first write with an input, by searching each row's cumulative sum; from its second on
    (C-EP writes K times per batch with one input), by Walker alias tables, which cost about
    three searches' worth of points to build and make each draw a single look-up. ``cache``
    lives with the input (``arrays._InputSide``); returns (prob, alias, cumulative)."""
    uses = cache["uses"] = cache.get("uses", 0) + 1
    if "cumulative" not in cache:
        cache["cumulative"] = torch.cumsum(magnitude, 1, dtype=torch.float64)
    if uses >= 2 and "prob" not in cache:
        prob, alias = _compiled().alias_tables(magnitude.detach().to(torch.float64).contiguous().numpy())
        cache["prob"], cache["alias"] = torch.from_numpy(prob), torch.from_numpy(alias)
    none = (torch.zeros(0, 0, dtype=torch.float64), torch.zeros(0, 0, dtype=torch.int64))
    return cache.get("prob", none[0]), cache.get("alias", none[1]), cache["cumulative"]


def factored_counts(left: Tensor, factor: float, right: Tensor, rt: Tensor, sums: Tensor, row_max: Tensor,
                    tables: tuple[Tensor, Tensor, Tensor], rounding: str, generator: torch.Generator | None,
                    dense_density: float, row_cost: float) -> tuple[Tensor, Tensor, Tensor] | None:
    """``arrays.factored_pulse_counts`` of ``factor * left^T R``: ``left`` [B, out], ``right``
    R [B, in] with what is read of it (``rt`` = R^T [in, B], ``sums``, ``row_max``, the
    ``input_tables``). None where forming the update pays: its expected work (the points, and
    ``row_cost`` candidates per device of the rows formed because they may reach half a pulse)
    above ``dense_density`` candidates per device, or more than one row in eight formed."""
    prob, alias, cumulative = tables
    ok, index, n, up = _compiled().factored(
        left.detach().contiguous().numpy(), float(factor), right.detach().contiguous().numpy(),
        rt.contiguous().numpy(), sums.numpy(), row_max.numpy(), prob.numpy(), alias.numpy(), cumulative.numpy(),
        rounding == "deterministic", _seed(generator, 62), RATE, dense_density, row_cost)
    if not ok:
        return None
    return torch.from_numpy(index), torch.from_numpy(n), torch.from_numpy(up)


def program(change: Any, constants: tuple[float, ...], presented: Tensor, state: Tensor, per_device: Tensor,
            stuck: Tensor | None, index: Tensor, n: Tensor, up: Tensor, c2c: Tensor | None, c2c_std: float,
            noise: Tensor | None, noise_scale: float, pulses_up: Tensor, pulses_down: Tensor, limit: float
            ) -> tuple[float, Tensor, Tensor]:
    """``DeviceArray.program`` for a law with a compiled per-device ``change``, in one compiled
    pass (reads, law, c2c noise, bounds, write noise, counters): (largest count, devices moved,
    change of their presented weights). The normals (``c2c``, ``noise``: one per moved device,
    None: none) are drawn by the caller from the run's generator, as the torch path draws them.
    Nothing is written where the largest count is above ``limit`` or NaN."""
    empty = _NO_NOISE.numpy()
    most, moved, out = _compiled().program_with(change)(
        presented.numpy(), state.numpy(), per_device.numpy(), (_NO_STUCK if stuck is None else stuck).numpy(),
        index.numpy(), n.numpy(), up.numpy(), constants, empty if c2c is None else c2c.numpy(), c2c_std,
        empty if noise is None else noise.numpy(), noise_scale, pulses_up.numpy(), pulses_down.numpy(), limit)
    return float(most), torch.from_numpy(moved), torch.from_numpy(out)


def program_whole(respond: Any, constants: tuple[float, ...], presented: Tensor, state: Tensor,
                  per_device: Tensor, stuck: Tensor | None, index: Tensor, n: Tensor, up: Tensor, seed: int,
                  dw_min_std: float, noise: Tensor | None, noise_scale: float, pulses_up: Tensor,
                  pulses_down: Tensor, limit: float) -> tuple[float, Tensor, Tensor]:
    """``program`` for a pulse-by-pulse law compiled whole (``ResponseLaw.compiled_respond``):
    its noise from numba's generator seeded with ``seed``; the write noise (``noise``) drawn by
    the caller from the run's generator, as the torch path draws it."""
    empty = _NO_NOISE.numpy()
    most, moved, out = _compiled().program_whole_with(respond)(
        presented.numpy(), state.numpy(), per_device.numpy(), (_NO_STUCK if stuck is None else stuck).numpy(),
        index.numpy(), n.numpy(), up.numpy(), constants, seed, dw_min_std, empty if noise is None else noise.numpy(),
        noise_scale, pulses_up.numpy(), pulses_down.numpy(), limit)
    return float(most), torch.from_numpy(moved), torch.from_numpy(out)


def pair_split(index: Tensor, n: Tensor, up: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """A differential pair's count split by sign (``pulse_kernels_numba.pair_split``)."""
    return tuple(torch.from_numpy(a) for a in _compiled().pair_split(index.numpy(), n.numpy(), up.numpy()))


def pair_finish(index: Tensor, previous: Tensor, weight: Tensor, g_plus: Tensor, g_minus: Tensor,
                hidden_plus: Tensor, hidden_minus: Tensor, limits: tuple[Tensor, Tensor] | None, plus_down: Tensor,
                minus_down: Tensor, step: float) -> tuple[Tensor, Tensor, Tensor, int, int]:
    """A differential write's refresh (of the pairs at ``index`` and at ``previous``, those an
    earlier refresh left above; ``limits``: each device's threshold * w_max, flat; None: no
    refresh) and weight update, in one call (``pulse_kernels_numba.pair_finish``): (pairs whose
    w may have changed, the change, pairs still above after their refresh, refreshes, refresh
    pulses)."""
    plus_limit, minus_limit = limits if limits is not None else (_NO_NOISE, _NO_NOISE)
    touched, out, above, refreshes, pulses = _compiled().pair_finish(
        index.numpy(), previous.numpy(), weight.numpy(), g_plus.numpy(), g_minus.numpy(), hidden_plus.numpy(),
        hidden_minus.numpy(), limits is not None, plus_limit.numpy(), minus_limit.numpy(), plus_down.numpy(),
        minus_down.numpy(), torch.tensor([step], dtype=weight.dtype).numpy())
    return torch.from_numpy(touched), torch.from_numpy(out), torch.from_numpy(above), int(refreshes), int(pulses)


def movable(stuck: Tensor, index: Tensor) -> int:
    """How many of the devices at ``index`` are not ``stuck`` (flat bool)."""
    return int(_compiled().movable(stuck.numpy(), index.numpy()))


def gather(presented: Tensor, state: Tensor, per_device: Tensor, stuck: Tensor | None, index: Tensor, n: Tensor,
           up: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float]:
    """What ``DeviceArray.program`` reads before the response law, in one call: the devices at
    ``index`` that are not ``stuck`` (flat bool, None: none), their pulses and signs, the
    presented weights there, the true states (``state``: hidden under write noise, else
    ``presented``), the [4, devices] parameters (dw_up, dw_down, w_min, w_max) and the largest
    count (NaN if any is)."""
    out = _compiled().gather(presented.numpy(), state.numpy(), per_device.numpy(),
                             (_NO_STUCK if stuck is None else stuck).numpy(), index.numpy(), n.numpy(), up.numpy())
    return (*(torch.from_numpy(a) for a in out[:6]), float(out[6]))


def commit(base: Tensor, params: Tensor, index: Tensor, n: Tensor, up: Tensor, state: Tensor, presented: Tensor,
           noise: Tensor | None, noise_scale: float, pulses_up: Tensor, pulses_down: Tensor, before: Tensor) -> Tensor:
    """What ``DeviceArray.program`` writes after a torch law, in one call: the new states
    (``base``) clipped at the devices' bounds into ``state``, under write noise the presented
    weights (state plus ``noise`` times ``noise_scale``), the pulse counters; returns the change
    of the presented weights at ``index``."""
    out = _compiled().commit(
        base.contiguous().numpy(), params.numpy(), index.numpy(), n.numpy(), up.numpy(), state.numpy(),
        presented.numpy(), _NO_NOISE.numpy() if noise is None else noise.numpy(), noise_scale, pulses_up.numpy(),
        pulses_down.numpy(), before.numpy())
    return torch.from_numpy(out)


_NO_STUCK = torch.zeros(0, dtype=torch.bool)
_NO_NOISE = torch.zeros(0, dtype=torch.float64)
