"""``soft_bounds``: aihwkit's SoftBounds, up dw_up (1 - w / w_max), down dw_down (1 - w / w_min):
the step vanishes at the bounds. It is ``linear_step`` with both slopes 1 (same closed form,
same Brian2 code), kept as its own law because presets and papers name it so."""

from __future__ import annotations

from neurosim.hardware.responses.linear_step import LinearStep


class SoftBounds(LinearStep):
    name = "soft_bounds"
    params = None  # no parameters of its own (gamma_up/gamma_down are linear_step's)

    def gammas(self, config) -> tuple[float, float]:
        return 1.0, 1.0

    def validate(self, config, prefix: str) -> None:
        """Nothing to check: the slopes are fixed (a preset's gamma_* are ignored, as before)."""


LAW = SoftBounds()
