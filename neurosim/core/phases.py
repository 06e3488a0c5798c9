"""Relaxation phases: iterate a model's dynamics for T (free) or K (nudged) steps, or until settled.

By default a phase runs its fixed number of steps, as in the discrete-time papers: the cost of a
batch is known in advance and BPTT unrolls exactly the computation EP runs. With a tolerance
(``estimator.tol``) a phase stops at the first step whose largest state change over the batch,
max |s_{t+1} - s_t|, is below it, the step count becoming a cap; a ``StepCounter`` records how
many steps each phase used, for metrics.jsonl. The check costs a reduction over every state and
a host sync, a good part of a small network's step, so ``every`` (``estimator.tol_every``)
makes it at every k-th step only: a phase then stops at the first checked step that
has settled, at most k - 1 steps later than checking each step would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from neurosim.core.losses import Cost
from neurosim.core.models import LayeredModel, State


@dataclass
class StepCounter:
    """Steps used per phase, batch by batch (``estimator.tol``): what a fixed T and K would
    waste, measured."""

    steps: dict[str, list[int]] = field(default_factory=dict)

    def add(self, phase: str, used: int) -> None:
        self.steps.setdefault(phase, []).append(used)

    def summary(self) -> dict[str, float]:
        """``{phase}_steps_mean`` and ``{phase}_steps_max`` of each phase seen."""
        out: dict[str, float] = {}
        for phase, used in self.steps.items():
            out[f"{phase}_steps_mean"] = round(sum(used) / len(used), 2)
            out[f"{phase}_steps_max"] = max(used)
        return out

    def clear(self) -> None:
        self.steps.clear()


def settled(new: State, old: State, tol: float) -> bool:
    """max |s_{t+1} - s_t| over every layer and sample below ``tol`` (one host sync per call)."""
    return max(float((a.detach() - b.detach()).abs().max()) for a, b in zip(new, old)) < tol


def relax(model: LayeredModel, drive: list[Tensor], state: State, steps: int, tol: float | None = None,
          counter: StepCounter | None = None, phase: str = "free", every: int = 1) -> State:
    """Free dynamics: s_{t+1} = dPhi/ds(x, s_t), for ``steps`` steps or until settled within
    ``tol`` (checked at every ``every``-th step)."""
    used = 0
    for _ in range(steps):
        new = model.step(state, drive)
        used += 1
        if tol is not None and used % every == 0 and settled(new, state, tol):
            state = new
            break
        state = new
    if counter is not None:
        counter.add(phase, used)
    return state


def relax_nudged(model: LayeredModel, drive: list[Tensor], state: State, steps: int,
                 cost: Cost, y: Tensor, beta: float, tol: float | None = None,
                 counter: StepCounter | None = None, every: int = 1) -> State:
    """Nudged dynamics: s_{t+1} = dPhi/ds(x, s_t) - beta * nudge_scale * dl/ds(s_t, y), for
    ``steps`` steps or until settled within ``tol`` (checked at every ``every``-th step)."""
    scale = beta * model.nudge_scale
    used = 0
    for _ in range(steps):
        force = cost.force(model.output(state), y).mul_(scale)
        new = model.step(state, drive, force)
        used += 1
        if tol is not None and used % every == 0 and settled(new, state, tol):
            state = new
            break
        state = new
    if counter is not None:
        counter.add("nudged", used)
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
