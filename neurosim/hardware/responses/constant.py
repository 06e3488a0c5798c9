"""``constant``: every pulse moves the device by dw_up up or dw_down down, whatever its state
(clipped at the bounds): the ideal-but-quantised device (``levels_*`` presets)."""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.hardware.responses.base import ResponseLaw, compile_elementwise


class Constant(ResponseLaw):
    name = "constant"

    def change(self, config, w: Tensor, n: Tensor, up: Tensor, dw_up: Tensor, dw_down: Tensor,
               w_min: Tensor, w_max: Tensor) -> Tensor:
        return torch.where(up, dw_up, -dw_down) * n

    def compiled(self, config):
        return compile_elementwise(_COMPILED, _build), ()

    def brian2_update(self, config) -> list[str]:
        return ["dev_new = w + dev_n * (dev_up * dw_up - (1 - dev_up) * dw_down)"]


_COMPILED: dict = {}


def _build(njit):
    @njit(nogil=True, inline="always")
    def change(w, n, up, dw_up, dw_down, w_min, w_max, constants):
        return dw_up * n if up else -dw_down * n
    return change


LAW = Constant()
