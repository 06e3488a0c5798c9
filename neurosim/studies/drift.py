"""Inference after training: how a trained chip's accuracy decays as its conductances drift.

Phase-change and some resistive devices lose conductance after programming as a power law,
G(t) = G(t0) (t / t0)^-nu, with an exponent nu that differs from device to device. A weight is
taken as stored on one conductance of a pair (G+ for positive weights, G- for negative, the other
at zero, as in aihwkit's PCM inference model), so it decays as w(t) = w(t0) (t / t0)^-nu_ij.
nu_ij ~ N(drift_nu, drift_nu_dtod^2), clipped at 0, is drawn once per device from the device
seed. Biases are digital and do not drift. With ``compensate`` the array's outputs are rescaled
by one global factor, the mean decay of the layer's weights (what a chip's periodic calibration
against a reference column does), which removes the common part of the drift and leaves its
device-to-device spread.

The drift parameters come from the run's device (``synapses.params``) and can be overridden for
the evaluation, e.g. ``overrides=["synapses.params.drift_nu=0.05"]`` on a run trained without.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from neurosim.config import load_config
from neurosim.data import load_dataset
from neurosim.errors import ConfigError, arg
from neurosim.io import atomic_write, atomic_write_json
from neurosim.core.network import build_network, configure_torch

DEFAULT_TIMES = [1.0, 60.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
"""1 s, 1 min, 1 h, 1 day, 30 days, 1 year."""


def drift_study(run: str | Path, times: list[float] | None = None, overrides: list[str] | None = None,
                compensate: bool = False, out: str | Path | None = None, data_dir: str | None = None,
                test_subset: int | None = None) -> dict[str, Any]:
    """Test error of a trained run at each time after programming; writes drift.json and drift.png
    into ``out`` (default: the run folder) and returns the same numbers."""
    run = Path(run)
    checkpoint = run / "checkpoint.pt"
    if not checkpoint.is_file():
        raise ConfigError("run", str(run), "a run folder with checkpoint.pt (written by neurosim train)")
    extra = list(overrides or [])
    if data_dir:
        extra.append(f"data.dir={data_dir}")
    config = load_config(run / "config.yaml", extra)
    times = sorted(times or DEFAULT_TIMES)
    if any(t <= 0 for t in times):
        raise ConfigError("times", times, "positive times in seconds")
    device, dtype = configure_torch(config)
    network = build_network(config, device, dtype)
    saved = torch.load(checkpoint, map_location=device, weights_only=False)
    network.load_state_dict(saved["network"])
    test = load_dataset(config.data.name, "test", config.data.dir, device, dtype,
                        test_subset if test_subset is not None else config.data.test_subset, config.data.download)
    from neurosim.run.trainer import evaluate

    model, cost = network.model, network.cost
    drifting = _drifting_weights(config, network)
    if not drifting:
        raise ConfigError("synapses.params.drift_nu", 0.0,
                          "a positive drift exponent for the run's device (e.g. "
                          + arg('overrides=["synapses.params.drift_nu=0.05"]', "--set synapses.params.drift_nu=0.05")
                          + ")")
    programmed = [w.detach().clone() for w, _, _ in drifting]
    rows = []
    with torch.no_grad():
        for t in times:
            for (w, nu, t0), w0 in zip(drifting, programmed, strict=True):
                factor = (max(t, t0) / t0) ** -nu
                w.copy_(w0 * factor)
                if compensate:
                    w.div_(factor.mean())
            error, loss = evaluate(model, cost, test, config.estimator.T, config.train.eval_batch_size)
            rows.append({"seconds": t, "test_error": error, "test_loss": loss})
        for (w, _, _), w0 in zip(drifting, programmed, strict=True):
            w.copy_(w0)
    result = {"run": str(run), "compensate": compensate, "overrides": list(overrides or []),
              "test_samples": len(test), "rows": rows}
    target = Path(out) if out is not None else run
    suffix = "_compensated" if compensate else ""
    atomic_write_json(target / f"drift{suffix}.json", result)
    plot_drift([result], target / f"drift{suffix}.png")
    return result


def _drifting_weights(config, network) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(weight, per-device exponent nu, t0) for every weight stored on a drifting device."""
    from neurosim.hardware.devices import device_config

    out = []
    index = 0
    groups = network.model.param_groups() + network.cost.param_groups()
    for layer, params in enumerate(groups):
        name, params_over = config.synapses.layer(layer)
        device = device_config(name, params_over)
        for p in params:
            if p.dim() < 2:
                continue
            if device.drift_nu or device.drift_nu_dtod:
                g = torch.Generator().manual_seed(device.seed * 1_000_003 + index + 7_777_777)
                nu = device.drift_nu + device.drift_nu_dtod * torch.randn(p.shape, generator=g, dtype=torch.float64)
                out.append((p.data, nu.clamp_min(0).to(p.device, p.dtype), device.drift_t0))
            index += 1
    return out


def plot_drift(results: list[dict[str, Any]], path: Path, labels: list[str] | None = None) -> None:
    """Test error against time after programming (log time axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for i, result in enumerate(results):
        rows = result["rows"]
        label = labels[i] if labels else ("compensated" if result["compensate"] else "uncompensated")
        ax.plot([r["seconds"] for r in rows], [100 * r["test_error"] for r in rows], "o-", ms=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("time after programming (s)")
    ax.set_ylabel("test error (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("conductance drift after training", fontsize=9)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)


