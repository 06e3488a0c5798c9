"""The Theorem-1 study (``neurosim gdu``): a config's batch and network through the check, its
records (gdu.json), table and figure (Fig. 1b, gdu.png).

The check itself, EP's processes against BPTT's on one batch, with the derivation of why they
pair up, is ``neurosim.studies.theorem1``; its names are importable from here too.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from neurosim.config import Config, load_config
from neurosim.errors import ConfigError
from neurosim.core.models import LayeredModel
from neurosim.studies.theorem1 import (SIGN_TOL, Check, Processes, Quantity, bptt_processes, compare, compare_all,
                                       ep_processes, free_trajectory, quantities, run_check)


# --------------------------------------------------------------------------- from a config


@dataclass
class GDUResult:
    """What ``gdu`` returns; ``records`` is also written to ``out_dir/gdu.json``."""

    records: list[dict[str, Any]]
    free_residual: float
    out_dir: Path | None
    traces: dict[str, Any] = field(default_factory=dict)
    """For the figure: per eta and quantity, the chosen entries' DeltaEP and -grad over t."""
    total_cosine: float | None = None
    """Check.total_cosine at eta = 0: one number for how well the network satisfies Theorem 1."""

    @property
    def table(self) -> str:
        return format_table(self.records)


def gdu(config: Config | str | Path | Mapping[str, Any], out: str | Path | None = None,
        overrides: list[str] | None = None, etas: Sequence[float] | None = None,
        batch_size: int | None = None, batch: tuple[Tensor, Tensor] | None = None,
        write: bool = True, progress: bool = True) -> GDUResult:
    """Run the Theorem-1 check a config describes; the Python twin of ``neurosim gdu``.

    ``config`` is a Config, a YAML path, a shipped experiment name or a mapping (``overrides``:
    ``key=value`` strings as for ``--set``). T, K, beta and symmetric come from ``estimator``;
    the C-EP rates from ``etas``, else the config's ``gdu.etas`` (eta = 0, standard EP, is
    always checked first); the batch (the first ``batch_size`` training samples, default
    ``gdu.batch_size``, else ``train.batch_size``) from ``data``, unless ``batch`` = (x, labels)
    is given. Writes gdu.json, gdu.png and config.yaml to ``out`` (default runs/<name>).
    """
    from neurosim.data import load_dataset
    from neurosim.core.network import build_network, configure_torch

    if not isinstance(config, Config):
        config = load_config(config, overrides)
    elif overrides:
        config = load_config(config.to_dict(), overrides)
    settings = getattr(config, "gdu", None)
    eta_list = _etas(etas if etas is not None else getattr(settings, "etas", None) or [])
    size = batch_size or getattr(settings, "batch_size", None) or config.train.batch_size
    device, dtype = configure_torch(config)
    if batch is None:
        data = load_dataset(config.data.name, "train", root=config.data.dir, device=device, dtype=dtype,
                            subset=size, download=config.data.download)
        x, labels, classes = data.images, data.labels, data.num_classes
    else:
        x, labels = batch[0].to(device=device, dtype=dtype), batch[1].to(device)
        classes = config.circuit.layers[-1]
    if x.shape[1] != config.circuit.input_size:
        raise ConfigError("circuit.layers", config.circuit.layers, f"an input of {x.shape[1]} values")
    y = torch.nn.functional.one_hot(labels, classes).to(dtype)
    network = build_network(config, device, dtype)
    est = config.estimator
    check = run_check(network.model, network.cost, x, y, est.T, est.K, est.beta, eta_list, est.symmetric,
                      tol=est.tol)
    seed = getattr(settings, "seed", config.seed)
    per_panel = getattr(settings, "synapses_per_layer", 5)
    traces = _traces(check, network.model, per_panel, torch.Generator().manual_seed(seed))
    out_dir = None
    if write:
        from neurosim.config import save_config
        from neurosim.io import atomic_write_json

        out_dir = Path(out) if out is not None else Path("runs") / config.name
        atomic_write_json(out_dir / "gdu.json", check.records)
        save_config(config, out_dir / "config.yaml")
        plot_gdu(traces, out_dir / "gdu.png",
                 title=f"{config.name}: beta={est.beta:g}{' (symmetric)' if est.symmetric else ''}, "
                       f"T={est.T}, K={est.K}, |s_T - s_T-1| = {check.free_residual:.1e}")
    if progress and check.free_residual > 1e-6:
        print(f"neurosim gdu: warning: the free phase has not converged (|s_T - s_T-1| = "
              f"{check.free_residual:.1e}); Theorem 1 assumes it has: raise estimator.T", file=sys.stderr)
    return GDUResult(check.records, check.free_residual, out_dir, traces, check.total_cosine(0.0))


def _etas(values: Sequence[float]) -> list[float]:
    """0 first (standard EP), then the C-EP rates in the order given, without repeats."""
    etas = [0.0]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError("gdu.etas", list(values), "a list of non-negative numbers")
        if float(value) not in etas:
            etas.append(float(value))
    return etas


# --------------------------------------------------------------------------- reporting


def format_table(records: list[dict[str, Any]]) -> str:
    """The records as a text table, one row per (eta, quantity)."""
    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"{'eta':>9}  {'quantity':<9}{'rel_error':>11}{'cosine':>13}{'sign_agree':>12}"]
    for r in records:
        lines.append(f"{r['eta']:>9.3g}  {r['name']:<9}{number(r['rel_error'], '>11.3e')}"
                     f"{number(r['cosine'], '>13.8f')}{number(r['sign_agreement'], '>12.4f')}")
    return "\n".join(lines)


def _traces(check: Check, model: LayeredModel, per_panel: int, generator: torch.Generator) -> dict[str, Any]:
    """A few random synapses per weight matrix and neurons per state layer, the same for all etas.

    Entries are drawn among those whose BPTT process is at least 1% of the largest of the
    panel, so that the figure does not show the exactly-zero rows of never-active inputs.
    """
    names_p, names_s = quantities(model, len(check.minus_grad.states))
    panels = [(q, i, "params") for i, q in enumerate(names_p) if q.kind == "W"]
    panels += [(q, i, "states") for i, q in enumerate(names_s)]
    chosen: dict[str, Tensor] = {}
    for q, i, where in panels:
        process = getattr(check.minus_grad, where)[i].flatten(1)
        size = process.norm(dim=0)
        candidates = torch.nonzero(size >= 0.01 * size.max()).flatten().cpu() if size.numel() else size
        pick = torch.randperm(len(candidates), generator=generator)[:per_panel]
        chosen[q.name] = candidates[pick]
    traces: dict[str, Any] = {"t": list(range(check.minus_grad.params[0].shape[0])), "panels": [], "rows": []}
    for q, _, _ in panels:
        traces["panels"].append(q.name)
    for eta, ep in check.ep.items():
        row = {"eta": eta, "ep": {}, "bptt": {}}
        for q, i, where in panels:
            index = chosen[q.name].to(getattr(ep, where)[i].device)
            row["ep"][q.name] = getattr(ep, where)[i].flatten(1)[:, index].cpu().tolist()
            row["bptt"][q.name] = getattr(check.minus_grad, where)[i].flatten(1)[:, index].cpu().tolist()
        traces["rows"].append(row)
    return traces


def plot_gdu(traces: dict[str, Any], path: Path, title: str = "") -> None:
    """Fig. 1b: DeltaEP (solid) and -grad BPTT (dashed) over t, a colour per synapse or neuron,
    a panel per quantity, a row per eta; written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurosim.io import atomic_write

    panels, rows, t = traces["panels"], traces["rows"], traces["t"]
    fig, axes = plt.subplots(len(rows), len(panels), figsize=(3.2 * len(panels), 2.6 * len(rows)),
                             dpi=100, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r, row in enumerate(rows):
        for c, name in enumerate(panels):
            ax = axes[r][c]
            ep = list(zip(*row["ep"][name])) if row["ep"][name] else []
            bptt = list(zip(*row["bptt"][name])) if row["bptt"][name] else []
            for k, (a, b) in enumerate(zip(ep, bptt)):
                colour = colours[k % len(colours)]
                ax.plot(t, a, "-", color=colour, lw=1.5)
                ax.plot(t, b, "--", color=colour, lw=1.5)
            ax.set_title(f"{name}, eta={row['eta']:g}", fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
            if r == len(rows) - 1:
                ax.set_xlabel("t", fontsize=8)
    axes[0][0].plot([], [], "k-", label="DeltaEP")
    axes[0][0].plot([], [], "k--", label="-grad BPTT")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)


__all__ = ["Processes", "Quantity", "Check", "GDUResult", "free_trajectory", "bptt_processes", "ep_processes",
           "quantities", "compare", "compare_all", "run_check", "gdu", "format_table", "plot_gdu", "SIGN_TOL"]
