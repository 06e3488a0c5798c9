"""Relaxation phases: iterate a model's dynamics for T (free) or K (nudged) steps, or until settled.

By default a phase runs its fixed number of steps, as in the discrete-time papers: the cost of a
batch is known in advance and BPTT unrolls exactly the computation EP runs. With a tolerance
(``estimator.tol``) a phase stops at the first step whose largest state change over the batch,
max |s_{t+1} - s_t|, is below it, the step count becoming a cap; a ``StepCounter`` records how
many steps each phase used, for metrics.jsonl. The check costs a reduction over every state and
a host sync, a good part of a small network's step, so ``every`` (``estimator.tol_every``)
makes it at every k-th step only: a phase then stops at the first checked step that
has settled, at most k - 1 steps later than checking each step would. ``per_sample``
(``estimator.tol_scope: sample``) lets each sample stop on its own: settled samples leave the
batch and the rest step on as a smaller one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from neurosim.core import fused
from neurosim.core.losses import Cost, MSECost
from neurosim.core.models import LayeredModel, State
from neurosim.errors import ConfigError


@dataclass
class StepCounter:
    """Steps used per phase, batch by batch (``estimator.tol``): what a fixed T and K would
    waste, measured."""

    steps: dict[str, list[int]] = field(default_factory=dict)

    def add(self, phase: str, used: int | list[int]) -> None:
        """One phase's steps (or, per sample, a list: each sample's)."""
        bucket = self.steps.setdefault(phase, [])
        if isinstance(used, list):
            bucket.extend(used)
        else:
            bucket.append(used)

    def summary(self) -> dict[str, float]:
        """``{phase}_steps_mean`` and ``{phase}_steps_max`` of each phase seen (per batch: the steps
        the batch ran; ``{phase}_sample_steps_*`` with ``estimator.tol_scope: sample``: each sample's)."""
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


def moved(new: State, old: State) -> Tensor:
    """max |s_{t+1} - s_t| of each sample over every layer: [batch]."""
    return torch.stack([(a.detach() - b.detach()).abs().flatten(1).amax(1) for a, b in zip(new, old)]).amax(0)


Force = Callable[[State, "Tensor | None"], "Tensor | None"]
"""The force on the output of the samples still moving (their rows, None for all): the nudge."""


def iterate(model: LayeredModel, drive: list[Tensor], state: State, steps: int, tol: float | None = None,
            every: int = 1, per_sample: bool = False, force: Force | None = None,
            pull: tuple[Tensor, float] | None = None) -> tuple[State, int, Tensor | None]:
    """``steps`` steps of the dynamics, or fewer once settled within ``tol``.

    Returns the state, the steps run and, ``per_sample``, the steps each sample ran. Per batch,
    the phase ends at the first checked step where the whole batch has settled, so one slow
    sample keeps every other one stepping. Per sample, a sample whose own max |s_{t+1} - s_t| is
    below tol at a check keeps that state and leaves the batch: the samples still moving step on
    as a smaller batch (their rows of the drive, ``LayeredModel.select_rows``), which on a
    network whose cost grows with the batch (convolutions, large layers) saves the steps the
    settled samples would have wasted. Each sample then ends as it would relaxed alone.

    ``pull`` = (target, scale) says that ``force`` is scale * (target - output) (the mean-squared
    cost's): with it, or without a force, a phase the model can run compiled
    (``LayeredModel.fused_operands``, ``neurosim.core.fused``) runs as one call.
    """
    if not per_sample and (force is None or pull is not None):
        operands = model.fused_operands()
        if operands is not None and fused.usable(state, operands):
            target, scale = pull if pull is not None else (None, 0.0)
            new, used = fused.relax(operands, drive, state, steps, tol, every, target, scale)
            return new, used, None
    if tol is None or not per_sample:
        used = 0
        for _ in range(steps):
            new = model.step(state, drive, None if force is None else force(state, None))
            used += 1
            if tol is not None and used % every == 0 and settled(new, state, tol):
                return new, used, None
            state = new
        return state, used, None
    if model.read_side is not None:
        raise ConfigError("estimator.tol_scope", "sample", "batch when the synapses read with noise, DAC or "
                          "ADC (their read side keeps per-batch terms a shrinking batch would not match)")
    batch = state[0].shape[0]
    out = [torch.empty_like(s) for s in state]
    rows = torch.arange(batch, device=state[0].device)
    per = torch.full((batch,), steps, dtype=torch.int64)
    used = 0
    for _ in range(steps):
        new = model.step(state, drive, None if force is None else force(state, None if len(rows) == batch else rows))
        used += 1
        if used % every == 0:
            done = moved(new, state) < tol
            count = int(done.sum())
            if count:
                finished = rows[done]
                for o, s in zip(out, new):
                    o.index_copy_(0, finished, s[done])
                per[finished.cpu()] = used
                if count == len(rows):
                    return out, used, per
                keep = ~done
                rows = rows[keep]
                new = [s[keep] for s in new]
                drive = model.select_rows(drive, keep)
        state = new
    for o, s in zip(out, state):
        o.index_copy_(0, rows, s)
    return out, used, per


def _count(counter: StepCounter | None, phase: str, used: int, per: Tensor | None) -> None:
    if counter is None:
        return
    counter.add(phase, used)
    if per is not None:
        counter.add(f"{phase}_sample", per.tolist())


def relax(model: LayeredModel, drive: list[Tensor], state: State, steps: int, tol: float | None = None,
          counter: StepCounter | None = None, phase: str = "free", every: int = 1,
          per_sample: bool = False) -> State:
    """Free dynamics: s_{t+1} = dPhi/ds(x, s_t), for ``steps`` steps or until settled within
    ``tol`` (checked at every ``every``-th step; ``per_sample``: each sample on its own)."""
    state, used, per = iterate(model, drive, state, steps, tol, every, per_sample)
    _count(counter, phase, used, per)
    return state


def relax_nudged(model: LayeredModel, drive: list[Tensor], state: State, steps: int,
                 cost: Cost, y: Tensor, beta: float, tol: float | None = None,
                 counter: StepCounter | None = None, every: int = 1, per_sample: bool = False) -> State:
    """Nudged dynamics: s_{t+1} = dPhi/ds(x, s_t) - beta * nudge_scale * dl/ds(s_t, y), for
    ``steps`` steps or until settled within ``tol`` (checked at every ``every``-th step;
    ``per_sample``: each sample on its own)."""
    scale = beta * model.nudge_scale

    def force(current: State, rows: Tensor | None) -> Tensor:
        target = y if rows is None else y.index_select(0, rows)
        return cost.force(model.output(current), target).mul_(scale)

    pull = (y, scale) if type(cost) is MSECost else None
    state, used, per = iterate(model, drive, state, steps, tol, every, per_sample, force, pull)
    _count(counter, "nudged", used, per)
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
