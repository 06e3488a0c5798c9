"""Continual Equilibrium Propagation (C-EP, Ernoult et al. 2020, Eq. 5) and its vector-field form (C-VF).

The free phase is EP's. In the nudged phase neurons and synapses move together: after each
neural step s_t -> s_{t+1}, every parameter group n changes by

    theta_{t+1} = theta_t + eta_n / (beta s) (dPhi/dtheta(x, s_{t+1}, theta_t) - dPhi/dtheta(x, s_t, theta_t))

(s the model's nudge scale, as for EP), using only what exists at that moment: the rule is
local in space and in time. For vector fields (C-VF) the model's local rule replaces the
difference: theta_{t+1} = theta_t + eta_n / (beta s) (dF/dtheta(s_t))^T (s_{t+1} - s_t); both
come from ``model.nudged_step``. Summed over the K steps it telescopes to EP's Eq. 2 as eta -> 0.
``estimator.lr`` holds the eta of each layer. Every per-step update goes through
``Synapses.apply`` (``neurosim.hardware.synapses``), the hook where device models act on each pulse, and the
input drive is rebuilt after each step because W_1 and the biases have changed.

The sign of beta is the sign of the feedback inside the phase: a step's change of the hidden
states moves W_1 by (eta_1/beta) du x^T, which moves their drive by (eta_1/beta) |x|^2 du, the
same way as du when beta > 0 (the summed update overshoots EP's, and runs away at large eta),
the other way when beta < 0 (it falls short of EP's but stays bounded). So beta < 0 allows
larger rates: experiments/cep_feedback.py, and README (C-EP-1h at beta = -0.2). That needs
EP's -beta estimate to match the +beta one, true for smooth activations but not for clamped
hard-sigmoid states (experiments/ep_sign_agreement.py).

Rank-B path (ideal synapses, ``materialize_updates: false``, models that support it; at small
batches the whole phase runs compiled, ``neurosim.core.fused.continual_nudged``): while x
is clamped, W_1 changes at step t by eta_1 du_t^T x / B (u = ``model.input_signal``), so the
drive W_1 x moves by eta_1 (x x^T / B) du_t: a B x B product instead of rebuilding a
[B, 784] x [784, n_1] product and forming W_1's update. The per-step changes of W_1 then sum
(telescope) to one update applied at the end of the phase: the same weights, up to rounding.

Factored path (devices, same conditions otherwise): the devices must see every per-step update
of W_1, but not as a formed [n_1, 784] tensor: it goes to ``Synapses.apply`` as an
``OuterProduct`` (du and x), from which the arrays count pulses without forming it where the
pulses are few (``arrays.factored_pulse_counts``), with one product otherwise. The drive then
follows what the devices did: a write returns the devices it touched and their change
(``arrays.Change``; few at a C-EP step), so W_1 x moves by those entries times x and the
drive is updated in place, instead of rebuilt from the whole W_1 (the product that was most of
a device C-EP step's arithmetic). The same drive up to float rounding; models with a read side
(DAC, read noise), and writes that changed more than FOLLOW_FRACTION of W_1, rebuild it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.errors import ConfigError
from neurosim.core import fused
from neurosim.core.estimators.base import Estimator, StepResult
from neurosim.core.losses import MSECost
from neurosim.hardware.synapses import Change, OuterProduct


FOLLOW_FRACTION = 1 / 64
"""The drive follows a write's changed devices while they are at most this share of W_1; above
it one product is cheaper (per changed device a gather, a product and a scatter of B values cost
about as much as 60-90 devices' share of the product: 1 thread, batch 20, 784-512). Noisy devices
(write noise, c2c) change most of W_1 at every step."""
FOLLOW_TRANSPOSED = 1024
"""From this many changed devices on, a write's change to the drive is summed over rows of x^T
(fewer strided writes; below it, the zeroed buffer and its addition cost more than they save)."""


class ContinualEP(Estimator):
    """No ``compute``: the updates are applied while the phase runs, so only ``train_step`` exists."""

    def __init__(self, model, cost, config, synapses=None) -> None:
        super().__init__(model, cost, config, synapses)
        if config.symmetric:
            raise ConfigError("estimator.symmetric", True,
                              "false for C-EP/C-VF (their updates happen during one nudged phase)")
        if cost.param_groups():
            raise ConfigError("loss", "cross_entropy", "mse for C-EP/C-VF (the read-out is not part of the dynamics)")

    @torch.no_grad()
    def train_step(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> StepResult:
        model, cost = self.model, self.cost
        beta = self.draw_beta(generator)
        drive, state = self.free_phase(x)
        result = self._result(state, y)
        force_scale = beta * model.nudge_scale
        update_scale = 1.0 / force_scale
        groups, lrs = self.groups, self.lrs
        rank_b = (model.supports_rank_b_drive and not self.config.materialize_updates
                  and self.synapses.ideal)  # devices must see every per-step update of W_1
        factored = (model.supports_rank_b_drive and not self.config.materialize_updates
                    and not self.synapses.ideal)  # ... which they get as its two factors
        if rank_b:
            batch = x.shape[0]
            gram = x @ x.t() / batch
            du_sum = torch.zeros_like(state[0])
            drive_step = model.drive_gain * lrs[0] * update_scale
            operands = model.fused_operands() if model.has_phi and type(cost) is MSECost else None
            if (operands is not None and batch <= fused.CONTINUAL_BATCH
                    and fused.usable(state, operands)):  # the whole phase compiled
                rates = [lr * update_scale * model.dt / batch for lr in lrs]
                du_sum = fused.continual_nudged(operands, drive, state, self.config.K, y, force_scale, gram,
                                                drive_step, rates, [b.detach() for b in list(model.biases)[1:]])
                du_sum.mul_(update_scale)
                self.synapses.apply(groups[:1], [[du_sum.t() @ x / batch, du_sum.mean(0)]], lrs[:1])
                return result
        for _ in range(self.config.K):
            force = cost.force(model.output(state), y).mul_(force_scale)
            new, local, du = model.nudged_step(x, state, drive, force, first_layer=not (rank_b or factored))
            local = [d.mul_(update_scale) for d in local]
            if factored:
                first = [OuterProduct(du, x, update_scale / x.shape[0]), du.mean(0).mul_(update_scale)]
                changes = self.synapses.apply(groups, [first] + model.split_groups(local, skip_first=True), lrs)
                change = changes.get(id(groups[0][0])) if model.read_side is None else None
                if change is None or change.index.numel() > FOLLOW_FRACTION * groups[0][0].numel():
                    drive = model.prepare(x)
                else:
                    drive = [follow_input_writes(drive[0], x, change, first[1], lrs[0], model.drive_gain)
                             ] + model.bias_drives()
            elif rank_b:
                du_sum += du
                self.synapses.apply(groups[1:], model.split_groups(local, skip_first=True), lrs[1:])
                first = torch.addmm(drive[0], gram, du, alpha=drive_step).add_(du.mean(0), alpha=drive_step)
                drive = [first] + model.bias_drives()
            else:
                self.synapses.apply(groups, model.split_groups(local), lrs)
                drive = model.prepare(x)
            state = new
        if rank_b:
            du_sum.mul_(update_scale)
            self.synapses.apply(groups[:1], [[du_sum.t() @ x / batch, du_sum.mean(0)]], lrs[:1])
        return result



def follow_input_writes(drive: Tensor, x: Tensor, change: Change, bias_update: Tensor, lr: float,
                        gain: float) -> Tensor:
    """The first drive, gain (W_1 x + b_1) (+ offset), after a write that moved the devices at
    ``change.index`` (flat indices of W_1, [n_1, n_in]) by ``change.delta`` and the (ideal) bias
    by lr x ``bias_update``: each changed device adds its change times its input to its neuron's
    drive. In place."""
    count = change.index.numel()
    if count:
        n_in = x.shape[1]
        rows = change.index // n_in
        delta = change.delta.to(x.dtype)
        if count < FOLLOW_TRANSPOSED:
            contribution = x.index_select(1, change.index % n_in).mul_(delta)
            drive.index_add_(1, rows, contribution, alpha=gain)
        else:  # many devices: sum along contiguous rows of x^T (an index_add_ along the batch's
            # strided dimension was 3x slower at 6,000 changed devices, batch 20)
            contribution = x.t().contiguous().index_select(0, change.index % n_in).mul_(delta.unsqueeze(1))
            per_neuron = drive.new_zeros(drive.shape[1], drive.shape[0]).index_add_(0, rows, contribution)
            drive.add_(per_neuron.t(), alpha=gain)
    return drive.add_(bias_update, alpha=lr * gain)
