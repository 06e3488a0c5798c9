"""Costs l(s, y) and how they nudge the output layer.

- ``mse``: l = 1/2 ||s^N - y||^2 on one-hot targets; the output layer is the prediction.
- ``cross_entropy``: the last layer of the circuit becomes a softmax read-out,
  y_hat = softmax(W_out s^N + b_out), outside the dynamics (Laborieux et al. 2021): the
  network's last *dynamical* layer is then the one before it. The read-out weights learn from
  -dl/dW_out directly (they are not part of Phi), the nudge force is -beta W_out^T (y_hat - y).

A cost offers the estimators: ``logits`` (for the error rate), ``value`` (per sample),
``force`` (-dl/ds^N), ``param_groups``/``dl_dtheta`` for the read-out's own parameters.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class MSECost(nn.Module):
    def logits(self, out: Tensor) -> Tensor:
        return out

    def value(self, out: Tensor, y: Tensor) -> Tensor:
        return 0.5 * ((out - y) ** 2).sum(1)

    def force(self, out: Tensor, y: Tensor) -> Tensor:
        return y - out

    def param_groups(self) -> list[list[nn.Parameter]]:
        return []

    def dl_dtheta(self, out: Tensor, y: Tensor) -> list[list[Tensor]]:
        return []


class SoftmaxCrossEntropyCost(nn.Module):
    def __init__(self, n_in: int, n_classes: int, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        w = (torch.rand(n_classes, n_in, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        b = (torch.rand(n_classes, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        self.weight = nn.Parameter(w.to(device=device, dtype=dtype))
        self.bias = nn.Parameter(b.to(device=device, dtype=dtype))

    def logits(self, out: Tensor) -> Tensor:
        return torch.addmm(self.bias, out, self.weight.t())

    def value(self, out: Tensor, y: Tensor) -> Tensor:
        return -(torch.log_softmax(self.logits(out), dim=1) * y).sum(1)

    def _error(self, out: Tensor, y: Tensor) -> Tensor:
        return torch.softmax(self.logits(out), dim=1) - y

    def force(self, out: Tensor, y: Tensor) -> Tensor:
        return -self._error(out, y) @ self.weight

    def param_groups(self) -> list[list[nn.Parameter]]:
        return [[self.weight, self.bias]]

    def dl_dtheta(self, out: Tensor, y: Tensor) -> list[list[Tensor]]:
        err = self._error(out, y)
        return [[err.t() @ out / out.shape[0], err.mean(0)]]


Cost = MSECost | SoftmaxCrossEntropyCost
