"""The numba variant of ``neurosim.hardware.pulse_kernels``: its two counts as compiled loops.

Imported only by ``pulse_kernels`` on first use (this module imports numba). What the loops
compute, and why it is the distribution of the torch paths, is said there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


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
def _uniform(stream, k):
    """The k-th 53-bit uniform of a counter-based stream (SplitMix64's output of stream + k GAMMA):
    a few integer operations, no generator state (numba's Mersenne Twister cost a point a third
    of its time)."""
    return (_mix(stream + np.uint64(k) * GAMMA) >> _S11) * _UNIT


@njit(inline="always")
def _draw(prob, alias, cumulative, sums, b, size, u):
    """j with probability |R_bj| / sums[b], from the uniform ``u``: from row b's alias table, or
    without one (``prob`` empty: not built yet) by a search of the row's cumulative sum."""
    if prob.shape[0] == 0:
        value = u * sums[b]
        lo, hi = 0, size - 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if cumulative[b, mid] > value:
                hi = mid
            else:
                lo = mid + 1
        return lo
    u = u * size
    k = int(u)
    if k >= size:
        k = size - 1
    return k if u - k < prob[b, k] else alias[b, k]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _product_and_bound(a, b):
    """sum_c a_c b_c and sum_c |a_c b_c|, summed in any order (vectorised: a point's two sums of
    B terms were a chain of 2B dependent additions)."""
    at = 0.0
    bound = 0.0
    for c in range(a.shape[0]):
        term = a[c] * b[c]
        at += term
        bound += abs(term)
    return at, bound


@njit(cache=True, nogil=True)
def factored(left, factor, right, rt, sums, row_max, prob, alias, cumulative, deterministic, seed, rate,
             dense_density, row_cost):
    """(ok, flat indices sorted, counts, signs) of the devices that get pulses, for the update
    factor * left^T R (left [B, out], R [B, in] and its transpose rt [in, B]); ok False (nothing
    counted) where forming the whole update pays: its expected work, in candidates (the points,
    plus ``row_cost`` per device of the rows formed below), above ``dense_density`` per device,
    or more than one row in eight formed.
    sums [B] (sum_j |R_bj|) and row_max [B] (max_j |R_bj|), and the alias tables of |R|'s rows
    (or, before they are built, the rows' cumulative sums [B, in]) place the points.

    The rows whose bound sum_b |L_bi| max_j |R_bj| reaches half a pulse (one, deterministic) are
    formed (a row of R added per b: a loop over j that vectorises) and every device there draws
    floor(p + U) (floor(p)). Every other device has p < 1/2: the points, a Poisson process of
    rate RATE |L_bi| |R_bj| over those rows' (b, i, j), are drawn as their number (Poisson) and
    their places along the cells (b, i) (sorted uniforms, from exponential spacings), so that
    the walk over the cells stores into arrays of known size and stays a tight loop; each point
    takes its j from row b and is kept with -log(1 - p) / (RATE bound). Products at a point read
    a row of lt = L^T and of rt."""
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
    formed_row = np.zeros(out_size, np.bool_)
    big_count = 0
    for i in range(out_size):
        bound = 0.0
        for b in range(batch):
            bound += abs(lt[i, b]) * row_max[b]
        if bound >= limit:
            big[big_count] = i
            formed_row[i] = True
            big_count += 1
    empty_i, empty_n, empty_u = np.empty(0, np.int64), np.empty(0, left.dtype), np.empty(0, np.bool_)
    if big_count * 8 > out_size:  # as the torch path: most of the update formed row by row
        return False, empty_i, empty_n, empty_u
    cell = np.zeros((batch, out_size), np.float64)  # the points' rate per cell (b, i): 0 in formed rows
    total = 0.0  # summed in the walk's order (so that the walk ends on it exactly)
    if not deterministic:
        for b in range(batch):
            weight = rate * sums[b]
            if weight > 0:
                for i in range(out_size):
                    if not formed_row[i]:
                        cell[b, i] = weight * abs(lt[i, b])
                        total += cell[b, i]
    if total + row_cost * big_count * in_size > dense_density * out_size * in_size:
        return False, empty_i, empty_n, empty_u
    np.random.seed(seed & 0xFFFFFFFF)  # numba's generator (32-bit seeds): the points' number only
    points = np.random.poisson(total) if total > 0 else 0
    base = np.uint64(seed)  # the uniforms: four counter-based streams
    row_stream, place_stream = _mix(base + GAMMA), _mix(base + np.uint64(2) * GAMMA)
    draw_stream, thin_stream = _mix(base + np.uint64(3) * GAMMA), _mix(base + np.uint64(4) * GAMMA)
    capacity = big_count * in_size + points  # every output fits: no array grows inside a loop
    index = np.empty(capacity, np.int64)
    n = np.empty(capacity, left.dtype)
    up = np.empty(capacity, np.bool_)
    count = 0
    at_row = np.empty(in_size, np.float64)
    for r in range(big_count):  # the formed rows: floor(p + U) at every device
        i = big[r]
        at_row[:] = 0.0
        for b in range(batch):  # in b's order, as at a point: the same sums
            coefficient = lt[i, b]
            for j in range(in_size):
                at_row[j] += coefficient * right[b, j]
        for j in range(in_size):
            at = at_row[j]
            p = abs(at)
            pulses = np.floor(p) if deterministic else np.floor(p + _uniform(row_stream, i * in_size + j))
            if pulses > 0:
                index[count] = i * in_size + j
                n[count] = pulses
                up[count] = at * sign > 0
                count += 1
    formed_count = count
    if points:
        place = np.empty(points, np.float64)  # the points' places in [0, total), sorted
        run = 0.0
        for k in range(points):
            run -= math.log1p(-_uniform(place_stream, k))  # exponential spacings
            place[k] = run
        stretch = total / (run - math.log1p(-_uniform(place_stream, points)))
        cells = np.empty(points, np.int64)  # b * out_size + i of each point
        k = 0
        reached = 0.0
        last = 0  # the last cell with weight
        for b in range(batch):
            for i in range(out_size):
                if cell[b, i] > 0:
                    reached += cell[b, i]
                    last = b * out_size + i
                    while k < points and place[k] * stretch < reached:
                        cells[k] = last
                        k += 1
        while k < points:  # rounding put a place at the very end: it belongs to the last cell
            cells[k] = last
            k += 1
        keys = np.empty(points, np.int64)
        kept = 0
        for k in range(points):
            b, i = cells[k] // out_size, cells[k] % out_size
            j = _draw(prob, alias, cumulative, sums, b, in_size, _uniform(draw_stream, k))
            at, bound = _product_and_bound(lt[i], rt[j])
            q = abs(at)
            # thinning to rate -log(1 - q) (>= q: below q it accepts without the logarithm); q <
            # 1/2 here (its row's bound is)
            u = _uniform(thin_stream, k) * rate * bound
            if q > 0 and (u < q or u < -math.log1p(-q)):
                keys[kept] = (i * in_size + j) * 2 + (1 if at * sign > 0 else 0)
                kept += 1
        keys = np.unique(keys[:kept])  # a device drawn twice is one pulse (its points share one sign)
        for key in keys:
            index[count] = key // 2
            n[count] = 1.0
            up[count] = key % 2 == 1
            count += 1
    if formed_count and count > formed_count:  # two sorted runs (distinct devices): merged in one pass
        return (True, *_merge(index, n, up, formed_count, count))
    return True, index[:count], n[:count], up[:count]


@njit(cache=True, nogil=True)
def _merge(index, n, up, split, count):
    """Entries [0, split) and [split, count) of (index, n, up), each sorted by index, as one
    sorted run (a sort of the whole was most of a write with formed rows)."""
    out_i, out_n, out_u = np.empty(count, np.int64), np.empty(count, n.dtype), np.empty(count, np.bool_)
    a, b = 0, split
    for k in range(count):
        if b >= count or (a < split and index[a] < index[b]):
            out_i[k], out_n[k], out_u[k] = index[a], n[a], up[a]
            a += 1
        else:
            out_i[k], out_n[k], out_u[k] = index[b], n[b], up[b]
            b += 1
    return out_i, out_n, out_u


@njit(inline="always")
def _movable_and_most(stuck, index, n):
    """How many devices at ``index`` are not ``stuck`` (empty: none), and their largest count
    (NaN if any is: nothing compares above it, so it stays and the caller refuses the write)."""
    keep = 0
    most = 0.0
    for k in range(index.shape[0]):
        if stuck.shape[0] and stuck[index[k]]:
            continue
        keep += 1
        if n[k] > most or n[k] != n[k]:
            most = n[k]
    return keep, most


@njit(cache=True, nogil=True)
def gather(presented, state, per_device, stuck, index, n, up):
    """What a write reads before its response law: the devices at ``index`` less the stuck ones
    (``stuck`` empty: none), with their pulses and signs, the weights the array presents there
    (``before``), their true states (``old``: ``state`` is the hidden state under write noise, or
    ``presented``), their four parameters and the largest count."""
    keep, most = _movable_and_most(stuck, index, n)
    idx = np.empty(keep, np.int64)
    pulses = np.empty(keep, n.dtype)
    sign = np.empty(keep, np.bool_)
    before = np.empty(keep, presented.dtype)
    old = np.empty(keep, presented.dtype)
    params = np.empty((4, keep), per_device.dtype)
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
        c += 1
    return idx, pulses, sign, before, old, params, most


@njit(cache=True, nogil=True)
def commit(base, params, index, n, up, state, presented, noise, noise_scale, pulses_up, pulses_down, before):
    """What a write does after a torch law: the new states (``base``) clipped at each device's
    bounds and stored (``state``: the hidden state under write noise, which then presents itself
    plus ``noise`` times ``noise_scale``), the pulse counters, and the change of the presented
    weights (returned). ``params`` [4, k]: dw_up, dw_down, w_min, w_max."""
    out = np.empty(index.shape[0], presented.dtype)
    for k in range(index.shape[0]):
        d = index[k]
        v = min(max(np.float64(base[k]), params[2, k]), params[3, k])
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


@njit(cache=True, nogil=True)
def movable(stuck, index):
    """How many of the devices at ``index`` are not ``stuck``."""
    count = 0
    for k in range(index.shape[0]):
        count += not stuck[index[k]]
    return count


@njit(cache=True, nogil=True)
def pair_split(index, n, up):
    """A differential pair's count split by sign: (G+ devices, their pulses, G- devices, theirs,
    and a True per device of the larger half: each half is moved by potentiation only)."""
    count_up = 0
    for k in range(index.shape[0]):
        count_up += up[k]
    plus_i, plus_n = np.empty(count_up, np.int64), np.empty(count_up, n.dtype)
    minus_i, minus_n = np.empty(index.shape[0] - count_up, np.int64), np.empty(index.shape[0] - count_up, n.dtype)
    a = b = 0
    for k in range(index.shape[0]):
        if up[k]:
            plus_i[a], plus_n[a] = index[k], n[k]
            a += 1
        else:
            minus_i[b], minus_n[b] = index[k], n[k]
            b += 1
    return plus_i, plus_n, minus_i, minus_n, np.ones(max(a, b), np.bool_)


@njit(cache=True, nogil=True)
def pair_finish(index, previous, weight, g_plus, g_minus, hidden_plus, hidden_minus, refresh, limit_plus,
                limit_minus, plus_down, minus_down, step):
    """After both halves of a differential array are programmed at ``index`` (sorted): refresh
    the pairs there and at ``previous`` (sorted: the pairs an earlier refresh left above) with a
    device above its limit (``refresh`` False: none; a pair resets and its weight, from the true
    states ``hidden_*``, is written back onto one device, counted as ceil(|w| / step) + 1
    pulses on each device's 'down' counter), then write w = G+ - G- into ``weight`` where a pair
    was programmed or refreshed. Returns (those pairs, sorted; the change of their w; the pairs
    still above after their refresh; refreshes; refresh pulses). ``step`` holds the nominal step
    in the weights' dtype, as the torch path divides."""
    size = index.shape[0] + previous.shape[0]
    touched = np.empty(size, np.int64)
    out = np.empty(size, weight.dtype)
    above = np.empty(size, np.int64)
    count = kept = refreshes = pulses = 0
    unit = step[0]
    a = b = 0
    while a < index.shape[0] or b < previous.shape[0]:  # the union of both, in order
        if b >= previous.shape[0] or (a < index.shape[0] and index[a] < previous[b]):
            d, programmed = index[a], True
            a += 1
        elif a >= index.shape[0] or previous[b] < index[a]:
            d, programmed = previous[b], False
            b += 1
        else:
            d, programmed = index[a], True
            a += 1
            b += 1
        hit = refresh and (g_plus[d] > limit_plus[d] or g_minus[d] > limit_minus[d])
        if hit:
            w = hidden_plus[d] - hidden_minus[d]
            zero = w - w  # in the weights' dtype, as the torch path's clamp
            up_value = w if w > zero else zero
            down_value = -w if w < zero else zero
            g_plus[d] = up_value
            hidden_plus[d] = up_value
            g_minus[d] = down_value
            hidden_minus[d] = down_value
            plus_down[d] += np.int64(np.ceil(up_value / unit)) + 1
            minus_down[d] += np.int64(np.ceil(down_value / unit)) + 1
            pulses += np.int64(np.ceil(abs(w) / unit)) + 2
            refreshes += 1
            if g_plus[d] > limit_plus[d] or g_minus[d] > limit_minus[d]:
                above[kept] = d
                kept += 1
        if programmed or hit:
            before = weight[d]
            after = g_plus[d] - g_minus[d]
            weight[d] = after
            touched[count] = d
            out[count] = after - before
            count += 1
    return touched[:count], out[:count], above[:kept], refreshes, pulses


_PROGRAMS: dict = {}


def program_with(change):
    """The compiled ``program`` around a law's per-device ``change`` (``ResponseLaw.compiled``),
    built once per law and process (numba compiles it at its first call: the law is inlined)."""
    if change not in _PROGRAMS:
        _PROGRAMS[change] = _build_program(change)
    return _PROGRAMS[change]


# The per-device store (state, write noise, counters) is written out in each of the three loops
# that need it (``commit``, both ``program`` kernels): a helper taking the arrays, even inlined,
# made the loop about 7x slower (array arguments per device).


def _build_program(change):
    @njit(nogil=True)
    def program(presented, state, per_device, stuck, index, n, up, constants, c2c, c2c_std, noise, noise_scale,
                pulses_up, pulses_down, limit):
        """One pass over the programmed devices: (largest count, devices moved, change of the
        weights they present). Devices at ``index`` (sorted) get ``n`` pulses of the sign ``up``,
        less the ``stuck`` ones (empty: none); each moves by the law's change from its true state
        (``state``: hidden under write noise, else ``presented``), plus the normals ``c2c`` (one
        per moved device, empty: none) * c2c_std * its step * sqrt(n), clipped at its bounds;
        under write noise it presents its state plus ``noise`` * noise_scale; its counters add
        the pulses. Nothing is written where the largest count is above ``limit`` (or NaN): the
        caller refuses the write."""
        keep, most = _movable_and_most(stuck, index, n)
        moved = np.empty(keep if most <= limit else 0, np.int64)
        out = np.empty(moved.shape[0], presented.dtype)
        if not most <= limit:
            return most, moved, out
        c = 0
        for k in range(index.shape[0]):
            d = index[k]
            if stuck.shape[0] and stuck[d]:
                continue
            dw_up, dw_down, w_min, w_max = per_device[d, 0], per_device[d, 1], per_device[d, 2], per_device[d, 3]
            old = state[d]
            before = presented[d]
            v = np.float64(old) + change(old, n[k], up[k], dw_up, dw_down, w_min, w_max, constants)
            if c2c.shape[0]:
                v += c2c[c] * c2c_std * (dw_up if up[k] else dw_down) * math.sqrt(n[k])
            v = min(max(v, w_min), w_max)
            state[d] = v
            v = state[d]  # as stored (the state's dtype), as the torch path rounds it
            if noise.shape[0]:
                v = v + noise[c] * noise_scale
                presented[d] = v
                v = presented[d]
            moved[c] = d
            out[c] = v - before
            if up[k]:
                pulses_up[d] += np.int64(n[k])
            else:
                pulses_down[d] += np.int64(n[k])
            c += 1
        return most, moved, out
    return program


_WHOLE_PROGRAMS: dict = {}


def program_whole_with(respond):
    """The compiled ``program`` around a pulse-by-pulse law's per-device ``respond``
    (``ResponseLaw.compiled_respond``: the law draws its own per-pulse noise), built once per law."""
    if respond not in _WHOLE_PROGRAMS:
        _WHOLE_PROGRAMS[respond] = _build_whole_program(respond)
    return _WHOLE_PROGRAMS[respond]


def _build_whole_program(respond):
    @njit(nogil=True)
    def program(presented, state, per_device, stuck, index, n, up, constants, seed, dw_min_std, noise,
                noise_scale, pulses_up, pulses_down, limit):
        """As the closed-form ``program``, with the law's own respond (its noise from numba's
        generator, seeded with ``seed`` where ``dw_min_std``) in place of change + c2c."""
        keep, most = _movable_and_most(stuck, index, n)
        moved = np.empty(keep if most <= limit else 0, np.int64)
        out = np.empty(moved.shape[0], presented.dtype)
        if not most <= limit:
            return most, moved, out
        if dw_min_std:
            np.random.seed(seed)
        c = 0
        for k in range(index.shape[0]):
            d = index[k]
            if stuck.shape[0] and stuck[d]:
                continue
            w_min, w_max = per_device[d, 2], per_device[d, 3]
            before = presented[d]
            v = respond(state[d], n[k], up[k], per_device[d, 0], per_device[d, 1], w_min, w_max, dw_min_std,
                        constants)
            v = min(max(v, w_min), w_max)
            state[d] = v
            v = state[d]  # as stored (the state's dtype), as the torch path rounds it
            if noise.shape[0]:
                v = v + noise[c] * noise_scale
                presented[d] = v
                v = presented[d]
            moved[c] = d
            out[c] = v - before
            if up[k]:
                pulses_up[d] += np.int64(n[k])
            else:
                pulses_down[d] += np.int64(n[k])
            c += 1
        return most, moved, out
    return program
