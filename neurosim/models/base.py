"""What every discrete-time model offers the estimators.

A model is its dynamics plus its parameters. Estimators (EP, BPTT, later C-EP and C-VF) and
the Theorem-1 check only talk to this interface, so a new model (convolutional, vector field)
plugs into all of them at once:

- ``prepare(x)``: the terms that stay constant while x is clamped and the weights are fixed
  (the input drive W_1 x + b_1 and the biases), computed once per phase, not at every step;
- ``step(state, drive, force)``: s_{t+1} = dPhi/ds (x, s_t, theta) [+ force on the output];
- ``phi(x, state)``: the primitive function, for autograd checks;
- ``dphi_dtheta(x, state)``: its parameter gradient, written out by hand for speed;
- ``nudge_scale``: the factor that multiplies beta * dl/ds in the nudged step (1, or eps for
  the energy-based model, where the nudge is a force integrated with the same Euler step).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..activations import Activation

State = list[Tensor]
"""Neuron states s^1 .. s^N, each [batch, size]; s^0 = x is the clamped input."""


class LayeredModel(nn.Module):
    """Parameters and bookkeeping shared by layered (fully connected) models.

    Weights follow torch.nn.Linear's layout: W_n has shape [size_n, size_{n-1}], so that
    the forward drive of layer n is s^{n-1} W_n^T and the feedback of layer n-1 is s^n W_n.
    """

    nudge_scale: float = 1.0
    supports_rank_b_drive: bool = False
    """True when the model offers ``input_signal``, ``drive_gain`` and ``bias_drives`` (below),
    so that C-EP can follow per-step changes of W_1 in the drive without forming W_1."""
    drive_gain: float = 1.0
    """Factor between W_1 x + b_1 and the first entry of ``prepare``'s drive."""

    def __init__(self, sizes: list[int], activation: Activation, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 init_gain: list[float] | None = None) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.activation = activation
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        gains = init_gain or [1.0] * (len(sizes) - 1)
        for n_in, n_out, gain in zip(sizes[:-1], sizes[1:], gains):
            bound = 1.0 / math.sqrt(n_in)  # torch.nn.Linear's default, used by the papers' code
            w = (torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) * 2 - 1) * bound * gain
            b = (torch.rand(n_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound * gain
            self.weights.append(nn.Parameter(w.to(device=device, dtype=dtype)))
            self.biases.append(nn.Parameter(b.to(device=device, dtype=dtype)))

    @property
    def num_layers(self) -> int:
        """Number of weight layers N (state layers s^1 .. s^N)."""
        return len(self.weights)

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Parameters grouped by weight layer (input side first); a group shares a learning rate."""
        return [[w, b] for w, b in zip(self.weights, self.biases)]

    def flat_params(self) -> list[nn.Parameter]:
        return [p for group in self.param_groups() for p in group]

    def init_state(self, batch: int) -> State:
        w = self.weights[0]
        return [torch.zeros(batch, n, dtype=w.dtype, device=w.device) for n in self.sizes[1:]]

    def output(self, state: State) -> Tensor:
        return state[-1]

    # Subclasses implement these.
    def prepare(self, x: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def step(self, state: State, drive: list[Tensor], force: Tensor | None = None) -> State:
        raise NotImplementedError

    def phi(self, x: Tensor, state: State) -> Tensor:
        raise NotImplementedError

    def dphi_dtheta(self, x: Tensor, state: State) -> list[Tensor]:
        raise NotImplementedError

    def dphi_dtheta_difference(self, x: Tensor, state_a: State, state_b: State,
                               first_layer: bool = True) -> list[Tensor]:
        """dPhi/dtheta(state_a) - dPhi/dtheta(state_b), batch-averaged: the EP update before 1/beta.

        ``first_layer=False`` leaves out (W_1, b_1), for C-EP's rank-B path that never forms them.
        """
        grads_a = self.dphi_dtheta(x, state_a)
        grads_b = self.dphi_dtheta(x, state_b)
        diff = [a - b for a, b in zip(grads_a, grads_b)]
        return diff if first_layer else diff[2:]

    def input_signal(self, state: State) -> Tensor:
        """u with dPhi/dW_1 = u^T x / batch and dPhi/db_1 = mean(u) (see supports_rank_b_drive)."""
        raise NotImplementedError

    def bias_drives(self) -> list[Tensor]:
        """The drive entries of layers 2..N, which depend on their biases only."""
        raise NotImplementedError
