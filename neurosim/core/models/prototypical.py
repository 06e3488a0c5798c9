"""The prototypical fully connected model of Ernoult et al. 2019.

Phi(x, s, theta) = sum_n (s^n)^T W_n s^{n-1} + sum_n b_n^T s^n  (s^0 = x), and the dynamics
s^n_{t+1} = rho(W_n s^{n-1}_t + W_{n+1}^T s^{n+1}_t + b_n), i.e. s_{t+1} = rho(dPhi/ds): all
layers are updated synchronously from the previous state. In the nudged phase the output
receives -beta * dl/ds added after rho, as in SPEC §1 (s^b_{t+1} = dPhi/ds - beta dl/ds).

With a step dt < 1 the dynamics are damped, s_{t+1} = (1 - dt) s_t + dt rho(dPhi/ds) (the
nudge scaled by dt too), as ``EPdisc`` in the code of Ernoult et al. 2019 (default dt = 0.2):
the undamped synchronous map can settle into period-2 oscillations instead of a fixed point,
and EP needs a fixed point. The fixed points are those of dt = 1; the primitive becomes
Phi_dt = (1 - dt)/2 ||s||^2 + dt Phi, so the EP update is unchanged,
(1/beta) (s^n_b (s^{n-1}_b)^T - s^n (s^{n-1})^T).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.core.models.base import LayeredModel, State


class PrototypicalModel(LayeredModel):
    supports_rank_b_drive = True
    supports_read_side = True

    def __init__(self, *args, dt: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dt = float(dt)
        self.nudge_scale = self.dt
        self.drive_gain = self.activation.gain

    def prepare(self, x: Tensor) -> list[Tensor]:
        """Scaled, shifted constant terms: gain (W_1 x + b_1) + offset, then gain b_n + offset."""
        g, c = self.activation.gain, self.activation.offset
        if self.read_side is not None:
            x = self.read_side.dac(x, 0)
            self.read_side.remember_input(x)
        first = torch.addmm(self.biases[0], x, self.weights[0].t()).mul_(g).add_(c)
        return [first] + self.bias_drives()

    def bias_drives(self) -> list[Tensor]:
        g, c = self.activation.gain, self.activation.offset
        return [b * g + c for b in self.biases[1:]]

    def input_signal(self, state: State) -> Tensor:
        return state[0] * self.dt

    def step(self, state: State, drive: list[Tensor], force: Tensor | None = None) -> State:
        return self._step(state, drive, force, primes=None)

    def _feedback(self, n: int) -> Tensor:
        """The matrix M with feedback into state[n] = state[n+1] @ M: W_{n+2} (tied weights)."""
        return self.weights[n + 1]

    def _feedbacks(self) -> list[Tensor]:
        """Every layer's feedback matrix, looked up once per step (``ParameterList`` indexing
        was a tenth of a batch-20 step's time)."""
        return list(self.weights)[1:]

    def fused_operands(self) -> dict | None:
        """What ``neurosim.core.fused`` needs to run this model's phases compiled, or None where
        the compiled loop would not compute this step: a read side, an activation it does not
        know, or a subclass with a step of its own. Forward matrices W_2..W_N as they are;
        feedback matrices [size_{n+1}, size_n] contiguous (a vector field's B^T copied once per
        phase, the weights are fixed during it)."""
        from neurosim.core.fused import ACTIVATIONS

        if (not self.fused or self.read_side is not None or self.activation.name not in ACTIVATIONS
                or type(self)._step is not PrototypicalModel._step or type(self).step is not PrototypicalModel.step):
            return None
        return {"forward": [w.detach() for w in list(self.weights)[1:]],
                "feedback": [f.detach().contiguous() for f in self._feedbacks()],
                "gain": self.activation.gain, "dt": self.dt, "activation": ACTIVATIONS[self.activation.name]}

    def _step(self, state: State, drive: list[Tensor], force: Tensor | None,
              primes: list[Tensor] | None) -> State:
        """The step; with a list ``primes``, also appends rho'(a^n) of each layer's pre-activation
        (w.r.t. the unscaled a = W s + b), which the vector-field update needs."""
        g, c = self.activation.gain, self.activation.offset
        last = len(state) - 1
        read = self.read_side
        weights, feedbacks = list(self.weights), self._feedbacks()
        dt, apply_ = self.dt, self.activation.apply_
        new: State = []
        for n in range(len(state)):
            below = None if n == 0 else state[n - 1]
            above = state[n + 1] if n < last else None
            if read is not None:  # the inputs as the DAC of this layer drives them
                below = None if below is None else read.dac(below, n)
                above = None if above is None else read.dac(above, n)
            if n == 0:
                pre = drive[0]
            else:  # forward drive from the layer below (its previous state)
                pre = torch.addmm(drive[n], below, weights[n].t(), alpha=g)
            if n < last:  # feedback from the layer above
                pre = torch.addmm(pre, above, feedbacks[n], alpha=g)
            elif n == 0:
                pre = pre.clone()  # a one-layer model must not overwrite its drive in place
            if read is not None:
                pre = read.pre_activation(pre, n, below, above, g, c)
            if primes is None:
                s = apply_(pre)
            else:
                s, prime = self.activation.value_and_prime((pre - c) / g)
                primes.append(prime)
            if dt != 1.0:  # s + dt (rho(.) - s)
                s = torch.lerp(state[n], s, dt)
            if n == last and force is not None:  # out of place under autograd: sigmoid_ saved s
                s = s + force if torch.is_grad_enabled() else s.add_(force)
            new.append(s)
        return new

    def phi(self, x: Tensor, state: State) -> Tensor:
        below = [x] + state[:-1]
        total = x.new_zeros(())
        for w, b, s_in, s_out in zip(self.weights, self.biases, below, state):
            total = total + ((s_in @ w.t()) * s_out).sum() + (s_out @ b).sum()
        if self.dt == 1.0:
            return total
        return 0.5 * (1.0 - self.dt) * sum((s * s).sum() for s in state) + self.dt * total

    def dphi_dtheta(self, x: Tensor, state: State) -> list[Tensor]:
        batch = x.shape[0]
        below = [x] + state[:-1]
        grads: list[Tensor] = []
        for s_in, s_out in zip(below, state):
            grads += [s_out.t() @ s_in / batch, s_out.mean(0)]
        return [g.mul_(self.dt) for g in grads] if self.dt != 1.0 else grads

    def dphi_dtheta_difference(self, x: Tensor, state_a: State, state_b: State,
                               first_layer: bool = True) -> list[Tensor]:
        # For W_1 the input is the same in both states, so one matmul on the difference does.
        batch = x.shape[0]
        grads: list[Tensor] = []
        # dt / batch scales the [batch, n] factors, not the [n, m] products (a full-matrix
        # division per batch was 8% of a batch-20 step)
        scale = self.dt / batch
        if first_layer:
            diff0 = (state_a[0] - state_b[0]).mul_(scale)
            grads += [diff0.t() @ x, diff0.sum(0)]
        for n in range(1, len(state_a)):
            ga = torch.mm(state_a[n].t(), state_a[n - 1] * scale)
            grads += [ga.sub_(torch.mm(state_b[n].t(), state_b[n - 1] * scale)),
                      (state_a[n] - state_b[n]).sum(0).mul_(scale)]
        return grads
