"""The report of ``neurosim chip``: report.json, report.md (plots as PNGs beside it) and report.html.

Everything is rendered from one summary (``report.json``, built by ``neurosim.studies.chip`` from
the runs' result.json and metrics.jsonl), so the three files always say the same. The page is a
list of blocks (headings, paragraphs, tables, figures, code), each rendered once as Markdown and
once as HTML; report.html holds its plots as base64 PNGs and needs no other file, font or script.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from neurosim.io import atomic_write, atomic_write_json, atomic_write_text

NUMBER = re.compile(r"^([-+]?[\d.,]+(e[-+]?\d+)?( ± [\d.,]+(e[-+]?\d+)?)?%?( J)?|-|n/a|\d+/\d+)$")
"""A table cell that is a number (right-aligned in the HTML)."""
FILES = {"html": "report.html", "md": "report.md", "json": "report.json"}
PLOTS = {"errors": "report_test_error.png", "curves": "report_curves.png", "pulses": "report_pulses.png",
         "responses": "report_pulse_response.png"}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #1b1f24; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } td.n { text-align: right; }
tr.ideal td { background: #f7faf7; font-weight: 600; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; border-radius: 4px; white-space: pre-wrap;
      word-break: break-all; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #57606a; } .note { color: #57606a; font-size: 0.92em; }
"""


def write_report(out_dir: Path, summary: dict[str, Any]) -> dict[str, Path]:
    """Write report.json, the plots, report.md and report.html into ``out_dir``; their paths."""
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / FILES["json"], summary)
    plots = draw_plots(out_dir, summary)
    blocks = page(summary, plots)
    atomic_write_text(out_dir / FILES["md"], to_markdown(blocks))
    atomic_write_text(out_dir / FILES["html"], to_html(blocks, summary["title"], out_dir))
    return {kind: out_dir / name for kind, name in FILES.items()}


# --------------------------------------------------------------------------- numbers as text


def pct(s: dict[str, Any] | None) -> str:
    """An error (a fraction) in percent: 12.34%, or 12.34 ± 0.56% over several seeds."""
    if s is None:
        return "-"
    return f"{100 * s['mean']:.2f}%" if s["n"] == 1 else f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}%"


def points(s: dict[str, Any] | None) -> str:
    """A difference of errors in percentage points: +1.23, or +1.23 ± 0.40."""
    if s is None:
        return "-"
    return f"{100 * s['mean']:+.2f}" if s["n"] == 1 else f"{100 * s['mean']:+.2f} ± {100 * s['std']:.2f}"


def count(s: dict[str, Any] | None, spec: str = ",.0f") -> str:
    if s is None:
        return "-"
    return format(s["mean"], spec) if s["n"] == 1 else f"{format(s['mean'], spec)} ± {format(s['std'], spec)}"


def energy(s: dict[str, Any] | None, stated: bool) -> str:
    if not stated:
        return "n/a"
    if s is None:
        return "-"
    return f"{s['mean']:.3g} J" if s["n"] == 1 else f"{s['mean']:.3g} ± {s['std']:.2g} J"


def pulses_text(value: float) -> str:
    """A number of pulses: 1,000,000 up to ten million, 3e+10 beyond."""
    return f"{value:,.0f}" if value < 1e7 else f"{value:.3g}"


def format_table(summary: dict[str, Any]) -> str:
    """The plain-text table ``neurosim chip`` prints: one line per estimator and device."""
    header = ["estimator", "device", "test err", "best", "gap to ideal", "pulses/device mean", "max", "energy",
              "status"]
    devices = {d["label"]: d for d in summary["devices"]}
    lines = [header]
    for r in summary["rows"]:
        ideal = r["ideal"]
        lines.append([r["estimator"], r["device"], pct(r["test_error"]), pct(r["best_test_error"]),
                      points(r["gap_to_ideal"]), "-" if ideal else count(r["pulses_per_device_mean"], ".3g"),
                      "-" if ideal else count(r["pulses_per_device_max"]),
                      "-" if ideal else energy(r["energy_joules"], bool(devices[r["device"]]["energy_per_pulse"])),
                      r["status"]])
    widths = [max(len(str(c)) for c in column) for column in zip(*lines)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines)


# --------------------------------------------------------------------------- the page


def page(summary: dict[str, Any], plots: dict[str, Path]) -> list[tuple]:
    """The report as blocks: ('h1'|'h2'|'p'|'note', text), ('table', header, rows, ideal_rows),
    ('figure', path, caption), ('code', text), ('details', summary, text)."""
    devices = {d["label"]: d for d in summary["devices"]}
    estimators = summary["estimators"]
    seeds = summary["seeds"]
    blocks: list[tuple] = [("h1", summary["title"])]
    for e in estimators:
        samples = f"the first {e['train_subset']:,} training samples" if e["train_subset"] else "the whole training set"
        blocks.append(("p", f"**{e['label']}** (`{e['config']}`, estimator `{e['estimator']}`): {e['epochs']} "
                            f"epoch{'s' if e['epochs'] != 1 else ''} on {samples} of `{e['dataset']}`, "
                            f"{len(e['seeds'])} seed{'s' if len(e['seeds']) != 1 else ''} "
                            f"({', '.join(map(str, e['seeds']))}). {_verdict(summary, e['label'])}"))
    blocks.append(("note", "Errors are test errors after the last epoch (final) and the lowest after any epoch "
                           "(best); the gap to ideal is the device's final test error minus that of ideal synapses "
                           "with the same estimator and seed, in percentage points. "
                           + ("With several seeds every cell is the mean ± standard deviation over the seeds. "
                              if seeds > 1 else "")
                           + "Ideal synapses are always run as the baseline. Every number is read from the runs' "
                             "own `result.json` and `metrics.jsonl` (all of them in `report.json`)."))

    blocks.append(("h2", "Test error"))
    rows, ideal_rows = [], []
    for r in summary["rows"]:
        if r["ideal"]:
            ideal_rows.append(len(rows))
        rows.append([r["estimator"], r["device"], pct(r["test_error"]), pct(r["best_test_error"]),
                     points(r["gap_to_ideal"]), pct(r["train_error"]), f"{r['done']}/{r['runs']}", r["status"]])
    blocks.append(("table", ["estimator", "device", "final test error", "best test error", "gap to ideal (points)",
                             "train error", "runs done", "status"], rows, ideal_rows))
    if "errors" in plots:
        blocks.append(("figure", plots["errors"], "Final test error per device and estimator"
                       + (" (mean and standard deviation over seeds)" if seeds > 1 else "") + "."))
    if "curves" in plots:
        blocks.append(("figure", plots["curves"], "Test error after each epoch (metrics.jsonl of each run"
                       + (", mean over seeds, band: ± one standard deviation" if seeds > 1 else "")
                       + "); ideal synapses dashed."))

    device_rows = [r for r in summary["rows"] if not r["ideal"]]
    if device_rows:
        blocks.append(("h2", "Pulses and write energy"))
        rows = []
        for r in device_rows:
            d = devices[r["device"]]
            rows.append([r["estimator"], r["device"], count(r["pulses"]), count(r["pulses_up"]),
                         count(r["pulses_down"]), count(r["pulses_per_device_mean"], ".3g"),
                         count(r["pulses_per_device_max"]),
                         pulses_text(d["endurance"]) if d["endurance"] else "not stated",
                         f"{100 * r['endurance_used']:.3g}%" if r["endurance_used"] is not None else "-",
                         energy(r["energy_joules"], bool(d["energy_per_pulse"]))])
        blocks.append(("table", ["estimator", "device", "pulses", "up", "down", "per device, mean", "per device, max",
                                 "endurance", "max / endurance", "write energy per training"], rows, []))
        blocks.append(("note", "Pulses are counted over the whole training (every weight device, biases stay "
                               "digital). Max / endurance: the most-programmed device's pulses (worst seed) as a "
                               "share of the endurance its preset states; a share of 1% means about 100 such "
                               "trainings before that device wears out. Write energy: the run's `energy_joules` "
                               "(energy_per_pulse x pulses, the cell only), n/a where the preset states no energy "
                               "per pulse."))
        if "pulses" in plots:
            blocks.append(("figure", plots["pulses"], "Programming pulses per device: the most-programmed device "
                                                      "(bar) and the mean over devices (dot), against the "
                                                      "endurance the preset states (red line)."))

    blocks.append(("h2", "Devices"))
    rows = []
    for d in summary["devices"]:
        rows.append([d["label"], d["device"] if d["device"] != d["label"] else "preset",
                     "ideal" if d["ideal"] else d["response"] + (", differential pair"
                                                                  if d["mapping"] == "differential" else ""),
                     "-" if d["ideal"] else (str(d["states"]) if d["states"] else f"step {d['step']:.3g}"),
                     "-" if d["ideal"] else (f"{d['energy_per_pulse']:.3g} J" if d["energy_per_pulse"] else "n/a"),
                     "-" if d["ideal"] else (pulses_text(d["endurance"]) if d["endurance"] else "not stated"),
                     d["description"]])
    blocks.append(("table", ["device", "file", "response", "states", "energy per pulse", "endurance", "description"],
                   rows, []))
    if "responses" in plots:
        blocks.append(("figure", plots["responses"], "Pulse response of each device "
                       "(neurosim.hardware.plots.pulse_response): five devices driven from w_min by up pulses across "
                       "the range, then by as many down pulses."))

    failed = [r for r in summary["runs"] if r["status"] not in ("done",)]
    if failed:
        blocks.append(("h2", "Runs not finished"))
        blocks.append(("table", ["estimator", "device", "seed", "status", "error"],
                       [[r["estimator"], r["device"], str(r["seed"]), r["status"], _clip(r["error"])] for r in failed],
                       []))

    blocks.append(("h2", "Repeat it"))
    blocks.append(("p", "This report (the same command continues an interrupted study and rewrites the report):"))
    blocks.append(("code", summary["command"]))
    blocks.append(("p", "In Python:"))
    blocks.append(("code", f"import neurosim\n\n{summary['python']}"))
    blocks.append(("p", "Each estimator is one sweep, its file written into its folder "
                        "(`neurosim report` prints its table):"))
    blocks.append(("code", "\n".join(e["repeat"] for e in estimators)))
    blocks.append(("details", f"Each run as a neurosim train command ({len(summary['runs'])} runs)",
                   "\n".join(r["train_command"] for r in summary["runs"])))
    blocks.append(("note", f"Written {summary['written']} by neurosim chip."))
    return blocks


def _verdict(summary: dict[str, Any], label: str) -> str:
    rows = [r for r in summary["rows"] if r["estimator"] == label]
    ideal = next((r for r in rows if r["ideal"]), None)
    ranked = sorted((r for r in rows if not r["ideal"] and r["gap_to_ideal"] is not None),
                    key=lambda r: r["gap_to_ideal"]["mean"])
    if ideal is None or ideal["test_error"] is None:
        return "Ideal synapses have no finished run yet."
    text = f"Ideal synapses: {pct(ideal['test_error'])} test error"
    if ranked:
        best = ranked[0]
        text += f"; closest device `{best['device']}` ({pct(best['test_error'])}, {points(best['gap_to_ideal'])} points)"
        if len(ranked) > 1:
            worst = ranked[-1]
            text += f", farthest `{worst['device']}` ({pct(worst['test_error'])}, {points(worst['gap_to_ideal'])} points)"
    return text + "."


def _clip(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


# --------------------------------------------------------------------------- rendering


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind in ("p", "note"):
            out.append(block[1])
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "figure":
            out.append(f"![{block[2]}]({Path(block[1]).name})\n\n*{block[2]}*")
        elif kind == "code":
            out.append(f"```bash\n{block[1]}\n```" if not block[1].startswith("import") else f"```python\n{block[1]}\n```")
        elif kind == "details":
            out.append(f"{block[1]}:\n\n```bash\n{block[2]}\n```")
    return "\n\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_html(blocks: list[tuple], title: str, out_dir: Path) -> str:
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "note":
            body.append(f'<p class="note">{_inline(block[1])}</p>')
        elif kind == "table":
            header, rows, ideal_rows = block[1], block[2], block[3]
            cells = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
            for i, row in enumerate(rows):
                css = ' class="ideal"' if i in ideal_rows else ""
                cells.append(f"<tr{css}>" + "".join(_td(c) for c in row) + "</tr>")
            body.append("\n".join(cells + ["</table>"]))
        elif kind == "figure":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block[2])}">'
                        f"<figcaption>{_inline(block[2])}</figcaption></figure>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
        elif kind == "details":
            body.append(f"<details><summary>{_inline(block[1])}</summary><pre><code>{html.escape(block[2])}"
                        "</code></pre></details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def _td(cell: Any) -> str:
    text = str(cell)
    return f'<td class="n">{html.escape(text)}</td>' if NUMBER.match(text) else f"<td>{html.escape(text)}</td>"


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** as HTML, everything else escaped."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


# --------------------------------------------------------------------------- plots


def draw_plots(out_dir: Path, summary: dict[str, Any]) -> dict[str, Path]:
    """The report's PNGs beside report.md; only those with something to show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn: dict[str, Path] = {}
    for name, draw in (("errors", _errors), ("curves", _curves), ("pulses", _pulses), ("responses", _responses)):
        fig = draw(plt, summary)
        if fig is None:
            (out_dir / PLOTS[name]).unlink(missing_ok=True)  # not left over from an earlier call
            continue
        path = out_dir / PLOTS[name]
        fig.tight_layout()
        atomic_write(path, lambda h, f=fig: f.savefig(h, format="png"), "wb")
        plt.close(fig)
        drawn[name] = path
    return drawn


def _device_order(summary: dict[str, Any], ideal: bool = True) -> list[str]:
    return [d["label"] for d in summary["devices"] if ideal or not d["ideal"]]


def _errors(plt: Any, summary: dict[str, Any]) -> Any:
    rows = {(r["estimator"], r["device"]): r for r in summary["rows"]}
    if not any(r["test_error"] for r in rows.values()):
        return None
    devices = _device_order(summary)
    labels = [e["label"] for e in summary["estimators"]]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(5.5, 0.55 * len(devices) * len(labels) + 2), 3.8), dpi=100)
    for i, label in enumerate(labels):
        xs, means, stds = [], [], []
        for j, device in enumerate(devices):
            s = rows[(label, device)]["test_error"]
            if s is not None:
                xs.append(j + (i - (len(labels) - 1) / 2) * width)
                means.append(100 * s["mean"])
                stds.append(100 * s["std"])
        ax.bar(xs, means, width * 0.95, yerr=stds if summary["seeds"] > 1 else None, capsize=3, label=label,
               color=f"C{i % 10}")
    ax.set_xticks(range(len(devices)), devices, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("final test error (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, title="estimator", title_fontsize=8)
    ax.set_title("Test error on ideal synapses and on each device", fontsize=9)
    return fig


def _curves(plt: Any, summary: dict[str, Any]) -> Any:
    from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

    rows = {(r["estimator"], r["device"]): r for r in summary["rows"]}
    labels = [e["label"] for e in summary["estimators"]]
    if not any(r["curve"] for r in rows.values()):
        return None
    devices = _device_order(summary)
    colors = _colors(plt, len(devices) - 1)
    legend_width = 1.6 if len(devices) > 8 else 0.0
    fig, axes = plt.subplots(1, len(labels), figsize=(4.6 * len(labels) + 0.6 + legend_width, 3.8), dpi=100,
                             squeeze=False)
    for ax, label in zip(axes[0], labels):
        longest = 0
        for j, device in enumerate(devices):
            curve = rows[(label, device)]["curve"]
            if not curve:
                continue
            epochs = list(range(1, len(curve["mean"]) + 1))
            longest = max(longest, len(epochs))
            mean = [100 * v for v in curve["mean"]]
            style = {"color": "k", "ls": "--"} if j == 0 else {"color": colors[j - 1]}  # ideal synapses first
            ax.plot(epochs, mean, marker="o", ms=3, label=device, **style)
            if summary["seeds"] > 1:
                std = [100 * v for v in curve["std"]]
                ax.fill_between(epochs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                                alpha=0.15, color=style["color"])
        ax.set_xlabel("epoch")
        ax.set_ylabel("test error (%)")
        if 0 < longest <= 12:
            ax.set_xticks(range(1, longest + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        values = [v for d in devices if rows[(label, d)]["curve"] for v in rows[(label, d)]["curve"]["mean"]]
        if values and min(values) > 0 and max(values) / min(values) > 3:  # long runs: 50% down to 2%
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(label, fontsize=9)
    last = axes[0][-1]
    if legend_width:  # many devices: one legend beside the last panel (the colours are the same in every panel)
        last.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        last.legend(fontsize=7)
    return fig


def _colors(plt: Any, n: int) -> list[Any]:
    """n distinct colours: matplotlib's ten, or tab20's twenty for more devices."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    cmap = plt.get_cmap("tab20")
    return [cmap(i % 20) for i in range(n)]


def _pulses(plt: Any, summary: dict[str, Any]) -> Any:
    rows = {(r["estimator"], r["device"]): r for r in summary["rows"]}
    devices = _device_order(summary, ideal=False)
    labels = [e["label"] for e in summary["estimators"]]
    if not devices or not any(rows[(e, d)]["pulses_per_device_max"] for e in labels for d in devices):
        return None
    endurance = {d["label"]: d["endurance"] for d in summary["devices"]}
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(5.5, 0.55 * len(devices) * len(labels) + 2), 3.8), dpi=100)
    positive = []
    for i, label in enumerate(labels):
        for j, device in enumerate(devices):
            r = rows[(label, device)]
            x = j + (i - (len(labels) - 1) / 2) * width
            if r["pulses_per_device_max"]:
                top = r["pulses_per_device_max"]["mean"]
                ax.bar(x, top, width * 0.95, color=f"C{i % 10}", label=label if j == 0 else None)
                positive.append(top)
            if r["pulses_per_device_mean"] and r["pulses_per_device_mean"]["mean"] > 0:
                ax.plot(x, r["pulses_per_device_mean"]["mean"], "o", color="k", ms=4,
                        label="mean per device" if i == 0 and j == 0 else None)
                positive.append(r["pulses_per_device_mean"]["mean"])
    first = True
    for j, device in enumerate(devices):
        if endurance[device]:
            ax.hlines(endurance[device], j - 0.45, j + 0.45, colors="r", lw=2, label="endurance" if first else None)
            positive.append(endurance[device])
            first = False
    if positive and min(positive) > 0:
        ax.set_yscale("log")
    ax.set_xticks(range(len(devices)), devices, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("pulses per device")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title("Programming pulses per device over one training", fontsize=9)
    return fig


def _responses(plt: Any, summary: dict[str, Any]) -> Any:
    from neurosim.hardware.plots import pulse_response
    from neurosim.hardware.records import device_config

    devices = [d for d in summary["devices"] if not d["ideal"]]
    if not devices:
        return None
    columns = min(3, len(devices))
    lines = -(-len(devices) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.0 * columns, 2.9 * lines), dpi=100, squeeze=False)
    for ax, d in zip(axes.flat, devices):
        record = device_config(d["device"], d["params"], "synapses.params")
        pulses, traces = pulse_response(record, devices=5)
        for row in traces:
            ax.plot(pulses, row.tolist(), lw=0.9)
        ax.axvline(len(pulses) // 2, color="gray", ls=":", lw=0.8)
        pair = ", one device of a pair" if record.mapping == "differential" else ""
        ax.set_title(f"{d['label']}: {record.response}{pair}", fontsize=9)
        ax.set_xlabel("pulse (up, then down)", fontsize=8)
        ax.set_ylabel("weight", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(devices):]:
        ax.set_visible(False)
    return fig
