"""Figures people would rather look at than read: error curves over epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_error_curves(series: list[dict[str, Any]], path: Path, title: str = "",
                      size: tuple[float, float] = (5, 3.5), legend_size: int = 10, columns: int = 1) -> None:
    """Error curves (%) per epoch on a log scale, written atomically as a PNG.

    Each series is {"label", "errors" (fractions, one per epoch from 1), "style" (matplotlib
    format string, optional), and any keyword of ``Axes.plot``}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurosim.io import atomic_write

    fig, ax = plt.subplots(figsize=size, dpi=100)
    for entry in series:
        extra = {k: v for k, v in entry.items() if k not in ("label", "errors", "style")}
        errors = entry["errors"]
        ax.plot(range(1, len(errors) + 1), [100 * e for e in errors], entry.get("style", "o-"),
                label=entry["label"], **{"ms": 3, **extra})
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size, ncol=columns)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)


def plot_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Train and test error (%) of one run per epoch."""
    plot_error_curves([{"label": "train", "errors": [r["train_error"] for r in history]},
                       {"label": "test", "errors": [r["test_error"] for r in history], "style": "s-"}],
                      path, title)
