"""Relaxation phases: iterate a model's dynamics for a fixed number of steps.

Fixed step counts (T free, K nudged), as in the discrete-time papers, rather than a
convergence test: the cost of a batch is then known in advance and BPTT unrolls exactly the
same computation that EP runs.
"""

from __future__ import annotations

from torch import Tensor

from .losses import Cost
from .models import LayeredModel, State


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
