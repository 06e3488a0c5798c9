"""A whole relaxation phase of the fully connected model in one compiled call (``compute.fused``).

At the papers' batch of 20 a step of the 784-512-10 network is two small matrix products and
a few elementwise passes; torch spends most of a step's ~30 us dispatching them (two ``addmm``
of ~6 and ~9 us for 100k multiply-adds each, ``sigmoid_`` and ``lerp`` per layer), not
computing. Here the T (or K) steps of a phase run inside one numba loop: each layer's
pre-activation, nonlinearity, damping and, in the nudged phase, the mean-squared force, in one
pass over a sample's neurons, with the settling check of ``estimator.tol`` computed on the way.

Same model, same arithmetic up to float32 rounding: the products sum in another order, and the
sigmoid's exp is a polynomial (Cephes' expf, within 2 ulp of torch's, vectorised by the
compiler: the libm call would not be). Tests hold every phase against the eager step.

Used where it computes exactly what ``PrototypicalModel.step`` would (the model says so through
``fused_operands``): float32 on the CPU, no autograd (BPTT's unrolled steps stay in torch), no
read side (read noise, DAC, ADC), the mean-squared cost's force, one tolerance for the whole
batch. Anything else runs the eager step, as does ``compute.fused: false``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

ACTIVATIONS = {"sigmoid": 0, "hard_sigmoid": 1, "tanh": 2}
"""The nonlinearities compiled here, by code; the pre-activation reaching them is already
scaled and shifted (``Activation.apply_``)."""

MAX_MATRIX = 32_768
"""The largest W_2..W_N (elements) the compiled loop takes. Its products are plain loops, one
sample at a time: they beat torch's dispatch on thin matrices (P-1h's 10 x 512 W_2: 1.5x the
whole training step at batch 20), but not a library product on a square one (P-2h's 512 x 512
ran at 0.6x the eager step), which stays in torch."""

CONTINUAL_BATCH = 32
"""The largest batch whose C-EP nudged phase runs compiled (``continual_nudged``). Its drive
follows W_1 through the B x B Gram matrix, B^2 n_1 multiply-adds a step in plain loops: at batch
20 the compiled phase ran 2x the torch steps, at batch 128 half their speed (a library product
wins there)."""

PARALLEL_BATCH = 64
"""From this batch on, with more than one torch thread, a step's samples are shared among that
many threads (numba's ``prange``); below it one thread is faster (a parallel region's start
costs more than a small batch's step)."""

_kernels = None


def kernels() -> tuple:
    """(serial relaxation, threaded relaxation, C-EP nudged phase), compiled on first use."""
    global _kernels
    if _kernels is None:
        _kernels = _compile()
    return _kernels


def pack(drive: list[Tensor], state: list[Tensor]) -> tuple[np.ndarray, tuple[Tensor, Tensor], Tensor]:
    """Layer offsets, the state as one [batch, neurons] buffer (and a spare one to step into),
    and the bias drives of layers 2..N at their layers' offsets (zeros over layer 1, whose drive
    is per sample)."""
    sizes = [s.shape[1] for s in state]
    offsets = np.cumsum([0] + sizes).astype(np.int64)
    dtype = state[0].dtype
    buffers = torch.cat(state, 1), torch.empty(state[0].shape[0], int(offsets[-1]), dtype=dtype)
    packed = torch.cat([torch.zeros(sizes[0], dtype=dtype), *(d.reshape(-1) for d in drive[1:])])
    return offsets, buffers, packed


def relax(operands: dict, drive: list[Tensor], state: list[Tensor], steps: int, tol: float | None,
          every: int, target: Tensor | None, scale: float) -> tuple[list[Tensor], int]:
    """Run up to ``steps`` steps from ``state``; returns the new state and the steps run.

    ``operands`` is the model's ``fused_operands()``; with a ``target`` the output takes the
    force ``scale * (target - s_out)`` after each step, as ``relax_nudged`` adds it."""
    serial, threaded, _ = kernels()
    threads = torch.get_num_threads()
    kernel = serial
    if threads > 1 and state[0].shape[0] >= PARALLEL_BATCH:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        kernel = threaded
    offsets, buffers, packed = pack(drive, state)
    out = torch.empty(state[0].shape[0], state[-1].shape[1], dtype=state[0].dtype) if target is None \
        else target.contiguous()
    used, last = kernel(buffers[0].numpy(), buffers[1].numpy(), drive[0].contiguous().numpy(), packed.numpy(),
                        tuple(w.numpy() for w in operands["forward"]),
                        tuple(f.numpy() for f in operands["feedback"]), offsets,
                        np.float32(operands["gain"]), np.float32(operands["dt"]), operands["activation"], steps,
                        -1.0 if tol is None else float(tol), every, out.numpy(),
                        np.float32(scale if target is not None else 0.0))
    final = buffers[last]
    return [final[:, int(offsets[n]):int(offsets[n + 1])].clone() for n in range(len(state))], int(used)


def continual_nudged(operands: dict, drive: list[Tensor], state: list[Tensor], steps: int, target: Tensor,
                     force_scale: float, gram: Tensor, drive_step: float, rates: list[float],
                     biases: list[Tensor]) -> Tensor:
    """C-EP's nudged phase on ideal synapses, rank-B path (``ContinualEP``), compiled: at each of
    ``steps`` steps the nudged step, then W_n, b_n (n >= 2) move by ``rates[n]`` times their
    local update dPhi/dW_n(s_{t+1}) - dPhi/dW_n(s_t) (before the batch mean: the rate carries
    dt / (beta s B)), in place, and the input drive follows W_1's change through the batch's
    Gram matrix (``drive_step``). Returns the summed du of W_1's update, which the caller
    applies once. Weights and biases are the model's own tensors, edited in place."""
    offsets, buffers, packed = pack(drive, state)
    first = drive[0].clone(memory_format=torch.contiguous_format)
    du_sum = torch.zeros(state[0].shape[0], state[0].shape[1], dtype=state[0].dtype)
    kernels()[2](buffers[0].numpy(), buffers[1].numpy(), first.numpy(), packed.numpy(),
                 tuple(b.numpy() for b in biases), tuple(w.numpy() for w in operands["forward"]),
                 tuple(f.numpy() for f in operands["feedback"]), offsets, np.float32(operands["gain"]),
                 np.float32(operands["dt"]), operands["activation"], steps, target.contiguous().numpy(),
                 np.float32(force_scale), gram.contiguous().numpy(), np.float32(drive_step),
                 np.asarray(rates, dtype=np.float32), du_sum.numpy())
    return du_sum


def _compile():
    """The kernel, compiled on first use (numba is imported only then; cached on disk)."""
    import os

    import numba
    from numba import njit, prange, types

    if "NUMBA_THREADING_LAYER" not in os.environ:  # share torch's OpenMP runtime: with numba's own
        # thread pool beside it, torch's spinning OpenMP workers took the second core (a parallel
        # phase at batch 128 on 2 threads ran at half the single-thread speed). Set in the
        # environment, not numba.config: numba reloads its config from there when it compiles.
        try:
            from numba.np.ufunc import omppool  # noqa: F401

            os.environ["NUMBA_THREADING_LAYER"] = "omp"
            numba.config.reload_config()
        except ImportError:  # pragma: no cover - numba built without OpenMP: its default pool
            pass
    from numba.extending import intrinsic
    from llvmlite import ir

    @intrinsic
    def as_float32(typingctx, bits):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.FloatType())
        return types.float32(types.int32), codegen

    fast = dict(fastmath=True, error_model="numpy", cache=True)

    @njit(inline="always", **fast)
    def exp(x):  # Cephes expf: 2^k p(r), r = x - k ln 2; the 2^k written into the exponent bits
        x = min(max(x, np.float32(-87.0)), np.float32(88.0))
        k = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
        r = x - k * np.float32(0.693359375) - k * np.float32(-2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        return (p * r * r + r + np.float32(1.0)) * as_float32((np.int32(k) + np.int32(127)) << np.int32(23))

    @njit(inline="always", **fast)
    def activate(a, code):
        if code == 0:
            return np.float32(1.0) / (np.float32(1.0) + exp(-a))
        if code == 1:
            return min(max(a, np.float32(0.0)), np.float32(1.0))
        return np.float32(2.0) / (np.float32(1.0) + exp(np.float32(-2.0) * a)) - np.float32(1.0)

    @njit(**fast)
    def layer(old, new, lo, hi, w, below, f, above, bias, gain, dt, code):
        """One layer of one sample: old and new are that sample's rows (1-D, contiguous). Every
        loop indexes a slice from 0, so that the compiler sees non-negative indices (no
        negative-index wraparound) and vectorises it."""
        out, start, drive = new[lo:hi], old[lo:hi], bias[lo:hi]
        width = hi - lo
        if w is not None:  # forward drive from the layer below: one dot product per neuron
            source = old[below:below + w.shape[1]]
            for j in range(width):
                row = w[j]
                acc = np.float32(0.0)
                for i in range(row.shape[0]):
                    acc += source[i] * row[i]
                out[j] = drive[j] + gain * acc
        if f is not None:  # feedback from the layer above: a sum of its matrix's rows
            source = old[above:above + f.shape[0]]
            for k in range(f.shape[0]):
                v = gain * source[k]
                row = f[k]
                for j in range(width):
                    out[j] += v * row[j]
        for j in range(width):
            s = activate(out[j], code)
            out[j] = start[j] + dt * (s - start[j]) if dt != np.float32(1.0) else s

    @njit(**fast)
    def sample_step(old, new, drive, packed, forward, feedback, offsets, gain, dt, code, target, scale):
        """One step of one sample (its rows of the state buffers), the nudge included when scale != 0."""
        layers = offsets.shape[0] - 1
        total, last_lo = offsets[layers], offsets[layers - 1]
        first = new[:offsets[1]]
        for j in range(drive.shape[0]):
            first[j] = drive[j]
        layer(old, new, 0, offsets[1], None, 0, feedback[0], offsets[1], packed, gain, dt, code)
        for n in range(1, layers - 1):
            layer(old, new, offsets[n], offsets[n + 1], forward[n - 1], offsets[n - 1], feedback[n],
                  offsets[n + 1], packed, gain, dt, code)
        layer(old, new, last_lo, total, forward[layers - 2], offsets[layers - 2], None, 0, packed, gain, dt, code)
        if scale != np.float32(0.0):  # the nudge, from the output before the step (cost.force)
            out, start = new[last_lo:total], old[last_lo:total]
            for j in range(target.shape[0]):
                out[j] += scale * (target[j] - start[j])

    def kernel(current, spare, drive0, biases, forward, feedback, offsets, gain, dt, code, steps, tol, every,
               target, scale):
        batch = current.shape[0]
        used, which = 0, 0  # which: the buffer holding the current state (0: current, 1: spare)
        for _ in range(steps):
            for b in prange(batch):  # samples are independent within a step
                old = current[b] if which == 0 else spare[b]
                new = spare[b] if which == 0 else current[b]
                sample_step(old, new, drive0[b], biases, forward, feedback, offsets, gain, dt, code, target[b], scale)
            used += 1
            which = 1 - which
            if tol >= 0.0 and used % every == 0:
                moved = np.float32(0.0)
                for b in range(batch):
                    x, y = current[b], spare[b]
                    for j in range(x.shape[0]):
                        moved = max(moved, abs(x[j] - y[j]))
                if moved < tol:
                    break
        return used, which

    @njit(**fast)
    def continual(current, spare, drive0, packed, biases, forward, feedback, offsets, gain, dt, code, steps,
                  target, scale, gram, drive_step, rates, du_sum):
        batch, layers, width0 = current.shape[0], offsets.shape[0] - 1, offsets[1]
        du = np.empty((batch, width0), dtype=current.dtype)
        which = 0
        for _ in range(steps):
            old_all, new_all = (current, spare) if which == 0 else (spare, current)
            for b in range(batch):  # the nudged step
                sample_step(old_all[b], new_all[b], drive0[b], packed, forward, feedback, offsets, gain, dt, code,
                            target[b], scale)
            for n in range(1, layers):  # W_{n+1}, b_{n+1}: the local update with the weights of step t
                w, bias, rate = forward[n - 1], biases[n - 1], rates[n]
                lo, hi, below = offsets[n], offsets[n + 1], offsets[n - 1]
                for b in range(batch):
                    post_new, post_old = new_all[b, lo:hi], old_all[b, lo:hi]
                    pre_new, pre_old = new_all[b, below:lo], old_all[b, below:lo]
                    for j in range(hi - lo):
                        a, c = rate * post_new[j], rate * post_old[j]
                        row = w[j]
                        for i in range(row.shape[0]):
                            row[i] += a * pre_new[i] - c * pre_old[i]
                        change = rate * (post_new[j] - post_old[j])
                        bias[j] += change
                        packed[lo + j] += gain * change
            for b in range(batch):  # du = dt (s^1_{t+1} - s^1_t): W_1's local signal
                row, post_new, post_old = du[b], new_all[b, :width0], old_all[b, :width0]
                total_row = du_sum[b]
                for j in range(width0):
                    row[j] = dt * (post_new[j] - post_old[j])
                    total_row[j] += row[j]
            for b in range(batch):  # W_1 x moves by drive_step (x x^T / B + mean) du
                target_row = drive0[b]
                for k in range(batch):
                    coefficient = drive_step * (gram[b, k] + np.float32(1.0) / batch)
                    source = du[k]
                    for j in range(width0):
                        target_row[j] += coefficient * source[j]
            which = 1 - which

    # the parallel variant is not cached: numba's cache keys an entry by function, signature and
    # machine, not by its flags, so both variants of one function would share (and swap) an entry
    threaded = {**fast, "cache": False}
    return njit(**fast)(kernel), njit(parallel=True, **threaded)(kernel), continual


def usable(state: list[Tensor], operands: dict) -> bool:
    """Whether a phase from this state runs compiled: float32 CPU tensors, no autograd, thin
    matrices (``MAX_MATRIX``)."""
    if torch.is_grad_enabled() or len(state) < 2:
        return False
    if any(w.numel() > MAX_MATRIX for w in operands["forward"]):
        return False
    return not any(s.dtype != torch.float32 or s.device.type != "cpu" or s.requires_grad for s in state)


