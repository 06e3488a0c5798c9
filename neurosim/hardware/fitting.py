"""Fit neurosim's response laws to measured pulse responses, and write the result as a preset.

The laws are fitted one pulse at a time: each measured step (conductance before a pulse, after
it) is a sample of the law's mean step at that state plus cycle-to-cycle noise, which is what
every law's noise model says (``responses/base.py``). For each law the parameters and the
device's conductance bounds are found by least squares (``scipy.optimize.least_squares``), with
the residuals weighted by the spread of each direction and the predicted state clipped at the
bounds as the arrays clip it; the prediction is the law's own torch code (``law.change``), so the
law fitted is exactly the law simulated. Every law gets a Gaussian log-likelihood with one noise
spread per direction, hence AIC and BIC; the law with the lowest BIC is chosen (its penalty
ln(n) per parameter keeps a law from winning with a parameter the data do not need, where AIC's
2 lets the larger of two nested laws win about one time in six).

The conductance range maps onto the weight range [-0.6, 0.6] of every shipped preset. The
number of states is the range over the nominal step; the cycle-to-cycle noise is the residual
spread of single steps relative to the mean step (measurement read noise adds to it: an upper
bound); with several devices, the device-to-device spreads of the step, the asymmetry and the
bounds are moment estimates from each device's own steps and extremes. The ``measured`` law (a
look-up table, ``responses/measured.py``) is fitted beside the closed forms, as a piecewise-linear
least-squares table of the mean step and of its spread, and competes on the same criterion.

Readings are often noisier than the device: each reading after a pulse carries a noise that does
not accumulate (read noise, or aihwkit's write noise; pulse-response data cannot tell them
apart), and with it single steps regress towards zero (the error of the reading before a step
appears with opposite signs in the step and in the state it is fitted at). Such noise shows as
a negative correlation of consecutive steps (cov(d_n, d_n+1) = -sigma^2, where the device's own
cycle-to-cycle noise leaves consecutive steps uncorrelated), so ``reading_noise`` measures it;
where it is significant the laws are fitted on readings smoothed along each sweep
(Savitzky-Golay, a window over which the noise averages below one mean step), the cycle-to-cycle
noise is what remains of the raw steps' spread after the reading noise's 2 sigma^2, and sigma goes
into the preset as ``write_noise_std``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from neurosim.errors import ConfigError, MeasurementError
from neurosim.hardware.measurements import PHYSICAL_UNITS, UNITS, Measurements, read_measurements
from neurosim.hardware.records import DeviceConfig
from neurosim.hardware.responses import names as law_names
from neurosim.hardware.responses.measured import interpolate

W_MIN, W_MAX = -0.6, 0.6
"""The weight range a fitted device maps onto (as every shipped preset)."""
SPAN = W_MAX - W_MIN
CRITERIA = ("bic", "aic")
VARIANCE_FLOOR = 1e-18
"""Least residual variance (conductance over the measured span, squared) a likelihood credits: a
law that meets noise-free readings to rounding does not beat another that meets them too."""
STEPS_PER_TABLE_POINT = 10
"""Fewest single steps per direction and grid point a ``measured`` table is fitted with."""
TABLE_POINTS = 9
"""Grid points of a fitted ``measured`` table (fewer where the data are few)."""


@dataclass
class Steps:
    """Every measured single-pulse step, with the conductance normalised to the readings' span."""

    g0: np.ndarray
    g1: np.ndarray
    up: np.ndarray
    device: np.ndarray
    g_min: float
    g_max: float
    """Lowest and highest reading (siemens); g0 and g1 are (g - g_min) / (g_max - g_min)."""

    @classmethod
    def of(cls, m: Measurements, device: str | None = None, g_range: tuple[float, float] | None = None) -> Steps:
        devices = m.devices
        g0, g1, up, dev = [], [], [], []
        for s in m.of(device=device):
            a, b = s.steps
            g0.append(a), g1.append(b)
            up.append(np.full(len(a), s.direction == "up"))
            dev.append(np.full(len(a), devices.index(s.device)))
        all_g = np.concatenate([s.conductance for s in m.of(device=device)])
        lo, hi = g_range or (float(all_g.min()), float(all_g.max()))
        scale = hi - lo
        return cls((np.concatenate(g0) - lo) / scale, (np.concatenate(g1) - lo) / scale, np.concatenate(up),
                   np.concatenate(dev), lo, hi)

    def __len__(self) -> int:
        return len(self.g0)


@dataclass
class ReadingNoise:
    """Noise of each reading that does not accumulate, from the lag-1 correlation of steps."""

    sigma: float
    """Standard deviation of one reading (siemens, or the file's unit for ``au``); 0 when not significant."""
    rho: float
    """Correlation of consecutive steps (within sweeps, each sweep's mean step removed)."""
    steps: int
    significant: bool
    window: int = 0
    """Readings per smoothing window (0: not smoothed)."""
    walk: float = 0.0
    """Standard deviation per pulse of the part that accumulates (the device's own step noise),
    from the growth of the variance of k-pulse changes between lag 1 and ``lag``; 0 when not
    significant."""
    lag: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


INNER_BOUNDS = 0.2
"""How far inside the readings' span (a share of it) the bounds may lie when the readings are noisy."""
NOISE_Z = 3.0
"""Standard errors below zero the lag-1 step correlation must lie for reading noise to count."""
NOISE_RHO = -0.1
"""...and at least this negative: a correlation weaker than this biases the fit by little."""


def reading_noise(m: Measurements) -> ReadingNoise:
    """Estimate the readings' non-accumulating noise: for readings g_n = x_n + e_n of a device
    state x_n, consecutive steps share e_n with opposite signs, so their covariance is
    -var(e); the device's own step noise leaves them uncorrelated (a slowly varying mean step
    adds a little positive covariance, so the estimate errs low). Pooled over sweeps with at
    least three steps; significant when the correlation is below both ``NOISE_RHO`` and
    ``NOISE_Z`` standard errors."""
    c0 = c1 = 0.0
    n0 = n1 = 0
    for sweep in m.sweeps:
        d = np.diff(sweep.conductance)
        if len(d) < 3:
            continue
        d = d - d.mean()
        c0 += float((d * d).sum())
        c1 += float((d[:-1] * d[1:]).sum())
        n0 += len(d)
        n1 += len(d) - 1
    if n1 < 10 or c0 <= 0:
        return ReadingNoise(0.0, 0.0, n0, False)
    gamma0, gamma1 = c0 / n0, c1 / n1
    rho = gamma1 / gamma0
    significant = rho < NOISE_RHO and rho < -NOISE_Z / math.sqrt(n1)
    if not significant:
        return ReadingNoise(0.0, rho, n0, False)
    # the accumulating part: var(g_n+k - g_n) = 2 sigma^2 + k walk^2 (+ the trend's curvature,
    # which makes this an upper bound), from lag 1 to a quarter of the shortest sweep
    lag = max(2, min(len(s.conductance) for s in m.sweeps if len(s.conductance) > 3) // 4)
    v1, vk = _change_variance(m, 1), _change_variance(m, lag)
    walk = math.sqrt(max(vk - v1, 0.0) / (lag - 1))
    return ReadingNoise(math.sqrt(-gamma1), rho, n0, True, walk=walk, lag=lag)


def _change_variance(m: Measurements, k: int) -> float:
    """Variance of the k-pulse changes of the readings, each sweep's mean change removed, pooled."""
    total, count = 0.0, 0
    for sweep in m.sweeps:
        g = sweep.conductance
        if len(g) <= k + 1:
            continue
        d = g[k:] - g[:-k]
        total += float(((d - d.mean()) ** 2).sum())
        count += len(d)
    return total / count if count else 0.0


def smooth_sweeps(m: Measurements, noise: ReadingNoise) -> Measurements:
    """The measurements with each sweep's readings smoothed (Savitzky-Golay, quadratic, edges
    fitted rather than padded) over a window in which the reading noise of a step falls below
    the mean step: sqrt(2) sigma / window <= |mean step|, at least 5 readings, at most a quarter
    of the sweep. Sets ``noise.window``."""
    from scipy.signal import savgol_filter

    step = float(np.median([abs(np.mean(np.diff(s.conductance))) for s in m.sweeps if len(s.conductance) > 1]))
    want = math.ceil(math.sqrt(2) * noise.sigma / step) if step > 0 else 5
    sweeps = []
    windows = []
    for sweep in m.sweeps:
        n = len(sweep.conductance)
        window = min(max(want, 5), n // 4)
        window -= 1 - window % 2  # odd
        if window < 5:
            sweeps.append(sweep)
            continue
        windows.append(window)
        sweeps.append(dataclasses.replace(sweep, conductance=savgol_filter(sweep.conductance, window, 2, mode="interp")))
    noise.window = int(max(windows)) if windows else 0
    return dataclasses.replace(m, sweeps=sweeps)


@dataclass
class LawFit:
    """One law fitted to the steps: its preset parameters, bounds, spreads and criteria."""

    law: str
    params: dict[str, Any]
    """Preset keys of the law (dw_min, up_down, its own parameters; ``states`` for nonlinear)."""
    bounds: tuple[float, float]
    """The device's conductance bounds (siemens) that map onto w_min, w_max."""
    parameters: int
    """Free parameters, the two bounds and the two noise spreads included."""
    sigma_up: float
    sigma_down: float
    """Residual spread of single steps (weight units)."""
    log_likelihood: float
    aic: float
    bic: float
    r2: float
    """Share of the steps' variance about their direction's mean that the law explains."""
    dw_min_std: float
    """Cycle-to-cycle noise relative to the mean step (the preset's dw_min_std)."""
    states: float
    """Number of states: the range over the nominal step."""
    nl: tuple[float, float] | None = None
    """``nonlinear`` only: NeuroSim's nonlinearity labels up and down (down negative, NeuroSim's sign)."""
    message: str = ""

    def row(self) -> dict[str, Any]:
        return {"law": self.law, "parameters": self.parameters, "log_likelihood": self.log_likelihood,
                "aic": self.aic, "bic": self.bic, "r2": self.r2, "c2c": self.dw_min_std, "states": self.states,
                "nl": list(self.nl) if self.nl else None}


@dataclass
class DeviceFit:
    """``fit_device``'s result: every law's fit, the one chosen and the preset built from it."""

    name: str
    measurements: Measurements
    fits: dict[str, LawFit]
    chosen: str
    criterion: str
    spreads: dict[str, float]
    """Device-to-device spreads (preset keys), empty with one device."""
    preset: dict[str, Any]
    """The preset's keys, ready to write (``preset_yaml``) or to build a DeviceConfig from."""
    pulses_per_sweep: float = 0.0
    warnings: list[str] = field(default_factory=list)
    noise: ReadingNoise | None = None
    """The readings' own noise (``reading_noise``); the laws were fitted on ``fitted_on``."""
    fitted_on: Measurements | None = None
    """The measurements the laws were fitted to: smoothed where the reading noise is significant,
    else the measurements themselves."""

    @property
    def best(self) -> LawFit:
        return self.fits[self.chosen]

    def config(self) -> DeviceConfig:
        """The fitted preset as a validated DeviceConfig."""
        from neurosim.schema import build

        config = build(DeviceConfig, {"name": self.name, **self.preset}, "device")
        config.validate("device")
        return config

    def table(self) -> str:
        """The laws side by side, as text (the chosen one marked)."""
        lines = [f"{'law':<12} {'k':>3} {'logL':>10} {'AIC':>10} {'BIC':>10} {'R2':>7} {'c2c':>7} {'states':>7}  NL"]
        for f in sorted(self.fits.values(), key=lambda f: getattr(f, self.criterion)):
            nl = f"{f.nl[0]:+.2f}/{f.nl[1]:+.2f}" if f.nl else ""
            mark = " <- " + self.criterion.upper() if f.law == self.chosen else ""
            lines.append(f"{f.law:<12} {f.parameters:>3} {f.log_likelihood:>10.1f} {f.aic:>10.1f} {f.bic:>10.1f} "
                         f"{f.r2:>7.3f} {f.dw_min_std:>7.3f} {f.states:>7.1f}  {nl}{mark}")
        return "\n".join(lines)

    def simulated(self, devices: int = 100, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        """``simulate_sweeps`` of this fit."""
        return simulate_sweeps(self, devices, seed)

    def mean_steps(self, points: int = 101) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Every law's noise-free step of one pulse up and down (siemens) at ``points`` conductances
        across the chosen law's bounds: (conductances, {law: (up steps, down steps)})."""
        lo, hi = self.best.bounds
        g = np.linspace(lo, hi, points)
        curves = {}
        for name, f in self.fits.items():
            f_lo, f_hi = f.bounds
            w = torch.from_numpy(W_MIN + (g - f_lo) / (f_hi - f_lo) * SPAN)
            steps = []
            for up in (True, False):
                up_t = torch.full(w.shape, up)
                if name == "measured":
                    config = DeviceConfig(response="measured", w_min=W_MIN, w_max=W_MAX, **f.params)
                    ones = torch.ones_like(w)
                    change = config.law.mean_step(config, w.clamp(W_MIN, W_MAX), up_t, ones * config.step,
                                                  ones * config.step, ones * W_MIN, ones * W_MAX)
                else:
                    change = _predict(name, f.params, w.clamp(W_MIN, W_MAX), up_t) - w.clamp(W_MIN, W_MAX)
                steps.append(change.numpy() / SPAN * (f_hi - f_lo))
            curves[name] = (steps[0], steps[1])
        return g, curves

    def to_json(self) -> dict[str, Any]:
        m = self.measurements
        physical = m.units in PHYSICAL_UNITS
        return {"name": self.name, "files": m.files, "sha256": m.checksums, "units": m.units,
                "summary": m.summary(), "devices": len(m.devices), "steps": int(sum(len(s.pulses) - 1 for s in m.sweeps)),
                "chosen": self.chosen, "criterion": self.criterion, "fits": [f.row() for f in self.fits.values()],
                "spreads": self.spreads, "pulses_per_sweep": self.pulses_per_sweep,
                "g_min": self.best.bounds[0] / UNITS[m.units], "g_max": self.best.bounds[1] / UNITS[m.units],
                "g_min_siemens": self.best.bounds[0] if physical else None,
                "g_max_siemens": self.best.bounds[1] if physical else None,
                "on_off": self.best.bounds[1] / self.best.bounds[0] if physical and self.best.bounds[0] > 0 else None,
                "reading_noise": self.noise.to_json() if self.noise else None,
                "preset": self.preset, "warnings": self.warnings}


# --------------------------------------------------------------------------------------------
# the laws as functions of a parameter vector


@dataclass(frozen=True)
class _Model:
    """How one law's free parameters (after the two bounds) become DeviceConfig fields."""

    law: str
    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    start: Callable[[Steps, float], list[list[float]]]
    """Starting points (several: the best fit wins) from the steps and the median pulses per sweep."""
    fields: Callable[[np.ndarray], dict[str, Any]]


def _dw_fields(v: np.ndarray) -> dict[str, Any]:
    dw_up, dw_down = float(v[0]), float(v[1])
    return {"dw_min": (dw_up + dw_down) / 2, "up_down": (dw_up - dw_down) / (dw_up + dw_down)}


def _median_steps(steps: Steps) -> tuple[float, float]:
    d = (steps.g1 - steps.g0) * SPAN
    up = float(np.median(d[steps.up])) if steps.up.any() else 0.01
    down = float(-np.median(d[~steps.up])) if (~steps.up).any() else 0.01
    return max(up, 1e-4), max(down, 1e-4)


MODELS: dict[str, _Model] = {
    "constant": _Model("constant", ("dw_up", "dw_down"), (1e-6, 1e-6), (SPAN, SPAN),
                       lambda s, p: [list(_median_steps(s))], _dw_fields),
    "soft_bounds": _Model("soft_bounds", ("dw_up", "dw_down"), (1e-6, 1e-6), (SPAN, SPAN),
                          lambda s, p: [[2 * x for x in _median_steps(s)]], _dw_fields),
    "linear_step": _Model("linear_step", ("dw_up", "dw_down", "gamma_up", "gamma_down"),
                          (1e-6, 1e-6, 0.0, 0.0), (SPAN, SPAN, 1.0, 1.0),
                          lambda s, p: [[*_median_steps(s), 0.2, 0.2], [*(2 * x for x in _median_steps(s)), 0.9, 0.9]],
                          lambda v: {**_dw_fields(v), "gamma_up": float(v[2]), "gamma_down": float(v[3])}),
    "exp_step": _Model("exp_step", ("dw_up", "dw_down", "exp_A_up", "exp_A_down", "exp_gamma_up", "exp_gamma_down"),
                       (1e-6, 1e-6, -20.0, -20.0, -10.0, -10.0), (2 * SPAN, 2 * SPAN, 20.0, 20.0, 10.0, 10.0),
                       lambda s, p: [[*(1.5 * x for x in _median_steps(s)), 0.3, 0.3, 1.0, 1.0],
                                     [*_median_steps(s), 0.05, 0.05, 0.5, 0.5]],
                       lambda v: {**_dw_fields(v), "exp_a": 1.0, "exp_b": 0.0, "exp_A_up": float(v[2]),
                                  "exp_A_down": float(v[3]), "exp_gamma_up": float(v[4]),
                                  "exp_gamma_down": float(v[5])}),
    "nonlinear": _Model("nonlinear", ("states", "a_up", "a_down"), (2.0, 0.01, 0.01), (1e6, 200.0, 200.0),
                        lambda s, p: [[max(p, 2.0), 1.0, 1.0], [max(p, 2.0), 0.3, 0.3], [max(p, 2.0), 5.0, 5.0]],
                        lambda v: {"states": float(v[0]), "a_up": float(v[1]), "a_down": float(v[2])}),
}
"""The closed-form laws; ``measured`` is fitted apart (a linear least-squares table)."""


def _predict(law: str, fields: dict[str, Any], w: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Weights after one pulse: the law's own torch code, clipped at the bounds as the arrays do."""
    config = DeviceConfig(response=law, w_min=W_MIN, w_max=W_MAX, **fields)
    ones = torch.ones_like(w)
    step = config.step
    dw_up = ones * step * (1 + config.up_down)
    dw_down = ones * step * (1 - config.up_down)
    change = config.law.change(config, w, ones, up, dw_up, dw_down, ones * W_MIN, ones * W_MAX)
    return (w + change).clamp(W_MIN, W_MAX)


def _fit_closed_form(model: _Model, steps: Steps, pulses: float, inner: float = 0.0
                     ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(law parameters, residuals in weight units of the fitted map, bounds lo and hi normalised).
    The bounds lie at or beyond the readings' extremes, or up to ``inner`` of the span inside
    them where the readings are noisier than the device (a plateau's noise reaches past its bound)."""
    from scipy.optimize import least_squares

    up_t = torch.from_numpy(steps.up)
    n_up, n_down = max(int(steps.up.sum()), 1), max(int((~steps.up).sum()), 1)

    def residuals(theta: np.ndarray, weights: tuple[float, float]) -> np.ndarray:
        lo, hi, v = theta[0], theta[1], theta[2:]
        scale = SPAN / (hi - lo)
        w0 = torch.from_numpy(W_MIN + (steps.g0 - lo) * scale)
        w1 = W_MIN + (steps.g1 - lo) * scale
        pred = _predict(model.law, model.fields(v), w0, up_t).numpy()
        r = (pred - w1) / scale  # in normalised conductance: the map's scale must not shrink residuals
        return r * np.where(steps.up, weights[0], weights[1])

    lower = np.array([-1.0, 1.0 - inner, *model.lower])
    upper = np.array([inner, 2.0, *model.upper])
    best = None
    for start in model.start(steps, pulses):
        theta = np.clip(np.array([0.0, 1.0, *start], dtype=np.float64), lower + 1e-12, upper - 1e-12)
        weights = (1.0, 1.0)
        result = None
        for _ in range(3):  # reweight each direction by its own spread
            result = least_squares(residuals, theta, bounds=(lower, upper), args=(weights,), x_scale="jac",
                                   method="trf", max_nfev=400)
            theta = result.x
            raw = residuals(theta, (1.0, 1.0))
            s_up = math.sqrt(float((raw[steps.up] ** 2).sum()) / n_up) or 1e-12
            s_down = math.sqrt(float((raw[~steps.up] ** 2).sum()) / n_down) or 1e-12
            weights = (1 / s_up, 1 / s_down)
        raw = residuals(theta, (1.0, 1.0))
        ll = _log_likelihood(raw, steps.up)
        if best is None or ll > best[0]:
            best = (ll, theta, raw)
    _, theta, raw = best
    scale = SPAN / (theta[1] - theta[0])
    return theta[2:], raw * scale, float(theta[0]), float(theta[1])


def _log_likelihood(r: np.ndarray, up: np.ndarray) -> float:
    """Gaussian log-likelihood with one maximum-likelihood spread per direction."""
    total = 0.0
    for mask in (up, ~up):
        n = int(mask.sum())
        if n:
            var = max(float((r[mask] ** 2).mean()), VARIANCE_FLOOR)
            total += -0.5 * n * (math.log(2 * math.pi * var) + 1)
    return total


def _r2(residual_weights: np.ndarray, steps: Steps, scale: float) -> float:
    d = (steps.g1 - steps.g0) * scale
    total = sum(float(((d[m] - d[m].mean()) ** 2).sum()) for m in (steps.up, ~steps.up) if m.any())
    return 1 - float((residual_weights ** 2).sum()) / total if total > 0 else 0.0


def nonlinearity_label(a: float) -> float:
    """NeuroSim's NL label of the curve with A = a x states (the largest distance of the
    normalised curve from the diagonal over 0.07 sqrt 2; docs/research/devices/neurosim_nl_to_A.yaml)."""
    x = np.linspace(0, 1, 20001)
    g = (1 - np.exp(-x / a)) / (1 - np.exp(-1 / a))
    return float(np.max(g - x) / (0.07 * math.sqrt(2)))


def _law_fit(name: str, fields: dict[str, Any], residuals: np.ndarray, steps: Steps, lo: float, hi: float,
             free: int, raw: Steps | None = None, noise: tuple[float, float] = (0.0, 0.0)) -> LawFit:
    """``raw``, ``noise``: where the laws were fitted on smoothed readings, the raw steps (same
    order, same normalisation) and the reading noise and accumulating noise per pulse
    (``ReadingNoise.sigma``, ``.walk``, normalised conductance); the c2c spread is then the
    lesser of the raw steps' residual spread about the law's mean step with the reading noise's
    2 sigma^2 taken out and the accumulating noise."""
    n = len(steps)
    k = free + 2 + 2  # the bounds and one noise spread per direction
    scale = SPAN / (hi - lo)
    # the likelihood of the measured conductances, in the same units for every law (in weight
    # units a law with wider bounds would shrink its own residuals)
    ll = _log_likelihood(residuals / scale, steps.up)
    s_up = math.sqrt(float((residuals[steps.up] ** 2).mean())) if steps.up.any() else 0.0
    s_down = math.sqrt(float((residuals[~steps.up] ** 2).mean())) if (~steps.up).any() else 0.0
    w0 = torch.from_numpy(W_MIN + (steps.g0 - lo) * scale)
    up_t = torch.from_numpy(steps.up)
    if name == "measured":
        config = DeviceConfig(response="measured", w_min=W_MIN, w_max=W_MAX, **fields)
        ones = torch.ones_like(w0)
        pred = (w0 + config.law.mean_step(config, w0, up_t, ones * config.step, ones * config.step,
                                          ones * W_MIN, ones * W_MAX)).clamp(W_MIN, W_MAX)
    else:
        config = DeviceConfig(response=name, w_min=W_MIN, w_max=W_MAX, **fields)
        pred = _predict(name, fields, w0, up_t)
    # the noise model of each law: exp_step's spread is relative to the current step, every
    # other closed form's to the nominal step of the direction (dw_up, dw_down); steps that end
    # at a bound are clipped, so they say nothing about the spread
    free_steps = ((pred > W_MIN + 1e-9) & (pred < W_MAX - 1e-9)).numpy()
    mean = (pred - w0).abs().numpy()
    c2c = []
    if raw is not None:
        raw_residuals = (raw.g1 - raw.g0) * scale - (pred - w0).numpy()
        noise_var = 2 * (noise[0] * scale) ** 2
    for mask, sign in ((steps.up, 1), (~steps.up, -1)):
        use = mask & free_steps
        if not use.any():
            continue
        if raw is not None:  # the lesser of two upper bounds of the accumulating step noise
            spread = min(math.sqrt(max(float((raw_residuals[use] ** 2).mean()) - noise_var, 0.0)), noise[1] * scale)
        else:
            spread = math.sqrt(float((residuals[use] ** 2).mean()))
        if name in ("exp_step", "measured"):
            reference = math.sqrt(float((mean[use] ** 2).mean()))
        else:
            reference = config.step * (1 + sign * config.up_down)
        if reference > 0:
            c2c.append((spread / reference, int(use.sum())))
    dw_min_std = sum(v * n for v, n in c2c) / sum(n for _, n in c2c) if c2c else 0.0
    if name == "nonlinear":
        states = float(fields["states"])
        nl = (nonlinearity_label(fields["a_up"]), -nonlinearity_label(fields["a_down"]))
    elif name in ("exp_step", "measured"):  # the nominal step is a scale of the curve, not its mean step
        free_mean = mean[free_steps]
        states = SPAN / float(free_mean.mean()) if free_mean.size and free_mean.mean() > 0 else float("nan")
        nl = None
    else:
        states = SPAN / fields.get("dw_min", 1.0)
        nl = None
    g_range = steps.g_max - steps.g_min
    return LawFit(name, fields, (steps.g_min + lo * g_range, steps.g_min + hi * g_range), k, s_up, s_down, ll,
                  2 * k - 2 * ll, k * math.log(n) - 2 * ll, _r2(residuals, steps, scale), dw_min_std, states, nl)


def _fit_table(steps: Steps, points: int) -> tuple[dict[str, Any], np.ndarray]:
    """The ``measured`` law: piecewise-linear mean step up and down on ``points`` states (linear
    least squares in the hat basis), its spread the same way on the squared residuals."""
    x = steps.g0.clip(0, 1)
    grid = np.linspace(0, 1, points)
    hat = np.clip(1 - np.abs(x[:, None] - grid[None, :]) * (points - 1), 0, None)
    d = (steps.g1 - steps.g0) * SPAN
    tables, spreads, residuals = {}, {}, np.zeros_like(d)
    for name, mask, sign in (("up", steps.up, 1.0), ("down", ~steps.up, -1.0)):
        # a step that ends on the bound was clipped there (a device driven into saturation): it
        # bounds the mean step from below but does not measure it, so the table is fitted on
        # the others and the clipping predicts these
        clipped = (steps.g1 >= 1 - 1e-9) if sign > 0 else (steps.g1 <= 1e-9)
        use = mask & ~clipped
        if use.sum() < points:
            use = mask
        basis = hat[use]
        mean, *_ = np.linalg.lstsq(basis, sign * d[use], rcond=None)
        mean = _fill_empty(mean, basis).clip(0, None)
        spread, *_ = np.linalg.lstsq(basis, (sign * d[use] - basis @ mean) ** 2, rcond=None)
        spreads[name] = np.sqrt(_fill_empty(spread, basis).clip(0, None))
        tables[name] = mean
        predicted = (steps.g0[mask] * SPAN + sign * (hat[mask] @ mean)).clip(0, SPAN)
        residuals[mask] = sign * (steps.g1[mask] * SPAN - predicted)
    dw = float(np.mean(np.concatenate([tables["up"], tables["down"]])))
    if not dw > 0:
        raise MeasurementError("(fit)", "the measured steps average to zero: the device does not move")
    fields = {"dw_min": dw, "up_down": 0.0,
              "measured_up": [round(float(v / dw), 6) for v in tables["up"]],
              "measured_down": [round(float(v / dw), 6) for v in tables["down"]],
              "measured_up_std": [round(float(v / dw), 6) for v in spreads["up"]],
              "measured_down_std": [round(float(v / dw), 6) for v in spreads["down"]]}
    return fields, residuals * np.where(steps.up, 1.0, -1.0)


def _fill_empty(values: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Grid points no reading touches take their nearest touched neighbour's value."""
    touched = basis.sum(0) > 1e-9
    if touched.all() or not touched.any():
        return values
    idx = np.flatnonzero(touched)
    return np.interp(np.arange(len(values)), idx, values[idx])


# --------------------------------------------------------------------------------------------
# the public calls


def fit_device(source: Measurements | Sequence[str | Path], name: str, laws: Sequence[str] | None = None,
               criterion: str = "bic", law: str | None = None, units: str | None = None,
               directions: Sequence[str] | None = None, table_points: int | None = None) -> DeviceFit:
    """Fit every response law (or ``laws``) to measurements and build a preset from the best.

    ``source``: a ``Measurements`` or the files to read (``read_measurements``, with ``units``
    and ``directions``). ``criterion``: 'bic' (default) or 'aic' picks the law, unless ``law``
    names it. ``table_points``: grid of the ``measured`` table (default: up to 9, fewer for few
    readings).
    """
    from neurosim.errors import arg

    if criterion not in CRITERIA:
        raise ConfigError(arg("criterion", "--criterion"), criterion, "one of " + ", ".join(CRITERIA))
    known = law_names()
    laws = list(laws) if laws else [n for n in known]
    for item in laws + ([law] if law else []):
        if item not in known:
            raise ConfigError(arg("laws", "--laws") if item != law else arg("law", "--law"), item,
                              "one of " + ", ".join(known))
    if law and law not in laws:
        laws.append(law)
    m = source if isinstance(source, Measurements) else read_measurements(source, units, directions)
    noise = reading_noise(m)
    fitted_on = smooth_sweeps(m, noise) if noise.significant else m
    steps = Steps.of(fitted_on)
    raw = Steps.of(m, g_range=(steps.g_min, steps.g_max)) if fitted_on is not m else None
    noise_norm = (noise.sigma / (steps.g_max - steps.g_min), noise.walk / (steps.g_max - steps.g_min))
    pulses = float(np.median([len(s.pulses) - 1 for s in m.sweeps]))
    fits: dict[str, LawFit] = {}
    skipped: list[str] = []
    fewest = min(int(steps.up.sum()), int((~steps.up).sum()))
    for item in laws:
        if item == "measured":
            points = table_points or int(np.clip(fewest // STEPS_PER_TABLE_POINT, 2, TABLE_POINTS))
            if table_points is None and fewest < 2 * STEPS_PER_TABLE_POINT:
                skipped.append(f"measured (a table needs at least {2 * STEPS_PER_TABLE_POINT} steps per direction; "
                               f"got {fewest})")
                continue
            fields, residuals = _fit_table(steps, points)
            if raw is not None:  # the smoothed readings' spread is not the device's: c2c from the raw steps
                fields["measured_up_std"], fields["measured_down_std"] = [], []
            fits[item] = _law_fit(item, fields, residuals, steps, 0.0, 1.0, 4 * points - 2, raw, noise_norm)
        else:
            model = MODELS[item]
            if len(model.names) + 4 >= len(steps):
                skipped.append(f"{item} ({len(model.names) + 4} parameters for {len(steps)} steps)")
                continue
            v, residuals, lo, hi = _fit_closed_form(model, steps, pulses, INNER_BOUNDS if raw is not None else 0.0)
            fields = model.fields(v)
            fits[item] = _law_fit(item, fields, residuals, steps, lo, hi, len(v), raw, noise_norm)
    if not fits or (law and law not in fits):
        raise MeasurementError(", ".join(m.files), "too few steps to fit " + (law or "any law") + ": "
                               + "; ".join(skipped))
    chosen = law or min(fits, key=lambda k: getattr(fits[k], criterion))
    best = fits[chosen]
    spreads = _spreads(fitted_on, best) if len(m.devices) > 1 else {}
    preset = _preset(name, m, best, fits, criterion, spreads, law is not None, noise)
    result = DeviceFit(name, m, fits, chosen, criterion, spreads, preset, pulses, noise=noise, fitted_on=fitted_on)
    if noise.significant:
        result.warnings.append(
            f"the readings carry a noise that does not accumulate (consecutive steps correlate {noise.rho:+.2f}): "
            f"sigma {noise.sigma / UNITS[m.units]:.3g} {m.units} per reading, "
            f"{noise.sigma / (steps.g_max - steps.g_min) * SPAN / best_step(best):.3g} dw_min; the laws were fitted "
            f"on readings smoothed over {noise.window} pulses and the preset's write_noise_std carries it; c2c from "
            f"the variance of {noise.lag}-pulse changes (an upper bound)")
    result.warnings += [f"not fitted: {item}" for item in skipped]
    if any(s.interpolated for s in m.sweeps):
        result.warnings.append("some sweeps were read at skipped or fractional pulses and interpolated onto every "
                               "pulse: their c2c is a lower bound")
    if best.r2 < 0.5:
        result.warnings.append(f"the chosen law {chosen} explains only {best.r2:.0%} of the steps' variance")
    result.config()  # the preset must load as any other
    return result


def _one_pulse(f: LawFit, g: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The fitted law's mean conductance after one pulse from ``g`` (siemens), clipped at its bounds."""
    lo, hi = f.bounds
    w = torch.from_numpy(W_MIN + (g - lo) / (hi - lo) * SPAN)
    up_t = torch.from_numpy(up)
    if f.law == "measured":
        config = DeviceConfig(response="measured", w_min=W_MIN, w_max=W_MAX, **f.params)
        ones = torch.ones_like(w)
        new = (w + config.law.mean_step(config, w.clamp(W_MIN, W_MAX), up_t, ones * config.step, ones * config.step,
                                        ones * W_MIN, ones * W_MAX)).clamp(W_MIN, W_MAX)
    else:
        new = _predict(f.law, f.params, w.clamp(W_MIN, W_MAX), up_t)
    return lo + (new.numpy() - W_MIN) / SPAN * (hi - lo)


def _spreads(m: Measurements, best: LawFit) -> dict[str, float]:
    """Device-to-device spreads (moment estimates over the devices): of the step, as each
    device's measured steps over the steps the fitted law predicts at the same states (steps
    that end at the device's own extremes are saturated and left out), of the asymmetry, and of
    the bounds, as each device's extremes."""
    lo, hi = best.bounds
    w_lo, w_hi, scale, asym = [], [], [], []
    for device in m.devices:
        sweeps = m.of(device=device)
        g = np.concatenate([s.conductance for s in sweeps])
        g_min, g_max = float(g.min()), float(g.max())
        w_lo.append(W_MIN + (g_min - lo) / (hi - lo) * SPAN)
        w_hi.append(W_MIN + (g_max - lo) / (hi - lo) * SPAN)
        ratio = {}
        for direction in ("up", "down"):
            observed, predicted = 0.0, 0.0
            for s in sweeps:
                if s.direction != direction:
                    continue
                before, after = s.steps
                free = (after < g_max) & (after > g_min)
                if free.any():
                    observed += float((after[free] - before[free]).sum())
                    up = np.full(int(free.sum()), direction == "up")
                    predicted += float((_one_pulse(best, before[free], up) - before[free]).sum())
            if predicted and observed / predicted > 0:
                ratio[direction] = observed / predicted
        if len(ratio) == 2:
            scale.append(math.sqrt(ratio["up"] * ratio["down"]))
            asym.append((ratio["up"] - ratio["down"]) / (ratio["up"] + ratio["down"]))
    out = {}
    if len(scale) > 1:
        s = np.array(scale)
        out["dw_min_dtod"] = round(float(s.std(ddof=1) / s.mean()), 4)
        out["up_down_dtod"] = round(float(np.std(asym, ddof=1)), 4)
    out["w_min_dtod"] = round(float(np.std(w_lo, ddof=1) / abs(W_MIN)), 4)
    out["w_max_dtod"] = round(float(np.std(w_hi, ddof=1) / W_MAX), 4)
    return out


def best_step(f: LawFit) -> float:
    """The nominal step (weight units) of a fitted law: what dw_min-relative noises are relative to."""
    config = DeviceConfig(response=f.law, w_min=W_MIN, w_max=W_MAX, **f.params)
    return float(config.step)


def _preset(name: str, m: Measurements, best: LawFit, fits: dict[str, LawFit], criterion: str,
            spreads: dict[str, float], forced: bool, noise: ReadingNoise | None = None) -> dict[str, Any]:
    files = ", ".join(f"{Path(f).name} (sha256 {m.checksums[f][:16]})" for f in m.files)
    ranking = "; ".join(f"{f.law} {getattr(f, criterion):.1f}" for f in sorted(fits.values(), key=lambda f: getattr(f, criterion)))
    g_lo, g_hi = best.bounds
    unit = m.units
    per = UNITS[unit]
    nl = f", NL {best.nl[0]:.2f} / {best.nl[1]:.2f}" if best.nl else ""
    source = (f"Fitted by neurosim devices fit on {datetime.date.today().isoformat()} from {files}: {m.summary()}. "
              f"Law {best.law} ({'chosen by the user' if forced else 'lowest ' + criterion.upper()}; "
              f"{criterion.upper()} {ranking}); R2 of single steps {best.r2:.3f}{nl}; conductance bounds "
              f"{g_lo / per:.4g} to {g_hi / per:.4g} {unit} mapped onto [{W_MIN}, {W_MAX}]; c2c "
              + (f"from the residual spread of single steps (read noise included: an upper bound)" if not (noise and noise.significant) else
                 f"the lesser of the raw steps' spread less the reading noise and the growth of the variance of "
                 f"{noise.lag}-pulse changes (an upper bound); the readings' own noise (consecutive steps "
                 f"correlate {noise.rho:+.2f}, sigma {noise.sigma / per:.3g} {unit}) as write_noise_std, the laws "
                 f"fitted on readings smoothed over {noise.window} pulses (Savitzky-Golay)")
              + ("; d2d spreads from each device's mean steps and extremes" if spreads else "") + ".")
    preset: dict[str, Any] = {"description": f"{name}: measured device fitted with {best.law} "
                                             f"({len(m.devices)} device(s), {len(m.sweeps)} sweeps)",
                              "source": source, "response": best.law, "w_min": W_MIN, "w_max": W_MAX}
    params = dict(best.params)
    if best.law == "nonlinear":
        params["states"] = max(int(round(params["states"])), 1)
    else:
        params["dw_min"] = _round(params["dw_min"])
        params["up_down"] = round(float(params.get("up_down", 0.0)), 4)
    for key, value in params.items():
        preset[key] = _round(value) if isinstance(value, float) else value
    if best.law != "measured" or not best.params.get("measured_up_std"):
        preset["dw_min_std"] = round(best.dw_min_std, 4)
    if noise is not None and noise.significant:
        g_lo, g_hi = best.bounds
        preset["write_noise_std"] = round(noise.sigma / (g_hi - g_lo) * SPAN / best_step(best), 4)
    preset.update(spreads)
    preset["rounding"] = "stochastic"
    return preset


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def preset_yaml(fit: DeviceFit) -> str:
    """The preset as a YAML file like the shipped ones, with the fit table as comments."""
    import yaml

    header = (f"# {fit.name}: fitted by neurosim devices fit from measurements ({fit.measurements.summary()}).\n"
              "# Every law fitted (lower is better; the chosen one marked):\n"
              + "".join(f"#   {line}\n" for line in fit.table().splitlines()))
    # one key at a time: block style at the top level (a preset of scalars only would otherwise
    # come out as one flow mapping), tables inline
    body = "".join(f"{k}: " + yaml.safe_dump(v, width=110, default_flow_style=True, allow_unicode=True)
                   if isinstance(v, (list, tuple)) else
                   yaml.safe_dump({k: v}, sort_keys=False, width=110, default_flow_style=False, allow_unicode=True)
                   for k, v in fit.preset.items())
    return header + body


def write_fit(fit: DeviceFit, out: str | Path, plot: bool = True) -> dict[str, Path]:
    """Write the preset YAML, the fit record (``.fit.json``) and the fit plot (``.png``) beside it."""
    from neurosim.io import atomic_write, atomic_write_json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda h: h.write(preset_yaml(fit)), "w")
    paths = {"preset": out, "record": out.with_suffix(".fit.json")}
    atomic_write_json(paths["record"], fit.to_json())
    if plot:
        from neurosim.hardware.plots import plot_fit

        paths["plot"] = out.with_suffix(".png")
        plot_fit(fit, paths["plot"])
    return paths


def simulate_sweeps(fit: DeviceFit, devices: int = 100, seed: int = 0, noise: bool = True
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each measured sweep again, on ``devices`` simulated devices of the fitted preset started
    where the measurement starts: (measured conductance, mean simulated conductance), siemens.
    A fit that describes the device gives the measured mean curve back."""
    from neurosim.hardware.arrays import DeviceArray

    config = fit.config()
    if not noise:
        config = dataclasses.replace(config, dw_min_std=0.0, write_noise_std=0.0, measured_up_std=[], measured_down_std=[])
    config = dataclasses.replace(config, dw_min_dtod=0.0, up_down_dtod=0.0, w_min_dtod=None, w_max_dtod=None,
                                 w_bounds_dtod=0.0)
    lo, hi = fit.best.bounds
    to_w = lambda g: W_MIN + (g - lo) / (hi - lo) * SPAN
    to_g = lambda w: lo + (w - W_MIN) / SPAN * (hi - lo)
    g = torch.Generator().manual_seed(seed)
    out = []
    starts = [s.conductance[0] for s in (fit.fitted_on or fit.measurements).sweeps]
    for sweep, start in zip(fit.measurements.sweeps, starts):
        w = torch.full((devices,), float(np.clip(to_w(start), W_MIN, W_MAX)), dtype=torch.float64)
        array = DeviceArray.create(config, w, 0)
        w.fill_(float(np.clip(to_w(start), W_MIN, W_MAX)))
        trace = [float(w.mean())]
        for _ in range(len(sweep.pulses) - 1):
            array.program(w, torch.arange(devices), torch.ones(devices, dtype=torch.float64),
                          torch.full((devices,), sweep.direction == "up"), g)
            trace.append(float(w.mean()))
        out.append((sweep.conductance, to_g(np.array(trace))))
    return out


def fit_summary(fit: DeviceFit) -> str:
    lines = [f"{fit.name}: {fit.measurements.summary()}", fit.table(),
             f"chosen: {fit.chosen} (lowest {fit.criterion.upper()})" if fit.chosen == min(
                 fit.fits, key=lambda k: getattr(fit.fits[k], fit.criterion)) else f"chosen: {fit.chosen} (by request)"]
    if fit.spreads:
        lines.append("device-to-device: " + ", ".join(f"{k} {v:g}" for k, v in fit.spreads.items()))
    lines += [f"warning: {w}" for w in fit.warnings]
    return "\n".join(lines)
