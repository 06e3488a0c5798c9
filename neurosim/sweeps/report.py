"""Sweep results: one row per point (results.csv), a table, and the plots a sweep asks for.

Rows are read from the point folders themselves (``result.json``, ``sweep_point.json``) every
time, never from a cache: ``neurosim report DIR`` tells the truth about a sweep that is still
running, crashed, or was copied from a cluster. The sweep's ``sweep.json`` says which points
exist, their swept values and the plots to draw, so the sweep file is not needed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurosim.errors import NeurosimError
from neurosim.io import atomic_write, atomic_write_text
from neurosim.sweeps.locks import live_driver
from neurosim.sweeps.spec import REFERENCE_NAME, PlotSpec, format_value
from neurosim.sweeps.state import MANIFEST, POINT_FILE, point_state, read_json

RESULT_KEYS = ("test_error", "best_test_error", "train_error", "epochs", "wall_seconds", "samples_per_second")
DEVICE_KEYS = ("pulses", "pulses_per_device_mean", "pulses_per_device_max", "energy_joules")


@dataclass
class Report:
    """What ``report`` returns: the rows (as results.csv), the table printed, the plots drawn."""

    out_dir: Path
    rows: list[dict[str, Any]]
    keys: list[str]
    table: str
    plots: list[Path] = field(default_factory=list)


def report(out: str | Path, write_plots: bool = True, metric: str | None = None) -> Report:
    """Read a sweep folder, write results.csv and the sweep's plots; the twin of ``neurosim report``.

    ``metric`` replaces the sweep's metric (test_error unless the sweep file says otherwise) in
    the default plots; plots that name their own metric keep it.
    """
    out_dir = Path(out)
    manifest = _manifest(out_dir)
    rows = collect_rows(out_dir)
    keys = manifest["keys"]
    write_results(out_dir, rows, keys)
    plots: list[Path] = []
    if write_plots:
        specs = [PlotSpec(**p) for p in manifest.get("plots", [])] or default_plots(keys, metric or manifest["metric"])
        if metric:
            specs = [PlotSpec(**{**s.__dict__, "metric": metric}) for s in specs]
        reference = next((r for r in rows if r["point"] == REFERENCE_NAME), None)
        label = manifest.get("reference") or REFERENCE_NAME
        for i, spec in enumerate(specs):
            plots.append(draw(spec, [r for r in rows if r["point"] != REFERENCE_NAME], out_dir, i,
                              reference, label, manifest["name"]))
    return Report(out_dir, rows, keys, format_table(rows, keys), plots)


def _manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST
    try:
        return json.loads(path.read_text())
    except OSError:
        raise NeurosimError(f"{out_dir} is not a sweep folder (no sweep.json; run neurosim sweep first)") from None
    except ValueError as exc:
        raise NeurosimError(f"{path} is not readable JSON ({exc})") from None


def collect_rows(out_dir: Path, only: str | None = None) -> list[dict[str, Any]]:
    """One row per point of the sweep (or only the point named ``only``), read from its folder.

    status: done, failed, diverged, running (a live sweep process runs it), interrupted (its
    run started but the sweep process that ran it is dead: killed, or stopped; the next sweep
    resumes it) or pending.
    """
    manifest = _manifest(out_dir)
    driver = live_driver(out_dir)
    rows = []
    for point in manifest["points"]:
        if only is not None and point["name"] != only:
            continue
        run_dir = out_dir / "points" / point["name"]
        state = point_state(run_dir, point["epochs"])
        record = read_json(run_dir / POINT_FILE)
        if state == "pending" and record.get("status") == "running":
            state = _started_state(record, driver)
        row: dict[str, Any] = {"point": point["name"], **point["values"], "status": state}
        if state == "done":
            result = read_json(run_dir / "result.json")
            row.update({k: result.get(k) for k in RESULT_KEYS})
            row.update({k: v for k, v in result.get("synapses", {}).items() if k in DEVICE_KEYS})
        row["attempts"] = record.get("attempts", 0)
        row["error"] = record.get("error", "") if state in ("failed", "diverged") else ""
        rows.append(row)
    return rows


def _started_state(record: dict[str, Any], driver: dict[str, Any] | None) -> str:
    """A point whose record says running: running if the live sweep started it, else interrupted
    (pending when a live sweep, which will resume it, started after it)."""
    if driver is None:
        return "interrupted"
    return "running" if record.get("started", 0) >= driver.get("started", 0) - 1 else "pending"


def columns(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """results.csv columns: point, swept values, status, results, device counts when any, attempts, error."""
    device = [k for k in DEVICE_KEYS if any(k in r for r in rows)]
    return ["point", *keys, "status", *RESULT_KEYS, *device, "attempts", "error"]


def write_results(out_dir: Path, rows: list[dict[str, Any]], keys: list[str]) -> Path:
    """DIR/results.csv, atomically (a reader never sees half a file). Lists are written as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    names = columns(rows, keys)
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in names])
    path = out_dir / "results.csv"
    atomic_write_text(path, buffer.getvalue())
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """A plain-text table: swept values, status, errors in %, epochs, time, device pulses/energy."""
    shorts = _short_names(keys)
    device = [k for k in ("pulses", "energy_joules") if any(r.get(k) is not None for r in rows)]
    header = [*shorts, "status", "test err", "best", "epochs", "wall s", *device, "error"]
    lines = []
    for row in rows:
        values = [format_value(row[k]) if k in row else "-" for k in keys]
        if row["point"] == REFERENCE_NAME and values:
            values[0] = REFERENCE_NAME
        cells = [*values, row["status"], _pct(row.get("test_error")), _pct(row.get("best_test_error")),
                 _plain(row.get("epochs")), _plain(row.get("wall_seconds"), ".1f"),
                 *[_plain(row.get(k), ",.0f" if k == "pulses" else ".3g") for k in device],
                 _clip(row.get("error") or "")]
        lines.append(cells)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines)]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines]
    return "\n".join(out)


def _short_names(keys: list[str]) -> list[str]:
    lasts = [k.rsplit(".", 1)[-1] for k in keys]
    return [last if lasts.count(last) == 1 else key for key, last in zip(keys, lasts)]


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _plain(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _clip(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


# --------------------------------------------------------------------------- plots


def default_plots(keys: list[str], metric: str) -> list[PlotSpec]:
    """Without a report section: metric vs the first axis (a line per value of the second), and a
    heat map when there are two axes. Seeds are averaged over, never an axis of a plot."""
    axes = [k for k in keys if k != "seed"]
    if not axes:
        return []
    plots = [PlotSpec("line", axes[0], None, axes[1] if len(axes) > 1 else None, metric)]
    if len(axes) == 2:
        plots.append(PlotSpec("heatmap", axes[0], axes[1], metric=metric))
    return plots


def draw(spec: PlotSpec, rows: list[dict[str, Any]], out_dir: Path, index: int,
         reference: dict[str, Any] | None, label: str, title: str) -> Path:
    """Draw one plot of the report into DIR and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "done" and r.get(spec.metric) is not None]
    name = (f"heatmap_{spec.metric}_{_file_key(spec.x)}_{_file_key(spec.y)}" if spec.kind == "heatmap" else
            f"{spec.metric}_vs_{_file_key(spec.x)}" + (f"_by_{_file_key(spec.lines)}" if spec.lines else ""))
    path = out_dir / f"plot{index + 1}_{name}.png"
    if spec.kind == "heatmap":
        fig = _heatmap(plt, spec, rows, done)
    else:
        fig = _lines(plt, spec, done, reference, label)
    failed = sum(1 for r in rows if r["status"] in ("failed", "diverged"))
    notes = f" ({failed} failed/diverged points left out)" if failed else ""
    fig.axes[0].set_title(f"{title}{notes}", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)
    return path


def _lines(plt: Any, spec: PlotSpec, done: list[dict[str, Any]], reference: dict[str, Any] | None,
           label: str) -> Any:
    scale, unit = _scale(spec.metric)
    xs = _ordered(r.get(spec.x) for r in done)
    numeric = all(_is_number(x) for x in xs)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    groups = _ordered(r.get(spec.lines) for r in done) if spec.lines else [None]
    for i, group in enumerate(groups):
        points = []
        for x in xs:
            values = [r[spec.metric] * scale for r in done
                      if _same(r.get(spec.x), x) and (spec.lines is None or _same(r.get(spec.lines), group))]
            if values:
                points.append((x if numeric else xs.index(x), _mean(values), _std(values), len(values)))
        if not points:
            continue
        px, mean, std, count = zip(*points)
        text = f"{_short_names([spec.lines])[0]} = {format_value(group)}" if spec.lines else spec.metric
        ax.errorbar(px, mean, yerr=std if max(count) > 1 else None, fmt="o-", ms=4, capsize=3, label=text,
                    color=f"C{i % 10}")
    if reference is not None and reference.get("status") == "done" and reference.get(spec.metric) is not None:
        value = reference[spec.metric] * scale
        ax.axhline(value, color="k", ls="--", lw=1, label=f"{label}: {value:.3g}{unit}")
    if not numeric:
        ax.set_xticks(range(len(xs)), [format_value(x) for x in xs], rotation=30, fontsize=8)
    logx = spec.logx if spec.logx is not None else (
        numeric and xs and min(xs) > 0 and max(xs) / min(xs) > 20)
    if logx and numeric:
        ax.set_xscale("log")
    if numeric and 0 < len(xs) <= 12:  # label the swept values themselves, not a generic scale
        from matplotlib.ticker import NullFormatter

        ax.set_xticks(xs, [format_value(x) for x in xs], fontsize=8)
        ax.xaxis.set_minor_formatter(NullFormatter())
    if spec.logy:
        ax.set_yscale("log")
    ax.set_xlabel(spec.x)
    ax.set_ylabel(f"{spec.metric}{' (%)' if unit else ''}")
    ax.grid(True, which="both", alpha=0.3)
    repeats = max((sum(1 for r in done if _same(r.get(spec.x), x)) for x in xs), default=0)
    if repeats > len(groups):
        ax.text(0.01, 0.01, "mean ± std over the other swept values/seeds", transform=ax.transAxes, fontsize=7,
                va="bottom")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def _heatmap(plt: Any, spec: PlotSpec, rows: list[dict[str, Any]], done: list[dict[str, Any]]) -> Any:
    import numpy

    scale, unit = _scale(spec.metric)
    xs = _ordered(r.get(spec.x) for r in rows)
    ys = _ordered(r.get(spec.y) for r in rows)
    grid = numpy.full((len(ys), len(xs)), numpy.nan)
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            values = [r[spec.metric] * scale for r in done if _same(r.get(spec.x), x) and _same(r.get(spec.y), y)]
            if values:
                grid[j, i] = _mean(values)
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 2.5, 0.6 * len(ys) + 2), dpi=100)
    image = ax.imshow(grid, cmap="viridis_r", aspect="auto", origin="lower")
    for j in range(len(ys)):
        for i in range(len(xs)):
            text = "failed" if math.isnan(grid[j, i]) else f"{grid[j, i]:.3g}"
            ax.text(i, j, text, ha="center", va="center", fontsize=8,
                    color="w" if not math.isnan(grid[j, i]) and grid[j, i] > numpy.nanmean(grid) else "k")
    ax.set_xticks(range(len(xs)), [format_value(x) for x in xs], rotation=30, fontsize=8)
    ax.set_yticks(range(len(ys)), [format_value(y) for y in ys], fontsize=8)
    ax.set_xlabel(spec.x)
    ax.set_ylabel(spec.y)
    fig.colorbar(image, ax=ax, label=f"{spec.metric}{' (%)' if unit else ''}")
    return fig


def _scale(metric: str) -> tuple[float, str]:
    return (100.0, "%") if metric.endswith("error") else (1.0, "")


def _ordered(values: Any) -> list[Any]:
    """Distinct values in first-seen order (the sweep's order), numbers sorted."""
    seen: list[Any] = []
    for value in values:
        if not any(_same(value, s) for s in seen):
            seen.append(value)
    if seen and all(_is_number(v) for v in seen):
        seen.sort()
    return seen


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _file_key(key: str | None) -> str:
    return (key or "").rsplit(".", 1)[-1]
