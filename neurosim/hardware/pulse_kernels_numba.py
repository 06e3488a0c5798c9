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


@njit(cache=True, nogil=True)
def alias_tables(weights):
    """Walker's alias tables (Vose's construction) of each row of ``weights`` [B, n] >= 0:
    (prob, alias), from which ``_draw`` picks j with probability weights[b, j] / sum_j in O(1)
    (a binary search over a cumulative sum costs a cache miss per level: most of a point's time)."""
    rows, size = weights.shape
    prob = np.ones((rows, size), np.float64)
    alias = np.zeros((rows, size), np.int64)
    small = np.empty(size, np.int64)
    large = np.empty(size, np.int64)
    scaled = np.empty(size, np.float64)
    for b in range(rows):
        total = 0.0
        for j in range(size):
            total += weights[b, j]
        if total <= 0:
            continue  # a zero row is never drawn (its cells have no weight)
        ns = nl = 0
        for j in range(size):
            scaled[j] = weights[b, j] * size / total
            if scaled[j] < 1.0:
                small[ns] = j
                ns += 1
            else:
                large[nl] = j
                nl += 1
        while ns and nl:
            ns -= 1
            s = small[ns]
            g = large[nl - 1]
            prob[b, s] = scaled[s]
            alias[b, s] = g
            scaled[g] = (scaled[g] + scaled[s]) - 1.0
            if scaled[g] < 1.0:
                nl -= 1
                small[ns] = g
                ns += 1
        # what is left has probability 1 up to rounding (prob stays 1)
    return prob, alias


@njit(inline="always")
def _draw(prob, alias, cumulative, sums, b, size):
    """j with probability |R_bj| / sums[b]: from row b's alias table, or without one (``prob``
    empty: not built yet) by a search of the row's cumulative sum."""
    if prob.shape[0] == 0:
        value = np.random.random() * sums[b]
        lo, hi = 0, size - 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if cumulative[b, mid] > value:
                hi = mid
            else:
                lo = mid + 1
        return lo
    u = np.random.random() * size
    k = int(u)
    if k >= size:
        k = size - 1
    return k if u - k < prob[b, k] else alias[b, k]


@njit(cache=True, nogil=True)
def factored(left, factor, rt, sums, row_max, prob, alias, cumulative, deterministic, seed, rate, dense_density):
    """(ok, flat indices sorted, counts, signs) of the devices that get pulses, for the update
    factor * left^T R (left [B, out], R given as rt = R^T [in, B]); ok False (nothing counted):
    forming the update pays (more than ``dense_density`` candidates per device, or more than one
    row in eight that can reach half a pulse). sums [B] (sum_j |R_bj|) and row_max [B] (max_j
    |R_bj|), and the alias tables of |R|'s rows (or, before they are built, the rows'
    cumulative sums [B, in]) place the points.

    The rows whose bound sum_b |L_bi| max_j |R_bj| reaches half a pulse (one, deterministic) are
    formed and draw floor(p + U) where p does. The points, a Poisson process of rate
    RATE |L_bi| |R_bj| over (b, i, j), are walked over the cells (b, i) by exponential gaps (one
    per point; a cell without one costs a subtraction), each takes its j from row b, and is
    kept with -log(1 - p) / (RATE bound). Products at a point read a row of lt = L^T and of rt."""
    batch, out_size = left.shape
    in_size = rt.shape[0]
    scale = abs(factor)
    sign = 1.0 if factor >= 0 else -1.0
    limit = 1.0 if deterministic else 0.5
    lt = np.empty((out_size, batch), np.float64)
    for b in range(batch):
        for i in range(out_size):
            lt[i, b] = left[b, i] * scale
    big = np.empty(out_size, np.int64)
    big_count = 0
    for i in range(out_size):
        bound = 0.0
        for b in range(batch):
            bound += abs(lt[i, b]) * row_max[b]
        if bound >= limit:
            big[big_count] = i
            big_count += 1
    empty_i, empty_n, empty_u = np.empty(0, np.int64), np.empty(0, left.dtype), np.empty(0, np.bool_)
    if big_count * 8 > out_size:
        return False, empty_i, empty_n, empty_u
    if not deterministic:
        total = 0.0
        for b in range(batch):
            for i in range(out_size):
                total += abs(lt[i, b]) * sums[b]
        if rate * total > dense_density * out_size * in_size:
            return False, empty_i, empty_n, empty_u
    np.random.seed(seed)
    capacity = 64
    index = np.empty(capacity, np.int64)
    n = np.empty(capacity, left.dtype)
    up = np.empty(capacity, np.bool_)
    count = 0
    for r in range(big_count):  # rows that may reach half a pulse: floor(p + U) where p does
        i = big[r]
        for j in range(in_size):
            at = 0.0
            for b in range(batch):
                at += lt[i, b] * rt[j, b]
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
    if not deterministic:
        keys = np.empty(64, np.int64)
        kept = 0
        gap = np.random.exponential()
        for b in range(batch):
            weight = rate * sums[b]
            if weight <= 0:
                continue
            for i in range(out_size):
                gap -= weight * abs(lt[i, b])
                while gap <= 0:  # a point in cell (b, i)
                    gap += np.random.exponential()
                    j = _draw(prob, alias, cumulative, sums, b, in_size)
                    at = 0.0
                    bound = 0.0
                    for c in range(batch):
                        term = lt[i, c] * rt[j, c]
                        at += term
                        bound += abs(term)
                    q = abs(at)
                    # thinning to rate -log(1 - q); devices with q >= 1/2 were counted in their rows
                    if q > 0 and q < 0.5 and np.random.random() * rate * bound < -math.log1p(-q):
                        if kept == keys.shape[0]:
                            bigger = np.empty(2 * kept, np.int64)
                            bigger[:kept] = keys
                            keys = bigger
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
    return True, index, n, up


@njit(cache=True, nogil=True)
def gather(presented, state, per_device, stuck, index, n, up):
    """What a write reads before its response law: the devices at ``index`` less the stuck ones
    (``stuck`` empty: none), with their pulses and signs, the weights the array presents there
    (``before``), their true states (``old``: ``state`` is the hidden state under write noise, or
    ``presented``), their four parameters and the largest count."""
    keep = index.shape[0]
    if stuck.shape[0]:
        keep = 0
        for k in range(index.shape[0]):
            keep += not stuck[index[k]]
    idx = np.empty(keep, np.int64)
    pulses = np.empty(keep, n.dtype)
    sign = np.empty(keep, np.bool_)
    before = np.empty(keep, presented.dtype)
    old = np.empty(keep, presented.dtype)
    params = np.empty((4, keep), per_device.dtype)
    most = 0.0
    c = 0
    for k in range(index.shape[0]):
        d = index[k]
        if stuck.shape[0] and stuck[d]:
            continue
        idx[c] = d
        pulses[c] = n[k]
        sign[c] = up[k]
        before[c] = presented[d]
        old[c] = state[d]
        for q in range(4):
            params[q, c] = per_device[d, q]
        if n[k] > most or n[k] != n[k]:  # a NaN stays (nothing compares above it): the caller refuses it
            most = n[k]
        c += 1
    return idx, pulses, sign, before, old, params, most


@njit(cache=True, nogil=True)
def commit(base, change, c2c, c2c_std, params, index, n, up, state, presented, noise, noise_scale,
           pulses_up, pulses_down, before):
    """What a write does after its law: the new states (``base``, plus the law's ``change`` and
    the cycle-to-cycle noise ``c2c`` (normals) * c2c_std * mean step * sqrt(n) where given:
    empty arrays are not) clipped at each device's bounds and stored (``state``: the hidden
    state under write noise, which then presents itself plus ``noise`` times ``noise_scale``),
    the pulse counters, and the change of the presented weights (returned). ``params`` [4, k]:
    dw_up, dw_down, w_min, w_max."""
    out = np.empty(index.shape[0], presented.dtype)
    for k in range(index.shape[0]):
        d = index[k]
        v = np.float64(base[k])
        if change.shape[0]:
            v += change[k]
        if c2c.shape[0]:
            v += c2c[k] * c2c_std * (params[0, k] if up[k] else params[1, k]) * math.sqrt(n[k])
        v = min(max(v, params[2, k]), params[3, k])
        state[d] = v
        v = state[d]  # as stored (the state's dtype), as the torch path rounds it
        if noise.shape[0]:
            v = v + noise[k] * noise_scale
            presented[d] = v
            v = presented[d]
        out[k] = v - before[k]
        if up[k]:
            pulses_up[d] += np.int64(n[k])
        else:
            pulses_down[d] += np.int64(n[k])
    return out
