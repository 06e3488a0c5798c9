"""The convolutional prototypical model of Ernoult et al. 2019 (Eq. 3 and 4).

Conv layers n = 1..C (state s^n: [B, channels, height, width] after pooling), then fully
connected layers (state [B, size]); s^0 = x as an image. The primitive function is

    Phi = sum_conv s^n . (P(W_n * s^{n-1}) + b_n) + sum_fc s^n . (W_n s^{n-1} + b_n)

with * a convolution, P a non-overlapping max pooling and b_n one bias per channel (added
after pooling, which is the same as before it: a constant commutes with the max). Where P is
differentiable, dPhi/ds^{n-1} routes s^n back through P^-1 (max unpooling with the indices of
the forward argmax) and the transposed convolution, so the dynamics

    s^n_{t+1} = rho(P(W_n * s^{n-1}_t) + b_n + W_{n+1}^T * P^-1(s^{n+1}_t))   (conv into conv)

are s_{t+1} = rho(dPhi/ds), as in the fully connected prototypical model, and the EP update is
(1/beta) (P^-1(s^n_b) * s^{n-1}_b - P^-1(s^n) * s^{n-1}): the gradient of the convolution's
weights for the input s^{n-1} and the output gradient P^-1(s^n) (torch.nn.grad.conv2d_weight).
The layers are updated synchronously from the previous state; with dt < 1 the map is damped as
the fully connected one. The pooling indices of layer 1 depend on x only and are computed once
per phase with its drive.

Speed (CPU, batch 20): the two convolutions of a step (W_2 * s^1 and its transpose) run at the
BLAS rate and are most of its cost; what is left was pooling and unpooling. Without autograd the
step pools in the channels-last layout (torch's max_pool2d is about ten times faster there, with
the same values and the same first-maximum indices, ties included), scatters s^{n+1} into a
zeroed buffer kept between steps instead of ``max_unpool2d`` (which allocates and fills a new one),
looks the weights up once per step and applies the activation in place. The convolutions keep
their inputs' layout (contiguous), so every state is bit for bit the one of the out-of-place
functional step, which runs under autograd (BPTT) and is what the tests hold the fast one to.
Measured against the step before it (experiments/bench_conv.py, 1 thread): about 1.1x per EP
batch. The convolutions are the floor: running them channels-last too gained about 5% more but
changes float32 results in the last bits; conv_transpose2d as a flipped-kernel conv2d or
torch.nn.grad.conv2d_input, FFT or unfold + matmul convolutions were slower.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosim.core.activations import Activation
from neurosim.core.models.base import LayeredModel, Parameters, State


class ConvolutionalModel(LayeredModel):
    def __init__(self, input_shape: list[int], conv: list, fc_sizes: list[int], activation: Activation,
                 generator: torch.Generator, dt: float = 1.0, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", init_gain: list[float] | None = None) -> None:
        nn.Module.__init__(self)
        self.activation = activation
        self.dt = float(dt)
        self.nudge_scale = self.dt
        self.input_shape = tuple(input_shape)
        self.kernels = [layer.kernel for layer in conv]
        self.paddings = [layer.padding for layer in conv]
        self.pools = [layer.pool for layer in conv]
        self.state_shapes: list[tuple[int, ...]] = []
        self.conv_out_sizes: list[tuple[int, int]] = []  # before pooling (for unpooling)
        c, h, w = self.input_shape
        for layer in conv:
            h, w = h + 2 * layer.padding - layer.kernel + 1, w + 2 * layer.padding - layer.kernel + 1
            self.conv_out_sizes.append((h, w))
            h, w, c = h // layer.pool, w // layer.pool, layer.channels
            self.state_shapes.append((c, h, w))
        flat = c * h * w
        self.state_shapes += [(n,) for n in fc_sizes]
        self.num_conv = len(conv)
        self.sizes = [math.prod(self.input_shape)] + [math.prod(s) for s in self.state_shapes]
        gains = init_gain or [1.0] * (len(conv) + len(fc_sizes))
        self.weights = Parameters()
        self.biases = Parameters()
        shapes = []
        c_in = self.input_shape[0]
        for layer in conv:
            shapes.append(((layer.channels, c_in, layer.kernel, layer.kernel), layer.channels, c_in * layer.kernel ** 2))
            c_in = layer.channels
        n_in = flat
        for n_out in fc_sizes:
            shapes.append(((n_out, n_in), n_out, n_in))
            n_in = n_out
        for (shape, n_bias, fan_in), gain in zip(shapes, gains):
            bound = gain / math.sqrt(fan_in)  # torch.nn.Conv2d / Linear default range
            wt = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            bs = (torch.rand(n_bias, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            self.weights.append(nn.Parameter(wt.to(device=device, dtype=dtype)))
            self.biases.append(nn.Parameter(bs.to(device=device, dtype=dtype)))

    def init_state(self, batch: int) -> State:
        w = self.weights[0]
        return [torch.zeros(batch, *shape, dtype=w.dtype, device=w.device) for shape in self.state_shapes]

    def output(self, state: State) -> Tensor:
        return state[-1].flatten(1)

    def _image(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.input_shape)

    def _bias(self, n: int) -> Tensor:
        b = self.biases[n]
        return b.view(1, -1, 1, 1) if n < self.num_conv else b

    def _conv_pool(self, n: int, below: Tensor, weight: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """P(W_n * s^{n-1}) and the argmax indices of the pooling (None without pooling).

        The values are those of ``F.max_pool2d`` (exactly: a maximum is one of its inputs) and
        the indices too (flat positions in the conv output plane, the first maximum of a window
        in row-major order on ties), but pooled in the channels-last layout, where torch's kernel
        is about ten times faster on small planes. Both come back channels-last strided.
        """
        z = F.conv2d(below, self.weights[n] if weight is None else weight, padding=self.paddings[n])
        if self.pools[n] == 1:
            return z, None
        return F.max_pool2d(z.contiguous(memory_format=torch.channels_last), self.pools[n], return_indices=True)

    def _unpool(self, n: int, above: Tensor, idx: Tensor | None) -> Tensor:
        """P^-1(s^n): ``F.max_unpool2d(above, idx, pool, output_size=conv_out_sizes[n])``, written
        into a zeroed buffer kept between steps (no autograd: the buffer is overwritten next step)."""
        if idx is None:
            return above
        batch, channels = above.shape[:2]
        height, width = self.conv_out_sizes[n]
        key = (n, batch, above.dtype, above.device)
        buffer = self._scratch.get(key)
        if buffer is None:
            buffer = self._scratch[key] = above.new_empty(batch, channels, height, width)
        buffer.zero_()
        buffer.view(batch, channels, -1).scatter_(2, idx.reshape(batch, channels, -1),
                                                 above.reshape(batch, channels, -1))
        return buffer

    @property
    def _scratch(self) -> dict:
        """Unpooling buffers, by layer, batch, dtype and device (not parameters, not state)."""
        scratch = self.__dict__.get("_unpool_buffers")
        if scratch is None:
            scratch = self.__dict__["_unpool_buffers"] = {}
        return scratch

    def prepare(self, x: Tensor) -> list[Tensor]:
        pooled, _ = self._conv_pool(0, self._image(x))
        first = (pooled + self._bias(0)).contiguous()  # contiguous as the states it is added to
        return [first] + [self._bias(n) for n in range(1, len(self.weights))]

    def step(self, state: State, drive: list[Tensor], force: Tensor | None = None) -> State:
        if torch.is_grad_enabled():
            return self._step_functional(state, drive, force)
        weights = list(self.weights)  # one ParameterList look-up per step, not one per use
        num_conv, last = self.num_conv, len(state) - 1
        act = self.activation
        gain, offset, dt = act.gain, act.offset, self.dt
        forward: list[Tensor] = [drive[0]]
        indices: list[Tensor | None] = [None]
        for n in range(1, len(state)):  # bottom-up drives from the previous state
            if n < num_conv:
                pooled, idx = self._conv_pool(n, state[n - 1], weights[n])
                forward.append(pooled.add_(drive[n]))  # a fresh tensor: in place is out of place
                indices.append(idx)
            else:
                forward.append(torch.addmm(drive[n], state[n - 1].flatten(1), weights[n].t()))
                indices.append(None)
        new: State = []
        for n in range(len(state)):
            pre = forward[n]
            if n < last:  # (forward + feedback), summed into the fresh feedback tensor
                k = n + 1
                above = state[k]
                if k >= num_conv:
                    feedback = (above.flatten(1) @ weights[k]).view(-1, *self.state_shapes[n])
                else:
                    feedback = F.conv_transpose2d(self._unpool(k, above, indices[k]), weights[k],
                                                  padding=self.paddings[k])
                pre = feedback.add_(pre)
            elif n == 0:
                pre = pre.clone()  # a one-layer model must not overwrite its drive
            elif pre.dim() == 4:
                pre = pre.contiguous()  # a conv output layer: its pooled values are channels-last
            if gain != 1.0:  # rho(gain * pre + offset), the out-of-place activation's two roundings
                pre.mul_(gain)
            if offset != 0.0:
                pre.add_(offset)
            s = act.apply_(pre)
            if dt != 1.0:
                s = torch.lerp(state[n], s, dt)
            if n == last and force is not None:
                s = s.add_(force.view_as(s))
            new.append(s)
        return new

    def _step_functional(self, state: State, drive: list[Tensor], force: Tensor | None) -> State:
        """The step out of place with torch's own pooling and unpooling (autograd: BPTT)."""
        last = len(state) - 1
        weights = list(self.weights)
        forward: list[Tensor] = [drive[0]]
        indices: list[Tensor | None] = [None]
        for n in range(1, len(state)):  # bottom-up drives from the previous state
            if n < self.num_conv:
                z = F.conv2d(state[n - 1], weights[n], padding=self.paddings[n])
                pooled, idx = F.max_pool2d(z, self.pools[n], return_indices=True)
                forward.append(pooled + drive[n])
                indices.append(idx)
            else:
                forward.append(torch.addmm(drive[n], state[n - 1].flatten(1), weights[n].t()))
                indices.append(None)
        new: State = []
        for n in range(len(state)):
            pre = forward[n]
            if n < last:
                pre = pre + self._feedback(n, state[n + 1], indices[n + 1], weights[n + 1])
            s = self.activation(pre)
            if self.dt != 1.0:
                s = torch.lerp(state[n], s, self.dt)
            if n == last and force is not None:
                s = s + force.view_as(s)
            new.append(s)
        return new

    def _feedback(self, n: int, above: Tensor, idx: Tensor | None, weight: Tensor) -> Tensor:
        """dPhi/ds^n from layer n+1: W^T s^{n+1} (fc) or W * P^-1(s^{n+1}) transposed (conv)."""
        k = n + 1
        if k >= self.num_conv:  # fully connected layer above: reshape to layer n's shape
            return (above.flatten(1) @ weight).view(-1, *self.state_shapes[n])
        unpooled = F.max_unpool2d(above, idx, self.pools[k], output_size=self.conv_out_sizes[k])
        return F.conv_transpose2d(unpooled, weight, padding=self.paddings[k])

    def phi(self, x: Tensor, state: State) -> Tensor:
        below = [self._image(x)] + state[:-1]
        total = x.new_zeros(())
        for n, (s_in, s_out) in enumerate(zip(below, state)):
            if n < self.num_conv:
                z = F.conv2d(s_in, self.weights[n], padding=self.paddings[n])
                pre = F.max_pool2d(z, self.pools[n]) + self._bias(n)
            else:
                pre = s_in.flatten(1) @ self.weights[n].t() + self.biases[n]
            total = total + (pre * s_out).sum()
        if self.dt == 1.0:
            return total
        return 0.5 * (1.0 - self.dt) * sum((s * s).sum() for s in state) + self.dt * total

    def dphi_dtheta(self, x: Tensor, state: State) -> list[Tensor]:
        return self._dphi_dtheta(x, state, self._image(x), None)

    def _dphi_dtheta(self, x: Tensor, state: State, image: Tensor, idx0: Tensor | None) -> list[Tensor]:
        """dPhi/dtheta; ``idx0``: layer 1's pooling indices when already known (they depend on x
        and W_1 only)."""
        batch = x.shape[0]
        below = [image] + state[:-1]
        weights = list(self.weights)
        grads: list[Tensor] = []
        for n, (s_in, s_out) in enumerate(zip(below, state)):
            if n < self.num_conv:
                idx = idx0 if n == 0 and idx0 is not None else self._conv_pool(n, s_in, weights[n])[1]
                routed = s_out if idx is None else F.max_unpool2d(
                    s_out, idx, self.pools[n], output_size=self.conv_out_sizes[n])
                gw = torch.nn.grad.conv2d_weight(s_in, weights[n].shape, routed, padding=self.paddings[n])
                grads += [gw / batch, s_out.sum((0, 2, 3)) / batch]
            else:
                grads += [s_out.t() @ s_in.flatten(1) / batch, s_out.mean(0)]
        return [g.mul_(self.dt) for g in grads] if self.dt != 1.0 else grads

    def dphi_dtheta_difference(self, x: Tensor, state_a: State, state_b: State,
                               first_layer: bool = True) -> list[Tensor]:
        """As the base class's, with layer 1's pooling indices (of x) computed once for both states."""
        image = self._image(x)
        idx0 = self._conv_pool(0, image)[1] if first_layer else None
        grads_a = self._dphi_dtheta(x, state_a, image, idx0)
        grads_b = self._dphi_dtheta(x, state_b, image, idx0)
        diff = [a - b for a, b in zip(grads_a, grads_b)]
        return diff if first_layer else diff[2:]
