"""The convolutional model's fast step (no autograd: channels-last pooling, unpooling into a kept
buffer, in-place activation) against the straightforward step it replaced, kept here as the
reference: the same states bit for bit, in float64 and float32, ties of the pooling included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neurosim.config import load_config
from neurosim.core.network import build_network

BATCH = 3


def reference_step(model, state, drive, force=None):
    """The step as it was written before the fast path (neurosim 853d831), verbatim in its math."""
    def conv_pool(n, below):
        z = F.conv2d(below, model.weights[n], padding=model.paddings[n])
        return F.max_pool2d(z, model.pools[n], return_indices=True)

    def feedback(n, above, idx):
        k = n + 1
        if k >= model.num_conv:
            return (above.flatten(1) @ model.weights[k]).view(-1, *model.state_shapes[n])
        unpooled = F.max_unpool2d(above, idx, model.pools[k], output_size=model.conv_out_sizes[k])
        return F.conv_transpose2d(unpooled, model.weights[k], padding=model.paddings[k])

    last = len(state) - 1
    forward, indices = [drive[0]], [None]
    for n in range(1, len(state)):
        if n < model.num_conv:
            pooled, idx = conv_pool(n, state[n - 1])
            forward.append(pooled + drive[n])
            indices.append(idx)
        else:
            forward.append(torch.addmm(drive[n], state[n - 1].flatten(1), model.weights[n].t()))
            indices.append(None)
    new = []
    for n in range(len(state)):
        pre = forward[n]
        if n < last:
            pre = pre + feedback(n, state[n + 1], indices[n + 1])
        s = model.activation(pre)
        if model.dt != 1.0:
            s = torch.lerp(state[n], s, model.dt)
        if n == last and force is not None:
            s = s + force.view_as(s)
        new.append(s)
    return new


def reference_prepare(model, x):
    z = F.conv2d(model._image(x), model.weights[0], padding=model.paddings[0])
    pooled, _ = F.max_pool2d(z, model.pools[0], return_indices=True)
    return [pooled + model._bias(0)] + [model._bias(n) for n in range(1, len(model.weights))]


def build(conv, layers=(3,), activation="hard_sigmoid", dt=1.0, input_shape=(2, 12, 12), loss="mse",
          dtype=torch.float64):
    raw = {"circuit": {"dynamics": "convolutional", "input_shape": list(input_shape), "activation": activation,
                       "dt": dt, "conv": conv, "layers": list(layers)},
           "loss": loss, "seed": 1, "estimator": {"lr": [0.1] * (len(conv) + len(layers))}}
    return build_network(load_config(raw), dtype=dtype).model


TWO_CONV = [{"channels": 4, "kernel": 3, "pool": 2}, {"channels": 5, "kernel": 3, "padding": 1, "pool": 2}]
CIRCUITS = {
    "two conv + fc": dict(conv=TWO_CONV),
    "conv output layer": dict(conv=TWO_CONV, layers=[3], loss="cross_entropy"),  # last state is a conv map
    "odd sizes, pool 3, no pool": dict(conv=[{"channels": 3, "kernel": 2, "pool": 3},
                                             {"channels": 4, "kernel": 2, "padding": 1, "pool": 1},
                                             {"channels": 2, "kernel": 2, "pool": 2}],
                                       input_shape=(1, 13, 13)),
    "one conv layer": dict(conv=[{"channels": 3, "kernel": 3, "pool": 2}], layers=[3], loss="cross_entropy"),
}


def inputs(model, seed, dtype, ties):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, model.sizes[0], generator=g, dtype=torch.float64)
    state = [torch.rand(BATCH, *shape, generator=g, dtype=torch.float64) for shape in model.state_shapes]
    if ties:  # few distinct values and zero blocks: pooling windows with several equal maxima
        x = (x * 3).floor() / 2
        x[:, : x.shape[1] // 2] = 0
        state = [(s * 2).floor() for s in state]
        state[0][0] = 0
    return x.to(dtype), [s.to(dtype) for s in state]


@pytest.mark.parametrize("name", list(CIRCUITS))
@pytest.mark.parametrize("activation, dt", [("hard_sigmoid", 1.0), ("sigmoid", 0.5), ("tanh", 1.0)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("ties", [False, True])
def test_fast_step_is_the_reference_step_bit_for_bit(name, activation, dt, dtype, ties):
    model = build(**CIRCUITS[name], activation=activation, dt=dt, dtype=dtype)
    x, state = inputs(model, 0, dtype, ties)
    with torch.no_grad():
        drive, ref_drive = model.prepare(x), reference_prepare(model, x)
        for a, b in zip(drive, ref_drive, strict=True):
            assert torch.equal(a, b)
        kept = [s.clone() for s in state]
        force = torch.rand(BATCH, model.sizes[-1], generator=torch.Generator().manual_seed(3), dtype=dtype) * 0.1
        fast, ref = state, state
        for t in range(12):  # a trajectory, nudged for the last steps
            f = force if t >= 8 else None
            fast, ref = model.step(fast, drive, f), reference_step(model, ref, ref_drive, f)
            for a, b in zip(fast, ref, strict=True):
                assert torch.equal(a, b), (t, float((a - b).abs().max()))
                assert a.is_contiguous()
    for s, k in zip(state, kept):  # the in-place step leaves its inputs alone
        assert torch.equal(s, k)
    for a, b in zip(drive, ref_drive):
        assert torch.equal(a, b)


def test_autograd_step_is_the_reference_and_differentiable():
    model = build(TWO_CONV, activation="sigmoid", dt=0.5)
    x, state = inputs(model, 1, torch.float64, ties=False)
    drive = model.prepare(x)
    state = [s.requires_grad_(True) for s in state]
    new = model.step(state, drive)
    with torch.no_grad():
        ref = reference_step(model, state, drive)
        fast = model.step(state, drive)
    for a, b, c in zip(new, ref, fast, strict=True):
        assert a.requires_grad and torch.equal(a.detach(), b) and torch.equal(b, c)
    grads = torch.autograd.grad(sum((s * s).sum() for s in new), state + list(model.weights))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("pool, size", [(2, 8), (2, 9), (3, 10), (3, 9)])
def test_pooling_matches_max_pool2d_with_ties(dtype, pool, size):
    model = build([{"channels": 6, "kernel": 3, "pool": pool}], layers=[3], input_shape=(6, size + 2, size + 2),
                  dtype=dtype)
    g = torch.Generator().manual_seed(pool * size)
    for trial in range(6):
        below = torch.rand(4, 6, size + 2, size + 2, generator=g, dtype=torch.float64).to(dtype)
        if trial % 2:  # integer inputs and weights: many exactly equal window entries
            below = (below * 2).floor()
            below[:, :, : size // 2] = 0
        weight = model.weights[0] if trial % 2 == 0 else (model.weights[0] * 4).round()
        values, idx = model._conv_pool(0, below, weight)
        z = F.conv2d(below, weight)
        want_values, want_idx = F.max_pool2d(z, pool, return_indices=True)
        assert torch.equal(values, want_values) and torch.equal(idx, want_idx)
        if trial % 2:
            assert (z.unfold(2, pool, pool).unfold(3, pool, pool).flatten(-2) == want_values[..., None]).sum(-1).max() > 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_unpooling_into_the_kept_buffer_matches_max_unpool2d(dtype):
    model = build(TWO_CONV, dtype=dtype)
    g = torch.Generator().manual_seed(5)
    for trial in range(4):  # the buffer is reused: nothing of the previous call may remain
        below = torch.rand(BATCH, 4, 5, 5, generator=g, dtype=torch.float64).to(dtype)
        if trial % 2:
            below = (below * 2).floor()
        _, idx = model._conv_pool(1, below)
        above = torch.rand(BATCH, 5, 2, 2, generator=g, dtype=torch.float64).to(dtype) - 0.5
        got = model._unpool(1, above, idx)
        want = F.max_unpool2d(above, idx, 2, output_size=model.conv_out_sizes[1])
        assert torch.equal(got, want)


def test_ep_update_on_the_fast_path_is_the_difference_of_dphi_dtheta():
    model = build(TWO_CONV, activation="sigmoid", dt=0.5)
    x, a = inputs(model, 2, torch.float64, ties=True)
    _, b = inputs(model, 3, torch.float64, ties=False)
    with torch.no_grad():
        diff = model.dphi_dtheta_difference(x, a, b)
        want = [p - q for p, q in zip(model.dphi_dtheta(x, a), model.dphi_dtheta(x, b))]
    for got, w in zip(diff, want, strict=True):
        assert torch.equal(got, w)


def test_mnist_conv_fast_step_float32_bit_for_bit():
    """The paper's circuit (1x28x28, 32 and 64 channels, hard sigmoid) at the training precision."""
    net = build_network(load_config("mnist_conv_ep"), dtype=torch.float32)
    model = net.model
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 784, generator=g) > 0.7).float()  # zero background: tied windows in layer 1
    with torch.no_grad():
        drive, ref_drive = model.prepare(x), reference_prepare(model, x)
        fast = ref = model.init_state(4)
        for _ in range(8):
            fast, ref = model.step(fast, drive), reference_step(model, ref, ref_drive)
        for a, b in zip(fast, ref, strict=True):
            assert torch.equal(a, b)
