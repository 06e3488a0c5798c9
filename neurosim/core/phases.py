"""Relaxation phases: iterate a model's dynamics for a fixed number of steps.

Fixed step counts (T free, K nudged), as in the discrete-time papers, rather than a
convergence test: the cost of a batch is then known in advance and BPTT unrolls exactly the
same computation that EP runs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from neurosim.core.losses import Cost
from neurosim.core.models import LayeredModel, State


def relax(model: LayeredModel, drive: list[Tensor], state: State, steps: int) -> State:
    """Free dynamics: s_{t+1} = dPhi/ds(x, s_t)."""
    for _ in range(steps):
        state = model.step(state, drive)
    return state


def relax_nudged(model: LayeredModel, drive: list[Tensor], state: State, steps: int,
                 cost: Cost, y: Tensor, beta: float) -> State:
    """Nudged dynamics: s_{t+1} = dPhi/ds(x, s_t) - beta * nudge_scale * dl/ds(s_t, y)."""
    scale = beta * model.nudge_scale
    for _ in range(steps):
        force = cost.force(model.output(state), y).mul_(scale)
        state = model.step(state, drive, force)
    return state


class FixedPoints(NamedTuple):
    """One example's free and nudged fixed points: rates rho(s) per layer, the input x first
    (what a spiking network's window rates estimate), and the states."""

    free: list[Tensor]
    nudged: list[Tensor]
    free_states: list[Tensor]
    nudged_states: list[Tensor]


@torch.no_grad()
def fixed_points(model: LayeredModel, x: Tensor, y: Tensor, beta: float, steps: int = 100) -> FixedPoints:
    """Relax one example (x, y of batch 1) for ``steps`` free, then ``steps`` nudged steps with
    the mean-squared nudge beta (y - s_out): the reference the spiking backend is held to."""
    drive = model.prepare(x)
    state = relax(model, drive, model.init_state(1), steps)
    free_states = [s[0].clone() for s in state]
    for _ in range(steps):
        state = model.step(state, drive, (y - state[-1]) * (beta * model.nudge_scale))
    rho = model.activation
    return FixedPoints([x[0]] + [rho(s) for s in free_states], [x[0]] + [rho(s[0]) for s in state],
                       free_states, [s[0].clone() for s in state])
