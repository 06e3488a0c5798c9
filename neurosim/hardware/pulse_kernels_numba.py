"""The numba variant of ``neurosim.hardware.pulse_kernels``: its two counts as compiled loops.

Imported only by ``pulse_kernels`` on first use (this module imports numba). What the loops
compute, and why it is the distribution of the torch paths, is said there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def grow(index, n, up, size):
    """The three output arrays, twice as long, their first ``size`` entries kept."""
    bigger = max(16, 2 * index.shape[0])
    i2, n2, u2 = np.empty(bigger, np.int64), np.empty(bigger, n.dtype), np.empty(bigger, np.bool_)
    i2[:size], n2[:size], u2[:size] = index[:size], n[:size], up[:size]
    return i2, n2, u2


GAMMA = np.uint64(0x9E3779B97F4A7C15)
"""SplitMix64's increment: the k-th device's counter is seed + k * GAMMA."""
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_UNIT = 2.0 ** -53


@njit(inline="always")
def _mix(z):
    """SplitMix64's output function (Steele, Lea and Flood 2014): a 64-bit counter to 64 random bits."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def formed(signed, deterministic, seed):
    """Flat indices (sorted), counts and signs of the devices that get pulses, for the update
    ``signed`` (1-D, pulse units): floor(p + U) per device, U the 53-bit uniform of the device's
    counter (counter-based: no generator state, one multiply-and-shift chain per device)."""
    size = signed.shape[0]
    pulses = np.empty(size, np.float32)
    count = 0
    base = np.uint64(seed)
    for k in range(size):  # the counts (a loop without stores that depend on the data)
        p = abs(signed[k])
        if deterministic:
            m = np.floor(p)
        else:
            m = np.floor(p + (_mix(base + np.uint64(k) * GAMMA) >> _S11) * _UNIT)
        pulses[k] = m
        count += m > 0
    index = np.empty(count, np.int64)
    n = np.empty(count, signed.dtype)
    up = np.empty(count, np.bool_)
    c = 0
    for k in range(size):  # the devices that get them
        if pulses[k] > 0:
            index[c] = k
            n[c] = pulses[k]
            up[c] = signed[k] > 0
            c += 1
    return index, n, up


@njit(inline="always")
def _after(cumulative, lo, hi, value):
    """The first index in [lo, hi) whose cumulative sum exceeds value, hi - 1 at most (numpy's
    searchsorted on a scalar allocates its result: a third of a point's time)."""
    hi -= 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cumulative[mid] > value:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True)
def factored(lf, rt, cumulative, sums, rows, block, sign, deterministic, seed, rate):
    """Flat indices (sorted), counts and signs of the devices that get pulses, for the update
    sign * lf^T R (lf [B, out] scaled to pulse units, R given as rt = R^T [in, B]): cumulative
    [B, in] (row-wise cumulative |R|) and sums [B] (sum_j |R_bj|) place the points; ``rows``
    are the rows whose bound reaches half a pulse (one pulse, deterministic), formed in
    ``block`` [rows, in] (before ``sign``). The products at a point read a row of lt = lf^T and
    of rt: contiguous."""
    batch, out_size = lf.shape
    in_size = rt.shape[0]
    lt = np.ascontiguousarray(lf.T)
    limit = 1.0 if deterministic else 0.5
    total = 0.0
    joint = np.empty(batch * out_size, np.float64)
    if not deterministic:
        for b in range(batch):
            for i in range(out_size):
                total += abs(lf[b, i]) * sums[b]
                joint[b * out_size + i] = total
    np.random.seed(seed)
    capacity = 64
    index = np.empty(capacity, np.int64)
    n = np.empty(capacity, lf.dtype)
    up = np.empty(capacity, np.bool_)
    count = 0
    for r in range(rows.shape[0]):  # rows that may reach half a pulse: floor(p + U) where p does
        i = rows[r]
        for j in range(in_size):
            at = block[r, j]
            p = abs(at)
            if p >= limit:
                pulses = np.floor(p) if deterministic else np.floor(p + np.random.random())
                if pulses > 0:
                    if count == index.shape[0]:
                        index, n, up = grow(index, n, up, count)
                    index[count] = i * in_size + j
                    n[count] = pulses
                    up[count] = at * sign > 0
                    count += 1
    formed_count = count
    if not deterministic and total > 0:
        points = np.random.poisson(rate * total)
        keys = np.empty(points, np.int64)
        kept = 0
        for _ in range(points):
            k = _after(joint, 0, joint.shape[0], np.random.random() * total)
            b, i = k // out_size, k % out_size
            j = _after(cumulative[b], 0, in_size, np.random.random() * sums[b])
            at = 0.0
            bound = 0.0
            for c in range(batch):
                term = lt[i, c] * rt[j, c]
                at += term
                bound += abs(term)
            q = abs(at)
            u = np.random.random()
            if q > 0 and q < 0.5 and u * rate * bound < -math.log1p(-q):
                keys[kept] = (i * in_size + j) * 2 + (1 if at * sign > 0 else 0)
                kept += 1
        keys = np.unique(keys[:kept])  # a device drawn twice is one pulse (its points share one sign)
        for key in keys:
            if count == index.shape[0]:
                index, n, up = grow(index, n, up, count)
            index[count] = key // 2
            n[count] = 1.0
            up[count] = key % 2 == 1
            count += 1
    index, n, up = index[:count], n[:count], up[:count]
    if formed_count and count > formed_count:  # two sorted runs: merge by device
        order = np.argsort(index, kind="mergesort")
        index, n, up = index[order], n[order], up[order]
    return index, n, up
