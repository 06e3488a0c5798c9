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
  the energy-based model, where the nudge is a force integrated with the same Euler step);
- ``nudged_step(x, state, drive, force)``: one nudged step and the local parameter change it
  carries: dPhi/dtheta(s_{t+1}) - dPhi/dtheta(s_t) for models with a Phi (C-EP, Eq. 5), and
  (dF/dtheta(s_t))^T (s_{t+1} - s_t) for vector fields (C-VF). EP, C-EP, VF, C-VF and the
  Theorem-1 check all take their per-step updates from here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neurosim.core.activations import Activation

State = list[Tensor]
"""Neuron states s^1 .. s^N, each [batch, size]; s^0 = x is the clamped input."""


class Parameters(nn.ParameterList):
    """An ``nn.ParameterList`` that is cheap to read inside the step loop: iterating it walks the
    registered parameters directly, and a slice is a plain list. ``nn.ParameterList`` looks every
    entry up by name and builds a new module for each slice: ``biases[1:]`` cost 43 us and
    ``list(weights)`` 7 us (1 thread), against steps of a few hundred microseconds at batch 20.
    Everything else (registration, state dicts, ``.to``, indexing one entry) is the parent's."""

    def __iter__(self):
        return iter(self._parameters.values())  # registered as '0', '1', ... in order

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return list(self)[idx]
        return super().__getitem__(idx)


class LayeredModel(nn.Module):
    """Parameters and bookkeeping shared by layered (fully connected) models.

    Weights follow torch.nn.Linear's layout: W_n has shape [size_n, size_{n-1}], so that
    the forward drive of layer n is s^{n-1} W_n^T and the feedback of layer n-1 is s^n W_n.
    """

    nudge_scale: float = 1.0
    has_phi: bool = True
    """False for vector fields: no primitive function, so EP's endpoint difference of dPhi/dtheta
    does not exist and the end-of-phase update is the sum of the per-step local updates."""
    supports_rank_b_drive: bool = False
    """True when the model offers ``input_signal``, ``drive_gain`` and ``bias_drives`` (below),
    so that C-EP can follow per-step changes of W_1 in the drive without forming W_1."""
    drive_gain: float = 1.0
    """Factor between W_1 x + b_1 and the first entry of ``prepare``'s drive."""
    supports_read_side: bool = False
    """True when the step routes every weight read through ``read_side`` (``neurosim.hardware.read_side``:
    read noise, DAC, ADC of an analog array)."""
    read_side = None
    """A ``ReadSide`` when the synapses' devices read imperfectly; None reads the weights exactly."""
    fused = True
    """Whether phases may run compiled (``compute.fused``; ``fused_operands`` decides where they can)."""

    def __init__(self, sizes: list[int], activation: Activation, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 init_gain: list[float] | None = None) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.activation = activation
        self.weights = Parameters()
        self.biases = Parameters()
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

    def split_groups(self, flat: list[Tensor], skip_first: bool = False) -> list[list[Tensor]]:
        """Cut a flat list (flat_params order, without group 1 if ``skip_first``) into param groups."""
        sizes = [len(group) for group in self.param_groups()][1 if skip_first else 0:]
        if sum(sizes) != len(flat):
            raise ValueError(f"{len(flat)} tensors for parameter groups of sizes {sizes}")
        groups, i = [], 0
        for size in sizes:
            groups.append(list(flat[i:i + size]))
            i += size
        return groups

    def param_names(self) -> list[str]:
        """Names of flat_params(): W_n (matrices and kernels) and b_n (vectors) of layer n."""
        names = []
        for layer, group in enumerate(self.param_groups(), start=1):
            seen: dict[str, int] = {}
            for p in group:
                kind = "W" if p.dim() >= 2 else "b"
                seen[kind] = seen.get(kind, 0) + 1
                names.append(f"{kind}_{layer}" + ("" if seen[kind] == 1 else f".{seen[kind]}"))
        return names

    def diagnostics(self) -> dict[str, float | list[float]]:
        """Quantities worth logging once per epoch (e.g. the weight angle of vector fields)."""
        return {}

    def init_state(self, batch: int) -> State:
        w = self.weights[0]
        return [torch.zeros(batch, n, dtype=w.dtype, device=w.device) for n in self.sizes[1:]]

    def output(self, state: State) -> Tensor:
        return state[-1]

    def fused_operands(self) -> dict | None:
        """The operands of a compiled relaxation (``neurosim.core.fused``), or None: this model
        steps in torch. Only the prototypical model (and vector fields) compile."""
        return None

    def select_rows(self, drive: list[Tensor], keep: Tensor) -> list[Tensor]:
        """The drive of the samples a boolean row mask ``keep`` marks, for a phase whose settled
        samples leave the batch (``estimator.tol_scope: sample``). A layered model's drive has one
        per-sample entry, the first (the input's drive); the rest (biases, the toy model's
        coupling matrix) are shared by every sample and stay as they are."""
        return [drive[0][keep], *drive[1:]]

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

    def nudged_step(self, x: Tensor, state: State, drive: list[Tensor], force: Tensor | None,
                    first_layer: bool = True) -> tuple[State, list[Tensor], Tensor | None]:
        """s_{t+1}, the local update numerator of this step (flat, batch-averaged, before the
        1/(beta * nudge_scale) factor) and, when ``first_layer`` is False, the signal du of
        the left-out first layer instead (its update is du^T x / batch, mean(du)).

        For a model with Phi the numerator is dPhi/dtheta(s_{t+1}) - dPhi/dtheta(s_t): summed
        over the phase it telescopes to EP's Eq. 2.
        """
        new = self.step(state, drive, force)
        local = self.dphi_dtheta_difference(x, new, state, first_layer)
        du = None if first_layer else self.input_signal(new) - self.input_signal(state)
        return new, local, du

    def input_signal(self, state: State) -> Tensor:
        """u with dPhi/dW_1 = u^T x / batch and dPhi/db_1 = mean(u) (see supports_rank_b_drive)."""
        raise NotImplementedError

    def bias_drives(self) -> list[Tensor]:
        """The drive entries of layers 2..N, which depend on their biases only."""
        raise NotImplementedError
