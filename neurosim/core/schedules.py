"""Learning-rate schedules over epochs, as one factor applied to every layer's rate."""

from __future__ import annotations

import math

from neurosim.config import EstimatorConfig


def lr_factor(estimator: EstimatorConfig, epoch: int, epochs: int) -> float:
    """The factor on ``estimator.lr`` during ``epoch`` (1-based) of ``epochs``.

    Cosine annealing follows torch's CosineAnnealingLR stepped once per epoch, with the first
    epoch at the full rate and the last at ``lr_final`` of it, so a run and its resumed twin
    see the same rates.
    """
    if estimator.lr_schedule == "constant" or epochs <= 1:
        return 1.0
    progress = (epoch - 1) / (epochs - 1)
    final = estimator.lr_final
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
