"""Pulse-response curves: what a datasheet shows, and what ``neurosim devices show`` draws."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

from neurosim.hardware.arrays import DeviceArray
from neurosim.hardware.records import DeviceConfig


def pulse_response(config: DeviceConfig, devices: int = 5, seed: int = 0) -> tuple[list[int], Tensor]:
    """Weights of ``devices`` devices driven from w_min by as many up pulses as the range holds,
    then as many down pulses: the curve a datasheet shows ([devices, 2 * pulses + 1]). For a
    differential pair, the curve of one device of the pair over [0, w_max]."""
    if config.mapping == "differential":
        config = dataclasses.replace(config, w_min=0.0, mapping="single", refresh_threshold=None)
    n = round((config.w_max - config.w_min) / config.step)
    w = torch.full((devices,), config.w_min, dtype=torch.float64)
    array = DeviceArray.create(dataclasses.replace(config, stuck_fraction=0.0), w, 0)
    g = torch.Generator().manual_seed(seed)
    trace = [w.clone()]
    for up in [True] * n + [False] * n:
        array.apply(w, torch.full_like(w, config.step if up else -config.step), g)  # one pulse per device
        trace.append(w.clone())
    return list(range(2 * n + 1)), torch.stack(trace, 1)


def plot_pulse_response(config: DeviceConfig, path: Path, devices: int = 5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurosim.io import atomic_write

    pulses, traces = pulse_response(config, devices)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for row in traces:
        ax.plot(pulses, row.tolist(), lw=1)
    ax.axvline(len(pulses) // 2, color="gray", ls=":", lw=0.8)
    ax.set_xlabel("pulse number (up, then down)")
    ax.set_ylabel("weight")
    pair = ", one device of each G+/G- pair" if config.mapping == "differential" else ""
    ax.set_title(f"{config.name}: {config.response}, {devices} devices{pair}", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)


def plot_fit(fit, path: Path) -> None:
    """What ``neurosim devices fit`` draws: left, the measured sweeps (conductance against the
    pulses of each cycle, up then down) with the fitted preset simulated from the same starts
    (mean of 100 devices, dashed); right, every single measured step against the state, with each
    law's mean step (the chosen law bold). ``fit`` is a ``neurosim.hardware.fitting.DeviceFit``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from neurosim.hardware.measurements import UNITS
    from neurosim.io import atomic_write

    unit = fit.measurements.units
    per = UNITS[unit]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    offsets: dict[tuple[str, str], float] = {}
    colors: dict[str, str] = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for sweep, (measured, simulated) in zip(fit.measurements.sweeps, fit.simulated()):
        key = (sweep.device, sweep.cycle)
        start = offsets.get(key, 0.0)
        x = start + np.arange(len(measured))
        offsets[key] = x[-1]
        color = colors.setdefault(sweep.device, palette[len(colors) % len(palette)])
        left.plot(x, measured / per, color=color, lw=0.8, alpha=0.6)
        left.plot(x, simulated / per, color="black", lw=0.8, ls="--")
    left.set_xlabel("pulse (each cycle: up, then down)")
    left.set_ylabel(f"conductance ({unit})")
    left.set_title(f"{fit.name}: measured (colour per device), fitted {fit.chosen} (dashed)", fontsize=9)
    for sweep in fit.measurements.sweeps:
        before, after = sweep.steps
        right.scatter(before / per, (after - before) / per, s=3, alpha=0.25,
                      color="tab:blue" if sweep.direction == "up" else "tab:red", lw=0)
    g, curves = fit.mean_steps()
    for name, (up, down) in curves.items():
        bold = name == fit.chosen
        kw = dict(lw=2.2 if bold else 0.9, alpha=1.0 if bold else 0.6, color="black" if bold else None)
        line, = right.plot(g / per, up / per, label=name + (" (chosen)" if bold else ""), **kw)
        right.plot(g / per, down / per, **{**kw, "color": line.get_color()})
    right.axhline(0, color="gray", lw=0.6)
    right.set_xlabel(f"conductance before the pulse ({unit})")
    right.set_ylabel(f"step of one pulse ({unit})")
    right.set_title("single steps (blue up, red down) and each law's mean step", fontsize=9)
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)
