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
