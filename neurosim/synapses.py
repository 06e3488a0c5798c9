"""Applying an update to the synapses.

Every estimator hands its updates here instead of writing into the weights itself: this is
the single place where the device models of a later issue (finite pulses, asymmetric and
nonlinear conductance steps, noise, faults) replace the ideal rule theta <- theta + lr * Delta.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def apply_updates(groups: list[list[nn.Parameter]], updates: list[list[Tensor]], lrs: list[float]) -> None:
    """Ideal synapses: theta <- theta + lr * Delta theta, with one learning rate per group."""
    for params, deltas, lr in zip(groups, updates, lrs, strict=True):
        for p, d in zip(params, deltas, strict=True):
            p.add_(d, alpha=lr)
