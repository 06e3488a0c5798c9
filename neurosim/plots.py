"""Figures people would rather look at than read: learning curves of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Train and test error (%) per epoch, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import atomic_write

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    ax.plot(epochs, [100 * r["train_error"] for r in history], "o-", label="train", ms=3)
    ax.plot(epochs, [100 * r["test_error"] for r in history], "s-", label="test", ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)
