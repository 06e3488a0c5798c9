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
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosim.core.activations import Activation
from neurosim.core.models.base import LayeredModel, State


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
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
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

    def _conv_pool(self, n: int, below: Tensor) -> tuple[Tensor, Tensor]:
        """P(W_n * s^{n-1}) and the argmax indices of the pooling."""
        z = F.conv2d(below, self.weights[n], padding=self.paddings[n])
        return F.max_pool2d(z, self.pools[n], return_indices=True)

    def prepare(self, x: Tensor) -> list[Tensor]:
        pooled, _ = self._conv_pool(0, self._image(x))
        return [pooled + self._bias(0)] + [self._bias(n) for n in range(1, len(self.weights))]

    def step(self, state: State, drive: list[Tensor], force: Tensor | None = None) -> State:
        last = len(state) - 1
        forward: list[Tensor] = [drive[0]]
        indices: list[Tensor | None] = [None]
        for n in range(1, len(state)):  # bottom-up drives from the previous state
            if n < self.num_conv:
                pooled, idx = self._conv_pool(n, state[n - 1])
                forward.append(pooled + drive[n])
                indices.append(idx)
            else:
                forward.append(torch.addmm(drive[n], state[n - 1].flatten(1), self.weights[n].t()))
                indices.append(None)
        new: State = []
        for n in range(len(state)):
            pre = forward[n]
            if n < last:
                pre = pre + self._feedback(n, state[n + 1], indices[n + 1])
            s = self.activation(pre)
            if self.dt != 1.0:
                s = torch.lerp(state[n], s, self.dt)
            if n == last and force is not None:
                s = s + force.view_as(s)
            new.append(s)
        return new

    def _feedback(self, n: int, above: Tensor, idx: Tensor | None) -> Tensor:
        """dPhi/ds^n from layer n+1: W^T s^{n+1} (fc) or W * P^-1(s^{n+1}) transposed (conv)."""
        k = n + 1
        if k >= self.num_conv:  # fully connected layer above: reshape to layer n's shape
            return (above.flatten(1) @ self.weights[k]).view(-1, *self.state_shapes[n])
        unpooled = F.max_unpool2d(above, idx, self.pools[k], output_size=self.conv_out_sizes[k])
        return F.conv_transpose2d(unpooled, self.weights[k], padding=self.paddings[k])

    def phi(self, x: Tensor, state: State) -> Tensor:
        below = [self._image(x)] + state[:-1]
        total = x.new_zeros(())
        for n, (s_in, s_out) in enumerate(zip(below, state)):
            if n < self.num_conv:
                pre = self._conv_pool(n, s_in)[0] + self._bias(n)
            else:
                pre = s_in.flatten(1) @ self.weights[n].t() + self.biases[n]
            total = total + (pre * s_out).sum()
        if self.dt == 1.0:
            return total
        return 0.5 * (1.0 - self.dt) * sum((s * s).sum() for s in state) + self.dt * total

    def dphi_dtheta(self, x: Tensor, state: State) -> list[Tensor]:
        batch = x.shape[0]
        below = [self._image(x)] + state[:-1]
        grads: list[Tensor] = []
        for n, (s_in, s_out) in enumerate(zip(below, state)):
            if n < self.num_conv:
                _, idx = self._conv_pool(n, s_in)
                routed = F.max_unpool2d(s_out, idx, self.pools[n], output_size=self.conv_out_sizes[n])
                gw = torch.nn.grad.conv2d_weight(s_in, self.weights[n].shape, routed, padding=self.paddings[n])
                grads += [gw / batch, s_out.sum((0, 2, 3)) / batch]
            else:
                grads += [s_out.t() @ s_in.flatten(1) / batch, s_out.mean(0)]
        return [g.mul_(self.dt) for g in grads] if self.dt != 1.0 else grads
