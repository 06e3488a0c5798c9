"""results/*.md: the results pages, from experiments/results.

Each page is a template in docs/gen/results/ (the discussion, moved from the README and the old
docs pages of commit 926edf9) whose tables are filled here from the result files: run folders
(result.json, config.yaml, metrics.jsonl), the studies' summary.json / study.json / gdu.json,
bench_*.json and the sweeps' results.csv. docs/gen/results/sources.yaml says which command made
each result and on what machine; every `--set key=value` in it is checked against the run's
config.yaml. A missing or malformed file, or a command that disagrees with its config, fails the
build. Templates use Jinja2 with << >> and <% %> delimiters (markdown keeps {{ and {#).
"""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path
from typing import Any

import jinja2

from common import RESULTS, ROOT, GenError, cell, read_json, read_yaml, table

HERE = Path(__file__).resolve().parent / "results"
PAGES = ["index", "training", "cep", "fig1c", "gdu", "speed", "brian2", "spiking", "devices", "device_fits",
         "sweeps"]
NAMES = {"ep": "EP", "cep": "C-EP", "vf": "VF", "cvf": "C-VF", "bptt": "BPTT"}


def _sources() -> dict:
    data = read_yaml(HERE / "sources.yaml")
    if not isinstance(data, dict) or set(data) != {"runs", "studies"}:
        raise GenError("docs/gen/results/sources.yaml: expected the keys runs and studies")
    return data


SOURCES = _sources()


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def num(x: float) -> str:
    return f"{x:,.0f}"


# ---------------------------------------------------------------- run folders

class Run:
    """One run folder: result.json, config.yaml and metrics.jsonl."""

    def __init__(self, folder: str | Path):
        self.path = RESULTS / folder
        self.name = str(folder)
        self.result = read_json(self.path / "result.json")
        self.config = read_yaml(self.path / "config.yaml")
        try:
            lines = (self.path / "metrics.jsonl").read_text().splitlines()
            self.history = [json.loads(line) for line in lines if line.strip()]
        except FileNotFoundError as exc:
            raise GenError(f"missing {self.path / 'metrics.jsonl'}") from exc
        except json.JSONDecodeError as exc:
            raise GenError(f"malformed {self.path / 'metrics.jsonl'}: {exc}") from exc
        if not self.history:
            raise GenError(f"empty {self.path / 'metrics.jsonl'}")
        for key in ("test_error", "best_test_error", "train_error", "epochs", "machine"):
            if key not in self.result:
                raise GenError(f"{self.path / 'result.json'} has no {key!r}")

    def get(self, dotted: str) -> Any:
        value: Any = self.config
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                raise GenError(f"{self.path / 'config.yaml'} has no key {dotted!r}")
            value = value[part]
        return value

    def last5(self) -> float:
        errors = [r["test_error"] for r in self.history[-5:]]
        return sum(errors) / len(errors)

    def per_epoch_seconds(self) -> float:
        return sum(r["seconds"] for r in self.history) / len(self.history)

    def machine(self, conditions: str = "") -> str:
        m = self.result["machine"]
        threads = m.get("torch_threads")
        where = f"{m['cpu_count']}-core {m.get('device', 'cpu').upper()}"
        if threads:
            where += f", {threads} thread{'s' if threads > 1 else ''}"
        return where + (f", {conditions}" if conditions else "")

    def network(self) -> str:
        c = self.config["circuit"]
        angle = f", {c['initial_angle']:g}° init" if c["dynamics"] == "vector_field" else ""
        spiking = ", spiking" if self.config.get("backend", {}).get("name") == "brian2-spiking" else ""
        return f"{'-'.join(map(str, c['layers']))} {c['dynamics']}{angle}{spiking}"

    def phases(self) -> str:
        e = self.config["estimator"]
        text = f"T={e['T']} K={e['K']}"
        if e["name"] != "bptt":
            sign = "±" if e.get("random_sign") or e.get("symmetric") else ""
            text += f" beta={sign}{e['beta']:g}"
        return text

    def estimator(self) -> str:
        name = NAMES.get(self.get("estimator.name"), self.get("estimator.name"))
        backend = self.config.get("backend", {}).get("name", "torch")
        if backend == "brian2":
            return f"{name} (Brian2, online)"
        if backend == "brian2-spiking":
            return f"{name} (Brian2 spikes, online)"
        return name


def check_command(run: Run, command: str) -> None:
    """Every --set key=value of ``command`` must hold in the run's config.yaml."""
    words = shlex.split(command)
    for flag, value in zip(words, words[1:]):
        if flag != "--set":
            continue
        key, _, raw = value.partition("=")
        expected = read_yaml_text(raw)
        actual = run.get(key)
        if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
            same = abs(float(expected) - float(actual)) <= 1e-12 * max(1.0, abs(float(actual)))
        else:
            same = expected == actual
        if not same:
            raise GenError(f"sources.yaml: the command of {run.name} sets {key}={raw!r} "
                           f"but its config.yaml has {actual!r}")


def read_yaml_text(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def run_command(name: str) -> tuple[str, str]:
    """(command, machine conditions) of a run folder, from sources.yaml."""
    entry = SOURCES["runs"].get(name)
    if entry is None or "command" not in entry:
        raise GenError(f"docs/gen/results/sources.yaml has no command for run {name!r}")
    command = entry["command"]
    if command == "run_all":
        command = f"bash experiments/run_all.sh ../shared/data {name}"
    return command, entry.get("conditions", "")


def runs(names: list[str]) -> str:
    """The main results table (as experiments/summarize.py), with each row's command and machine."""
    rows, commands = [], []
    for name in names:
        r = Run(name)
        command, conditions = run_command(name)
        check_command(r, command)
        note = SOURCES["runs"][name].get("note")
        phases = f"{r.phases()}, {note}" if note else r.phases()
        rows.append([f"`{name}`", r.network(), r.estimator(), phases, r.result["epochs"],
                     f"**{100 * r.result['test_error']:.2f}**", f"{100 * r.last5():.2f}",
                     f"{100 * r.result['best_test_error']:.2f}", f"{100 * r.result['train_error']:.2f}",
                     f"{r.per_epoch_seconds():.0f} s", r.machine(conditions)])
        commands.append([f"`{name}`", f"`{command}`"])
    header = ["run", "network", "estimator", "phases", "epochs", "test error % (final)", "mean of last 5",
              "best", "train error %", "time/epoch", "machine"]
    return (table(header, rows) + "\n??? note \"The command of every row\"\n\n"
            + indent(table(["run", "command"], commands)) + "\n")


def indent(text: str) -> str:
    return "".join("    " + line + "\n" if line else "\n" for line in text.splitlines())


def epochs_table(names: list[str]) -> str:
    """Test error after each epoch, one column per run."""
    loaded = [Run(n) for n in names]
    longest = max(len(r.history) for r in loaded)
    rows = []
    for i in range(longest):
        rows.append([i + 1] + [pct(r.history[i]["test_error"]) if i < len(r.history) else "" for r in loaded])
    return table(["epoch"] + [f"`{n}`" for n in names], rows)


def folder_runs(folder: str, columns: str = "default") -> str:
    """Every run folder under experiments/results/FOLDER: its main settings and errors."""
    base = RESULTS / folder
    names = sorted(p.parent.relative_to(RESULTS).as_posix() for p in base.glob("**/result.json"))
    if not names:
        raise GenError(f"no run folders under {base}")
    rows = []
    for name in names:
        r = Run(name)
        speed = r.history[-1].get("brian2_examples_per_cpu_second") or r.result.get("samples_per_second")
        rows.append([f"`{Path(name).relative_to(folder)}`", r.estimator(), r.phases(),
                     f"window {r.get('backend.window')}" if r.config.get("backend", {}).get("name") == "brian2-spiking" else "",
                     r.result["epochs"], pct(r.result["test_error"]), pct(r.result["train_error"]),
                     num(speed) if speed else "", r.machine()])
    return table(["run", "estimator", "phases", "spiking window", "epochs", "test error", "train error",
                  "examples/s (per CPU s for Brian2)", "machine"], rows)


LONG_RUNS = [("mnist_conv_ep_tol", "run", "P-conv EP, 40 epochs", "training.md"),
             ("mnist_conv_bptt", "run", "P-conv BPTT, 40 epochs", "training.md"),
             ("chip_15ep_cep", "sweep", "every preset, C-EP-1h both recipes, 15 epochs", "devices.md"),
             ("chip_full", "sweep", "ideal, ecram, taox_tio2, PCM pair at the papers' length", "devices.md")]
"""The runs longer than a sitting (``experiments/long_runs.sh``): folder, kind, what, results page."""


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch of a checkpoint published beside a long run's outputs (``experiments/publish_run.py``),
    None where there is none."""
    if not path.is_file():
        return None
    import torch  # only here: the other generators read text

    return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])


def long_runs() -> str:
    """How far each long run had got when its small outputs were last published: epochs of a run
    (metrics.jsonl against train.epochs), points of a sweep by status (results.csv)."""
    rows = []
    for folder, kind, what, page in LONG_RUNS:
        path = RESULTS / folder
        if kind == "run":
            if not (path / "metrics.jsonl").is_file():
                rows.append([what, "not started", ""])
                continue
            history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
            total = read_yaml(path / "config.yaml")["train"]["epochs"]
            state = "done" if (path / "result.json").is_file() else f"{len(history)} of {total} epochs"
            resumes = checkpoint_epoch(path / "checkpoint.pt")
            if state != "done" and resumes is not None and resumes < len(history):
                state += (f"; continues from the published checkpoint of epoch {resumes} (the machine "
                          f"holding the later epochs was lost; the run repeats them)")
            last = f"test error {pct(history[-1]['test_error'])} (best {pct(min(r['test_error'] for r in history))})" if history else ""
        else:
            if not (path / "results.csv").is_file():
                rows.append([what, "not started", ""])
                continue
            statuses = [r["status"] for r in _csv(folder)]
            state = f"{statuses.count('done')} of {len(statuses)} points done"
            last = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)) if s != "done")
        rows.append([f"[{what}]({page})", state, last])
    return (table(["run", "how far", "last"], rows)
            + "\n\nContinued from session to session with `bash experiments/long_runs.sh DATA`; "
              "`bash experiments/long_runs.sh DATA publish` copies their small outputs here.")


def run_in_progress(folder: str) -> str:
    """A long run still training (copied small outputs: config.yaml, metrics.jsonl, curves.png; no
    result.json yet): its errors epoch by epoch, the time each epoch took and the steps its phases
    used (per sample where ``estimator.tol_scope: sample`` was on), and how far it got."""
    path = RESULTS / folder
    config = read_yaml(path / "config.yaml")
    try:
        history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise GenError(f"{path / 'metrics.jsonl'}: {exc}") from exc
    if not history:
        raise GenError(f"empty {path / 'metrics.jsonl'}")

    def steps(r: dict, phase: str) -> str:
        if f"{phase}_steps_mean" not in r:
            return "fixed"
        text = f"{r[f'{phase}_steps_mean']:.0f}"
        return text + (f" / {r[f'{phase}_sample_steps_mean']:.0f}" if f"{phase}_sample_steps_mean" in r else "")

    rows = [[r["epoch"], pct(r["test_error"]), pct(r["train_error"]), f"{r['train_seconds'] / 60:.1f}",
             f"{(r['seconds'] - r['train_seconds']) / 60:.1f}", steps(r, "free"), steps(r, "nudged"),
             steps(r, "eval")] for r in history]
    best = min(history, key=lambda r: r["test_error"])
    total = config["train"]["epochs"]
    note = (f"\n\n**{len(history)} of {total} epochs when collected**: last test error {pct(history[-1]['test_error'])}, "
            f"best {pct(best['test_error'])} (epoch {best['epoch']}). Steps: mean per batch, then mean per sample "
            f"where each sample stopped on its own (`estimator.tol_scope: sample`).")
    return table(["epoch", "test error", "train error", "training min", "evaluation min", "free steps",
                  "nudged steps", "evaluation steps"], rows) + note


def made_with(study: str) -> str:
    entry = SOURCES["studies"].get(study)
    if entry is None:
        raise GenError(f"docs/gen/results/sources.yaml has no study {study!r}")
    files = entry.get("files", f"experiments/results/{study}")
    return f"*Made with* `{entry['command']}`; *machine:* {entry['machine']}; *files:* `{files}`.\n"


# ---------------------------------------------------------------- studies

def fig1c() -> str:
    study = read_json(RESULTS / "fig1c_cvf" / "study.json")
    rows = []
    for r in study["rows"]:
        final = r.get("final_angle_deg")
        label = f"{r['initial_angle']:g}" if r["run"] != "reference" else "C-EP (tied)"
        angle = "-" if not final else f"{final[0]:.1f}°"
        rows.append([label, f"{r['gdu_angle_deg']:.1f}°", f"{r['gdu_cosine']:.3f}", pct(r["test_error"]), angle])
    return table(["initial angle W vs B^T", "angle(total update, total BPTT gradient)", "cosine",
                  f"test error after {study['rows'][0]['epochs']} epochs", "angle after training"], rows)


def eta_curves() -> str:
    s = read_json(RESULTS / "cep_eta_curves" / "summary.json")
    rows = [[f"{r['scale']:g}" + (" (paper)" if r["scale"] == 1 else ""), pct(r["cep_test_error"]),
             pct(r["ep_test_error"]), f"{r['relative_weight_distance']:.3f}"] for r in s["rows"]]
    return table(["scale", "C-EP test error", "EP test error",
                  f"weight distance ‖W_C-EP − W_EP‖/‖W_EP‖ after {s['epochs']} epochs"], rows)


def cep_feedback(network: str = "after 1 EP epoch") -> str:
    s = read_json(RESULTS / "cep_feedback" / "result.json")
    rows = [r for r in s["rows"] if r["network"] == network]
    if not rows:
        raise GenError(f"cep_feedback/result.json has no rows for network {network!r} "
                       f"(it has {sorted({r['network'] for r in s['rows']})})")
    scales = sorted({r["scale"] for r in rows})
    out = []
    for scale in scales:
        pos = [r for r in rows if r["scale"] == scale and r["beta"] > 0]
        neg = [r for r in rows if r["scale"] == scale and r["beta"] < 0]
        line = [f"{scale:g}x"]
        for group in (pos, neg):
            line += [f"{group[0]['gain'][0]:.3g}", f"{group[0]['cosine'][0]:.3f}"] if group else ["", ""]
        out.append(line)
    return table(["eta / paper's", "beta = +0.2: gain", "cosine", "beta = -0.2: gain", "cosine"], out)


def networks_in_cep_feedback() -> list[str]:
    return sorted({r["network"] for r in read_json(RESULTS / "cep_feedback" / "result.json")["rows"]})


def sign_agreement() -> str:
    s = read_json(RESULTS / "ep_sign_agreement" / "result.json")
    rows = [[f"`{r['experiment']}`", f"{r['beta']:g}", f"{r['cosine_plus_minus']:.3f}",
             f"{r['cosine_plus_small']:.4f}", f"{r['norm_ratio_minus_plus']:.3f}"] for r in s["rows"]]
    return table(["experiment", "|beta|", "cosine(+beta, -beta update)",
                  f"cosine(+beta, beta={s['reference_beta']:g})", "norm ratio -beta / +beta"], rows)


def gdu(names: list[str]) -> str:
    rows = []
    for name in names:
        records = read_json(RESULTS / name / "gdu.json")
        weights = [r for r in records if r["quantity"] == "W" and r["eta"] == 0.0]
        if not weights:
            raise GenError(f"{name}/gdu.json has no eta = 0 weight records")
        etas = sorted({r["eta"] for r in records if r["eta"] > 0})
        w1 = {r["eta"]: r["rel_error"] for r in records if r["name"] == "W_1"}
        rows.append([f"`{name}`", f"{weights[0]['free_residual']:.2g}",
                     ", ".join(f"{r['rel_error']:.2g}" for r in weights),
                     ", ".join(f"{r['cosine']:.8f}" for r in weights),
                     " / ".join(f"({e:g}) {w1[e]:.2g}" for e in etas if e in w1)])
    return table(["config", "free residual", "rel_error (W_1, W_2, ...) at eta=0",
                  "cosine (W_1, W_2, ...) at eta=0", "W_1 rel_error at (eta)"], rows)


def bench(files: list[str], labels: dict[str, str] | None = None, batches: list[int] | None = None) -> str:
    rows = []
    for name in files:
        data = read_json(RESULTS / f"{name}.json")
        if not isinstance(data, list) or not data:
            raise GenError(f"{name}.json: expected a list of bench rows")
        for r in data:
            if batches and r["batch_size"] not in batches:
                continue
            label = f"{'-'.join(map(str, r['layers']))}, T={r['T']}, K={r['K']}"
            if labels and name in labels:
                label = f"{labels[name]} ({label})"
            rows.append([label, NAMES.get(r["estimator"], r["estimator"]), r["batch_size"],
                         num(r["samples_per_second"]), f"{r['seconds_per_60k_epoch']:.1f} s",
                         f"{r.get('threads', '')}", f"`{name}.json`"])
    return table(["network", "estimator", "batch", "samples/s", "per 60k epoch", "threads", "file"], rows)


def device_bench_overhead() -> str:
    rows = []
    by_batch: dict[int, dict[str, float]] = {}
    for device in ("ideal", "levels_64", "ag_a_si"):
        for r in read_json(RESULTS / f"bench_fc1_cep_device_{device}_1thread.json"):
            by_batch.setdefault(r["batch_size"], {})[device] = r["samples_per_second"]
    for batch, speeds in sorted(by_batch.items()):
        rows.append([batch] + [num(speeds[d]) if d in speeds else "" for d in ("ideal", "levels_64", "ag_a_si")]
                    + [f"{speeds['ideal'] / speeds['levels_64']:.2f}x"])
    return table(["batch", "ideal", "`levels_64`", "`ag_a_si`", "overhead (levels_64)"], rows)


def device_write_speed(name: str = "bench_device_writes.json") -> str:
    """experiments/results/bench_device_writes*.json (experiments/bench_device_writes.py): each
    response law's preset against ideal synapses, measured interleaved in one run, as a table
    (rows: law and preset; columns: estimator x batch, the ratio to ideal) and the run's command,
    machine and date, so that the guide's numbers are never typed by hand."""
    data = read_json(RESULTS / name)
    try:
        rows_in, command, machine = data["rows"], data["command"], data["machine"]
    except (TypeError, KeyError) as exc:
        raise GenError(f"{name}: missing {exc}") from exc
    columns: list[tuple[str, int]] = []
    cells: dict[tuple[str, str], dict[tuple[str, int], str]] = {}
    for r in rows_in:
        key = (r["estimator"], r["batch_size"])
        if key not in columns:
            columns.append(key)
        cells.setdefault((r["law"], r["synapses"]), {})[key] = (
            f"{r['vs_ideal']:.1f}x ({num(r['samples_per_second'])} vs {num(r['ideal_samples_per_second'])})")
    rows = [[law, f"`{device}`"] + [by.get(c, "") for c in columns] for (law, device), by in cells.items()]
    header = ["law", "preset"] + [f"{NAMES.get(e, e)}, batch {b}" for e, b in columns]
    note = (f"\n\nEach cell: how many times slower than ideal synapses, (device vs ideal samples/s). "
            f"Command: `{command}`; machine: {machine}"
            + (f" ({data['load']})" if data.get("load") else "") + f"; torch {data.get('torch', '?')}"
            + ({True: "; compiled device writes (numba)", False: "; torch device writes"}.get(data.get("kernels"), ""))
            + ({True: "; compiled phases on both sides", False: "; the torch step on both sides (`compute.fused: false`)"
                }.get(data.get("fused"), "; measured before compiled phases existed"))
            + (f"; {data['date']}" if data.get("date") else "") + ".")
    return table(header, rows) + note


def tol_bench() -> str:
    """experiments/results/bench_tol.json (experiments/bench_tol.py): EP-1h at fixed T against
    estimator.tol / tol_every, the median time ratio of each variant over its rounds, its test
    errors and the steps its phases used, with the run's command and machine."""
    data = read_json(RESULTS / "bench_tol.json")
    try:
        summary = data["summary"]
    except (TypeError, KeyError) as exc:
        raise GenError(f"bench_tol.json: missing {exc}") from exc

    def steps(value: Any) -> str:
        return "fixed" if value is None else f"{value:.1f}"

    def spread(name: str) -> str:
        ratios = [r[name]["ratio"] for r in data.get("rounds", []) if name in r]
        return f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else ""

    rows = [[name, f"{v['time_ratio_median']:.2f}x", spread(name), f"{v['train_seconds_median']:.1f}",
             ", ".join(pct(e) for e in v["test_error"]), steps(v["free_steps_mean"]),
             steps(v["nudged_steps_mean"]), steps(v["eval_steps_mean"])] for name, v in summary.items()]
    rounds = len(data.get("rounds", []))
    note = (f"\n\n`{data['config']}`, the first {data['subset']:,} training digits, {data['epochs']} epochs, "
            f"{data['threads']} thread, {rounds} rounds (each variant once per round, in turn); time: "
            f"training seconds (evaluation excluded) over the fixed-T run of the same round, median over "
            f"rounds; steps: mean per batch in the last epoch (evaluation: batches of 1,000). Command: "
            f"`{data['command']}`; machine: {data['machine']}"
            + (f" ({data['load']})" if data.get("load") else "") + f"; {data['written']}.")
    return table(["variant", "time vs fixed T", "rounds' range", "train s (median)", "test error per round", "free steps",
                  "nudged steps", "evaluation steps"], rows) + note


def conv_bench() -> str:
    """experiments/results/bench_conv.json (experiments/bench_conv.py): P-conv EP before and after
    the fast conv step, at fixed T and with each tolerance, the free steps to settle on a fresh and
    a briefly trained network, and the idle 2-core epoch estimates derived from them."""
    data = read_json(RESULTS / "bench_conv.json")
    if not isinstance(data, list) or not data:
        raise GenError("bench_conv.json: expected a list of rows")
    rows = []
    for r in data:
        settle = r.get("free_steps_to_settle", {})
        trained = r.get("idle_2core_epoch_estimate_s_trained", {})
        rows.append([r["code"], "fixed T" if r["tol"] is None else f"{r['tol']:g}", num(r["samples_per_second"]),
                     f"{r['speedup_vs_before_fixed_T']:.2f}x",
                     f"{r['steps']['free_steps_mean']:.0f}" if r["steps"] else str(r["T"]),
                     "; ".join(f"{k}: {v['batch_mean']:.0f} per batch, {v['per_sample_mean']:.0f} per sample"
                               for k, v in settle.items()),
                     f"{r['idle_2core_epoch_estimate_s']:.0f}"
                     + "".join(f"; {k}: {v:.0f}" for k, v in trained.items())])
    m = data[0]["measured"]
    note = (f"\n\nEP, batch {data[0]['batch_size']}, {data[0]['threads']} thread, {data[0]['samples']} samples per "
            f"round, rounds interleaved; speed-up: over the code before the fast step at fixed T, median over rounds. "
            f"Idle 2-core epoch: 60,000 / (baseline x ratio), baseline {m['baseline']}. Command: `{m['command']}`; "
            f"machine: {m['machine']}, torch {m['torch']}; {m['date']}.")
    return table(["code", "tol", "samples/s", "speed-up", "free steps (bench)", "free steps to settle",
                  "idle 2-core epoch, s (estimate)"], rows) + note


def compile_bench() -> str:
    """experiments/results/bench_compile.json (experiments/bench_compile.py): the no-grad step,
    eager against torch.compile, per config and batch: time per step, the median ratio over
    rounds and its range, compile time and the largest state difference."""
    data = read_json(RESULTS / "bench_compile.json")
    try:
        rows = [[f"`{r['config']}`", r["batch_size"], f"{r['eager_us_per_step']:.0f}", f"{r['compiled_us_per_step']:.0f}",
                 f"{r['speedup_median']:.2f}x ({r['speedup_range'][0]:.2f}-{r['speedup_range'][1]:.2f})",
                 f"{r['compile_seconds']:.0f}", f"{r['max_abs_difference']:.1e}"] for r in data["rows"]]
    except (TypeError, KeyError) as exc:
        raise GenError(f"bench_compile.json: missing {exc}") from exc
    note = (f"\n\n{data['threads']} thread; speed-up: eager / compiled time per step, median over rounds (range). "
            f"Command: `{data['command'].strip()}`; machine: {data['machine']}, torch {data['torch']} "
            f"({data['load']}); {data['written']}.")
    return table(["config", "batch", "eager us/step", "compiled us/step", "speed-up", "compile s",
                  "max state difference"], rows) + note


def fused_bench() -> str:
    """experiments/results/bench_fused.json (experiments/bench_fused.py): training steps with
    compiled phases (``compute.fused``) against the torch step, rounds interleaved, fresh
    processes; the median ratio over rounds and its range."""
    data = read_json(RESULTS / "bench_fused.json")
    labels = {"ep": "EP", "bptt": "BPTT", "cep": "C-EP", "vf": "VF"}
    try:
        rows = [[labels.get(r["estimator"], r["estimator"]), f"`{r['config']}`", r["batch_size"], r["threads"],
                 f"{r['eager_median']:.0f}", f"{r['fused_median']:.0f}",
                 f"{r['ratio_median']:.2f}x ({r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f})"]
                for r in data["rows"]]
        note = (f"\n\n{data['samples']} timed samples per measurement, {len(data['rows'][0]['rounds'])} rounds. "
                f"Command: `{data['command'].strip()}`; machine: {data['machine']}, torch {data['torch']} "
                f"({data['load']}), {data['date']}.")
    except (TypeError, KeyError, IndexError) as exc:
        raise GenError(f"bench_fused.json: missing {exc}") from exc
    return table(["estimator", "config", "batch", "threads", "torch step, samples/s", "compiled phases, samples/s",
                  "compiled / torch (range)"], rows) + note


def reference_bench() -> str:
    """experiments/results/bench_reference.json (experiments/bench_reference.py): P-1h training
    steps of neurosim and of the papers' reference code, side by side, per round and their ratio."""
    data = read_json(RESULTS / "bench_reference.json")
    try:
        labels = {"ep": "EP", "bptt": "BPTT", "cep": "C-EP", "cvf": "C-VF"}
        rows = [[labels.get(r["estimator"], r["estimator"]), f"`{r['config']}`",
                 f"{r['reference']['repository']} at {str(r['reference']['commit'])[:7]}: "
                 f"`python main.py {' '.join(r['reference']['args'])}`"
                 + (" (its BPTT branch, as `--benchmark` runs it)" if r["estimator"] == "bptt" else ""),
                 r["batch_size"], f"{r['reference_median']:.0f}", f"{r['neurosim_median']:.0f}",
                 f"{r['ratio_median']:.1f}x ({r['ratio_range'][0]:.1f}-{r['ratio_range'][1]:.1f})"] for r in data["rows"]]
        note = (f"\n\n{data['samples']} timed samples per measurement, {len(data['rows'][0]['rounds'])} rounds. "
                f"Command: `{data['command'].strip()}`; machine: {data['machine']}, torch {data['torch']} "
                f"({data['load']}), {data['date']}.")
    except (TypeError, KeyError, IndexError) as exc:
        raise GenError(f"bench_reference.json: missing {exc}") from exc
    return table(["estimator", "neurosim config", "reference (its README's command)", "batch",
                  "reference samples/s", "neurosim samples/s", "neurosim / reference (range)"], rows) + note


def pulse_paths_bench() -> str:
    """experiments/results/bench_pulse_paths.json (experiments/bench_pulse_paths.py): the ways of
    counting one C-EP-sized write's pulses (torch and, where measured, compiled), per density,
    with the one the thresholds pick."""
    data = read_json(RESULTS / "bench_pulse_paths.json")
    kernels = bool(data.get("kernels"))

    def ms(r: dict, key: str) -> str:
        return f"{r[key]:.2f}" if key in r else "refused"

    try:
        rows = []
        for r in data["rows"]:
            row = [f"{100 * r['pulses_per_device']:.2f}%", f"{100 * r['candidates_per_device']:.2f}%",
                   f"{100 * r['factored_candidates_per_device']:.2f}%", ms(r, "factored_ms"),
                   ms(r, "formed_sparse_ms"), ms(r, "formed_dense_ms"), r["picked"].replace("_", ", ")]
            if kernels:
                row += [ms(r, "kernel_factored_ms"), ms(r, "kernel_formed_ms"),
                        r["kernel_picked"].replace("kernel_", "").replace("_", ", ")]
            rows.append(row)
        thresholds = data["thresholds"]
        note = (f"\n\nW_1 {data['shape'][0]}x{data['shape'][1]}, batch {data['batch_size']}; best time of each path "
                f"over interleaved rounds, forming the update included where a path needs it. Thresholds: "
                f"`DENSE_DENSITY` = 1/{1 / thresholds['DENSE_DENSITY']:.0f} (torch factored), "
                f"`FORMED_DENSE_DENSITY` = 1/{1 / thresholds['FORMED_DENSE_DENSITY']:.0f} (torch formed)"
                + (f", `KERNEL_DENSE_DENSITY` = 1/{1 / thresholds['KERNEL_DENSE_DENSITY']:.0f} (compiled factored)"
                   if "KERNEL_DENSE_DENSITY" in thresholds else "")
                + f". Command: `{data['command'].strip()}`; machine: {data['machine']}, torch {data['torch']} "
                f"({data['load']}), {data['date']}.")
    except (TypeError, KeyError) as exc:
        raise GenError(f"bench_pulse_paths.json: missing {exc}") from exc
    header = ["pulses per device", "candidates (formed)", "candidates (factored bound)", "torch factored ms",
              "torch formed, sparse ms", "torch formed, dense ms", "torch picks"]
    if kernels:
        header += ["compiled factored ms", "compiled formed ms", "compiled picks"]
    return table(header, rows) + note


def kernel_costs_bench() -> str:
    """experiments/results/kernel_costs.json (experiments/fit_kernel_costs.py): the compiled
    factored count's fitted costs on real C-EP writes, per preset, and the constants they set."""
    data = read_json(RESULTS / "kernel_costs.json")
    try:
        by_preset: dict[str, list[dict]] = {}
        for r in data["rows"]:
            by_preset.setdefault(r["preset"], []).append(r)

        def median(values: list[float]) -> float:
            values = sorted(values)
            return values[len(values) // 2] if values else float("nan")

        rows = []
        for preset, writes in by_preset.items():
            factored = [w["factored_us"] for w in writes if w["factored_us"] is not None]
            rows.append([f"`{preset}`", len(writes), f"{median([w['points'] for w in writes]):.0f}",
                         f"{median([w['formed_rows'] for w in writes]):.0f}",
                         f"{median(factored):.0f}" if factored else "declined",
                         f"{median([w['formed_us'] for w in writes]):.0f}"])
        fit, fitted, in_code = data["fit"], data["fitted"], data["in_code"]
        right, total = data["picked_cheaper"]
        first = ""
        if "KERNEL_FIRST_DENSITY" in fitted:
            first = (f"; a point of a first write with its input (a search: no alias tables yet) "
                     f"{fit['first_point_ns']:.0f} ns, so `KERNEL_FIRST_DENSITY` = 1/{1 / fitted['KERNEL_FIRST_DENSITY']:.0f} "
                     f"(in the code 1/{1 / in_code['KERNEL_FIRST_DENSITY']:.0f})")
        spent = (f" ({data['picked_ms']:.1f} ms in all, against {data['cheapest_ms']:.1f} ms always picking the cheaper)"
                 if "picked_ms" in data else "")
        note = (f"\n\nMedians over the kept writes (every first and every tenth other W_1 write of a short "
                f"C-EP-1h run, batch 20). Fitted: a point costs {fit['point_ns']:.0f} ns, a device of a formed row "
                f"{fit['row_device_ns']:.1f} ns, forming the update and counting it {fit['formed_device_ns']:.2f} ns per "
                f"device (fixed part {fit['fixed_us']:.0f} us), so `KERNEL_DENSE_DENSITY` = "
                f"1/{1 / fitted['KERNEL_DENSE_DENSITY']:.0f} and `KERNEL_ROW_COST` = {fitted['KERNEL_ROW_COST']:.2f}"
                f"{first}; the code has 1/{1 / in_code['KERNEL_DENSE_DENSITY']:.0f} and {in_code['KERNEL_ROW_COST']:.2g}, "
                f"which pick the cheaper path in {right} of {total} writes{spent}. "
                f"Command: `{data['command'].strip()}`; machine: {data['machine']}, torch {data['torch']} "
                f"({data['load']}), {data['date']}.")
    except (TypeError, KeyError, ValueError) as exc:
        raise GenError(f"kernel_costs.json: missing {exc}") from exc
    return table(["preset", "writes", "points", "formed rows", "compiled factored us", "formed path us"], rows) + note


def tol_scope_bench() -> str:
    """experiments/results/bench_tol_scope.json (experiments/bench_tol_scope.py): per-batch against
    per-sample settling on a trained network, training batches and evaluation, with the steps each
    used and the ratio of the two within each round (median and range)."""
    data = read_json(RESULTS / "bench_tol_scope.json")
    try:
        rounds, summary = data["rounds"], data["summary"]
    except (TypeError, KeyError) as exc:
        raise GenError(f"bench_tol_scope.json: missing {exc}") from exc

    def steps(scope: str, phase: str) -> str:
        counts = rounds[-1][scope]["steps"]
        text = f"{counts.get(f'{phase}_steps_mean', 0):.1f}"
        if f"{phase}_sample_steps_mean" in counts:
            text += f" (per sample {counts[f'{phase}_sample_steps_mean']:.1f})"
        return text

    def span(key: str) -> str:
        values = [r[key] for r in rounds]
        return f"{summary[key + '_median']:.2f}x ({min(values):.2f}-{max(values):.2f})"

    rows = [[scope, f"{summary[f'{scope}_seconds_per_train_batch_median']:.3f}", steps(scope, "free"),
             steps(scope, "nudged"), f"{summary[f'{scope}_eval_seconds_median']:.1f}", steps(scope, "eval"),
             ", ".join(pct(r[scope]["eval_error"]) for r in rounds)] for scope in ("batch", "sample")]
    rows.append(["batch / sample", span("train_ratio"), "", "", span("eval_ratio"), "", ""])
    note = (f"\n\n`{data['config']}` (T = {data['T']}, K = {data['K']}, tol {data['tol']:g} checked every "
            f"{data['tol_every']} steps), network: {data['network']}; training: EP's updates of "
            f"{data['train_batches']} batches of {data['batch_size']} (no weight change); evaluation: "
            f"{data['eval_samples']:,} test digits in batches of {data['eval_batch_size']:,}; "
            f"{data['threads']} thread, {len(rounds)} rounds (both scopes in turn in each), steps of the last "
            f"round (mean per batch; per sample: mean over samples). Command: `{data['command']}`; machine: "
            f"{data['machine']} ({data['load']}); {data['written']}.")
    return table(["tol_scope", "s per training batch", "free steps", "nudged steps", "evaluation s",
                  "evaluation steps", "evaluation error per round"], rows) + note


def continuous_vs_discrete() -> str:
    s = read_json(RESULTS / "continuous_vs_discrete" / "summary.json")
    rows = [[r["run"], r["epochs"] if r["reached"] else f"not in {s['max_epochs']}", f"{r['seconds_to_target']:.1f}",
             f"{r['cpu_seconds_to_target']:.1f}", f"{r['ratio_to_P1h']:.2f} / {r['cpu_ratio_to_P1h']:.2f}",
             f"{r['mean_load_1min']:.1f}"] for r in s["rows"]]
    target = f"{100 * s['target_test_error']:g}%"
    return table(["run", f"epochs to {target}", "wall s", "CPU s", "wall / CPU ratio to P-1h", "load"], rows)


def device_presets(estimator: str) -> str:
    s = read_json(RESULTS / "device_comparison" / "presets" / estimator / "summary.json")
    rows = [[f"`{r['device']}`", pct(r["test_error"]), f"{100 * r['gap_to_ideal']:+.2f}", num(r["pulses"]),
             f"{r['pulses_per_device_mean']:.1f} / {num(r['pulses_per_device_max'])}",
             f"{r['energy_joules']:.3g}" if r["energy_joules"] else "n/a"] for r in s["rows"]]
    return table(["device", "test error", "gap to ideal", "pulses", "pulses per device (mean / max)", "energy (J)"], rows)


def device_properties() -> str:
    s = read_json(RESULTS / "device_comparison" / "properties" / "summary.json")
    rows = []
    for prop, entry in s["properties"].items():
        for r in entry["rows"]:
            rows.append([prop, f"`{entry['parameter']}`", f"{r['value']:g}", pct(r["test_error"]),
                         f"{100 * (r['test_error'] - s['ideal']):+.2f}", num(r["pulses"])])
    return table(["property", "parameter", "value", "test error", "gap to ideal", "pulses"], rows)


def device_negbeta() -> str:
    plus = {r["device"]: r for r in read_json(RESULTS / "device_comparison" / "presets" / "cep" / "summary.json")["rows"]}
    folders = sorted(p.parent.name for p in (RESULTS / "device_negbeta").glob("*/result.json"))
    order = ["ideal"] + [d for d in folders if d != "ideal"]
    minus = {d: Run(f"device_negbeta/{d}") for d in order}
    for d, r in minus.items():
        if r.get("estimator.beta") >= 0:
            raise GenError(f"device_negbeta/{d}: beta {r.get('estimator.beta')} is not negative")
    ideal_minus = minus["ideal"].result["test_error"]
    rows = []
    for d in order:
        if d not in plus:
            raise GenError(f"device_negbeta/{d} has no beta > 0 row in device_comparison/presets/cep")
        p, m = plus[d], minus[d].result
        pulses_m = m.get("synapses", {}).get("pulses", 0)
        rows.append([f"`{d}`", pct(p["test_error"]), f"{100 * p['gap_to_ideal']:+.2f}", num(p["pulses"]),
                     pct(m["test_error"]), f"{100 * (m['test_error'] - ideal_minus):+.2f}", num(pulses_m),
                     f"{p['pulses'] / pulses_m:.1f}x" if pulses_m and p["pulses"] else "-"])
    return table(["device", "test error, beta +0.2", "gap to ideal", "pulses", "test error, beta -0.2",
                  "gap to ideal", "pulses", "pulse ratio +/-"], rows)


def device_negbeta_seed1() -> str:
    base = RESULTS / "device_negbeta_seed1"
    devices = sorted(p.parent.name for p in (base / "minus").glob("*/result.json"))
    devices = ["ideal"] + [d for d in devices if d != "ideal"]
    res = {(s, d): Run(f"device_negbeta_seed1/{s}/{d}") for s in ("plus", "minus") for d in devices}
    rows = []
    for d in devices:
        line = [f"`{d}`"]
        for s in ("plus", "minus"):
            r = res[(s, d)]
            if r.get("seed") != 1:
                raise GenError(f"device_negbeta_seed1/{s}/{d}: seed {r.get('seed')} is not 1")
            err, ideal = r.result["test_error"], res[(s, "ideal")].result["test_error"]
            line.append(pct(err) + ("" if d == "ideal" else f" ({100 * (err - ideal):+.2f})"))
        rows.append(line)
    return table(["device", "beta +0.2", "beta -0.2"], rows)


def sweep_csv(name: str, columns: list[str], file: str = "results.csv") -> str:
    path = RESULTS / name / file
    records = _csv(name, file)
    missing = [c for c in columns if c not in records[0]]
    if missing:
        raise GenError(f"{path} has no columns {missing}")
    rows = []
    for r in records:
        line = []
        for c in columns:
            v = r[c]
            if c in ("test_error", "best_test_error", "train_error") and v:
                v = pct(float(v))
            line.append(f"`{v}`" if c == "point" else v)
        rows.append(line)
    return table(columns, rows)


def chip_sweep(name: str) -> str:
    """A chip study's sweep (one point per device, or per device and recipe when the sweep also
    varies the estimator's settings): final and best test error, gap to ideal synapses with the
    same recipe, pulses per device and energy; unfinished points say how far they got."""
    records = _csv(name)
    header = list(records[0])
    others = [k for k in header[header.index("point") + 1:header.index("status")] if k != "synapses.device"]

    def recipe(r: dict) -> tuple:
        return tuple(r[k] for k in others)

    ideals = {recipe(r): r for r in records if r["synapses.device"] == "ideal" and r["status"] == "done"}
    rows = []
    for r in records:
        label = [f"`{r['synapses.device']}`"] + [r[k] for k in others]
        if r["status"] == "done":
            ideal = ideals.get(recipe(r))
            gap = (f"{100 * (float(r['test_error']) - float(ideal['test_error'])):+.2f}" if ideal else "")
            # a sweep whose finished points are all ideal has no device columns yet
            energy = r.get("energy_joules", "")
            energy = f"{float(energy):.3g}" if energy not in ("", "0.0") else "n/a"
            mean = f"{float(r['pulses_per_device_mean']):,.1f}" if r.get("pulses_per_device_mean") else ""
            rows.append(label + [pct(float(r["test_error"])), pct(float(r["best_test_error"])),
                                 gap, r["epochs"], mean, r.get("pulses_per_device_max", ""), energy])
        else:
            metrics = RESULTS / name / "points" / r["point"] / "metrics.jsonl"
            done = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
            rows.append(label + [f"({r['status']}: {done} epochs when collected)", "", "", "", "", "", ""])
    return table(["device", *[f"`{k}`" for k in others], "final test error", "best test error",
                  "gap to ideal (points)", "epochs", "pulses per device (mean)", "pulses per device (max)",
                  "write energy (J)"], rows)


def chip_report_table(folder: str = "chip_report") -> str:
    """A `neurosim chip` report's error table, read from its report.json (the report's own numbers,
    so the page and the report cannot disagree)."""
    report = read_json(RESULTS / folder / "report.json")
    rows = []
    for r in report["rows"]:
        if r["status"] != "done":
            rows.append([r["estimator"], f"`{r['device']}`", f"({r['status']})", "", "", ""])
            continue
        rows.append([r["estimator"], f"`{r['device']}`", pct(r["test_error"]["mean"]),
                     pct(r["best_test_error"]["mean"]), f"{100 * r['gap_to_ideal']['mean']:+.2f}",
                     pct(r["train_error"]["mean"])])
    return table(["estimator", "device", "final test error", "best test error", "gap to ideal (points)",
                  "train error"], rows)


def sweep_timing(file: str) -> str:
    s = read_json(RESULTS / "sweep_speed_8points" / file)
    rows = [[f"`{r['command']}`", f"{r['wall_seconds']:.1f}", f"{r.get('cpu_percent', '')}%"] for r in s["runs"]]
    return (f"*Machine:* {s['machine']}. *Measured:* {s.get('measured', '')}.\n\n"
            + table(["command", "wall s", "CPU"], rows))


def value(path: str, *keys: Any, fmt: str = "{}") -> str:
    """One number of a result file, for the prose: value('mnist_fc1_ep/result.json', 'test_error', fmt=...)."""
    data: Any = read_json(RESULTS / path)
    for key in keys:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise GenError(f"{path} has no {keys}") from exc
    return fmt.format(data)


def err(name: str, key: str = "test_error") -> str:
    """A run's final (or best, or train) error in percent, for the prose."""
    return f"{100 * Run(name).result[key]:.2f}"


# ---------------------------------------------------------------- every folder

def all_runs() -> str:
    """Every run folder with a result.json anywhere under experiments/results."""
    rows = []
    for path in sorted(RESULTS.glob("**/result.json")):
        if not (path.parent / "config.yaml").exists():
            continue  # a study's result.json (e.g. cep_feedback): listed with its page
        name = path.parent.relative_to(RESULTS).as_posix()
        r = Run(name)
        entry = SOURCES["runs"].get(name)
        study = SOURCES["studies"].get(name.split("/")[0]) if "/" in name else None
        if entry:
            how = f"`{run_command(name)[0]}`"
        elif study:
            how = f"part of `{study['command']}`; alone: `neurosim train experiments/results/{name}/config.yaml`"
        else:
            how = f"`neurosim train experiments/results/{name}/config.yaml`"
        rows.append([f"`{name}`", r.network(), r.estimator(), r.result["epochs"],
                     r.result.get("train_samples", ""), pct(r.result["test_error"]), r.machine(), how])
    return table(["folder", "network", "estimator", "epochs", "train samples", "test error", "machine",
                  "command (or: its config.yaml, which reproduces it)"], rows)


# ---------------------------------------------------------------- pages

FIGURES: dict[str, bytes] = {}


def figure(path: str, alt: str) -> str:
    source = RESULTS / path
    if not source.is_file():
        raise GenError(f"missing figure {source}")
    target = "figures/" + path.replace("/", "__")
    FIGURES[f"results/{target}"] = source.read_bytes()
    return f"![{alt}]({target})\n\n*`experiments/results/{path}`*"


def headline() -> str:
    """The README's headline table, with links inside the site."""
    import headline as _headline

    return _headline.render(in_site=True)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), undefined=jinja2.StrictUndefined,
                             variable_start_string="<<", variable_end_string=">>",
                             block_start_string="<%", block_end_string="%>",
                             comment_start_string="<#", comment_end_string="#>",
                             keep_trailing_newline=True, autoescape=False)
    env.globals.update({name: obj for name, obj in globals().items()
                        if callable(obj) and not name.startswith("_") and obj.__module__ == __name__})
    return env


def render() -> dict[str, str | bytes]:
    env = environment()
    FIGURES.clear()
    out: dict[str, str | bytes] = {}
    for page in PAGES:
        try:
            out[f"results/{page}.md"] = env.get_template(f"{page}.md").render()
        except jinja2.TemplateError as exc:
            raise GenError(f"docs/gen/results/{page}.md: {exc}") from exc
    out.update(FIGURES)
    return out


# ---------------------------------------------------------------- measured devices (devices fit)

def _fits() -> list[dict]:
    data = read_json(RESULTS / "device_fits" / "summary.json")
    fits = data.get("fits") if isinstance(data, dict) else None
    if not isinstance(fits, list) or not fits:
        raise GenError(f"{RESULTS / 'device_fits' / 'summary.json'}: expected a non-empty list 'fits'")
    for f in fits:
        for key in ("name", "command", "summary", "chosen", "criterion", "fits", "preset", "source_md"):
            if key not in f:
                raise GenError(f"{RESULTS / 'device_fits' / 'summary.json'}: fit {f.get('name')!r} has no {key!r}")
        if not (ROOT / f["source_md"]).is_file():
            raise GenError(f"device fit {f['name']}: missing {f['source_md']}")
    return fits


def fit_names() -> list[str]:
    return [f["name"] for f in _fits()]


def _fit(name: str) -> dict:
    for f in _fits():
        if f["name"] == name:
            return f
    raise GenError(f"experiments/results/device_fits/summary.json has no fit {name!r}")


def fit_overview() -> str:
    """One row per measured device: data, chosen law, its quality and what it says."""
    rows = []
    for f in _fits():
        best = next(r for r in f["fits"] if r["law"] == f["chosen"])
        nl = f"{best['nl'][0]:+.2f} / {best['nl'][1]:+.2f}" if best.get("nl") else ""
        spreads = ", ".join(f"{k} {v:g}" for k, v in f["spreads"].items() if k in ("dw_min_dtod", "w_max_dtod"))
        on_off = f"{f['on_off']:.2f}" if f.get("on_off") else ("(normalised)" if f.get("units") == "au" else "")
        noise = f.get("reading_noise") or {}
        reading = (f"{f['preset']['write_noise_std']:g} steps (ρ {noise['rho']:+.2f}, smoothed over {noise['window']})"
                   if noise.get("significant") else f"none found (ρ {noise['rho']:+.2f})" if noise else "")
        rows.append([f"`{f['name']}`", f["summary"], f"`{f['chosen']}`", f"{best['r2']:.3f}",
                     f"{best['states']:.0f}", f"{best['c2c']:.3f}", reading, nl, on_off, spreads or "(one device)"])
    return table(["dataset", "data", "law (lowest BIC)", "R² of steps", "states", "c2c (of a step)",
                  "reading noise (write_noise_std)", "NL up / down", "on/off", "d2d"], rows)


def fit_table(name: str) -> str:
    """Every law fitted to one dataset, best first by the chosen criterion."""
    f = _fit(name)
    key = f["criterion"]
    rows = []
    for r in sorted(f["fits"], key=lambda r: r[key]):
        nl = f"{r['nl'][0]:+.2f} / {r['nl'][1]:+.2f}" if r.get("nl") else ""
        rows.append([f"**`{r['law']}`**" if r["law"] == f["chosen"] else f"`{r['law']}`", str(r["parameters"]),
                     f"{r['log_likelihood']:.1f}", f"{r['aic']:.1f}", f"{r['bic']:.1f}",
                     f"{r[key] - min(x[key] for x in f['fits']):.1f}", f"{r['r2']:.3f}", f"{r['c2c']:.3f}",
                     f"{r['states']:.1f}", nl])
    return table(["law", "parameters", "log-likelihood", "AIC", "BIC", f"Δ{key.upper()}", "R²", "c2c", "states",
                  "NL"], rows)


def fit_preset(name: str) -> str:
    """The fitted preset's keys (without its description and source)."""
    import json as _json

    f = _fit(name)
    keys = {k: v for k, v in f["preset"].items() if k not in ("description", "source")}
    return "```yaml\n" + "\n".join(f"{k}: {_json.dumps(v)}" for k, v in keys.items()) + "\n```\n"


def fit_source(name: str) -> str:
    f = _fit(name)
    return (f"*Data:* `{f['source_md']}` in the repository (citation, licence, protocol, and `convert.py`, which "
            f"made `data.csv` from the published files); *made with* `{f['command']}` ({f['seconds']:.1f} s; all: "
            f"`python experiments/fit_measured_devices.py`).\n")


# ---------------------------------------------------------------- more tables (sweeps, spiking)

def _csv(name: str, file: str = "results.csv") -> list[dict]:
    path = RESULTS / name / file
    try:
        with path.open() as handle:
            records = list(csv.DictReader(handle))
    except FileNotFoundError as exc:
        raise GenError(f"missing {path}") from exc
    if not records:
        raise GenError(f"empty {path}")
    return records


def sweep_pivot(name: str, row_key: str, col_key: str, extra: str | None = None) -> str:
    """A sweep's final test error, one row per value of row_key, one column per value of col_key."""
    records = _csv(name)
    for key in (row_key, col_key) + ((extra,) if extra else ()):
        if key not in records[0]:
            raise GenError(f"{name}/results.csv has no column {key!r}")
    def order(v: str):
        try:
            return (0, float(v))
        except ValueError:
            return (1, v)
    records = [r for r in records if r[row_key] != "" and r[col_key] != ""]  # the reference point: listed below
    rows_v = sorted({r[row_key] for r in records}, key=order)
    cols_v = sorted({r[col_key] for r in records}, key=order)
    cells = {(r[row_key], r[col_key]): r for r in records}
    out = []
    for rv in rows_v:
        line = [rv]
        for cv in cols_v:
            r = cells.get((rv, cv))
            line.append("" if r is None else (pct(float(r["test_error"])) if r["status"] == "done" else r["status"]))
        if extra:
            first = cells.get((rv, cols_v[0]))
            line.append(num(float(first[extra])) if first and first[extra] else "")
        out.append(line)
    header = [f"{row_key} \\ {col_key}"] + [f"`{c}`" for c in cols_v] + ([f"{extra} ({col_key} {cols_v[0]})"] if extra else [])
    return table(header, out)


def sweep_loaded_timing() -> str:
    s = read_json(RESULTS / "sweep_speed_8points" / "timing.json")
    modes = {"sequential": "one after another, in-process", "1worker": "1 local worker", "2workers": "2 local workers"}
    rows = []
    for r in s["runs"]:
        cpu = r.get("cpu_seconds")
        cores = f"{cpu:.1f} s ({cpu / r['sweep_wall_seconds']:.2f} cores)" if cpu else "-"
        rows.append([r["started_local_time"].split()[-1], modes.get(r["mode"], r["mode"]), f"{r['sweep_wall_seconds']:.1f} s",
                     f"{r['point_seconds_mean']:.1f} s", cores, f"{r['loadavg_before'][0]:.1f}"])
    return (f"*Machine:* {s['machine']}. *Commands:* " + "; ".join(f"{k}: `{v}`" for k, v in s["commands"].items())
            + "\n\n" + table(["time (local)", "mode", "sweep wall time", "per point (on its worker)",
                               "CPU time (all processes)", "load average before"], rows))


def spiking_phase_length(extra: list[str] = ()) -> str:
    """Epoch 1 of each run of spiking_phase_length/ (and of the runs in ``extra``), by phase length."""
    names = [f"spiking_phase_length/{p.parent.name}" for p in (RESULTS / "spiking_phase_length").glob("*/result.json")]
    rows = []
    for name in sorted(names + list(extra), key=lambda n: Run(n).get("estimator.T")):
        r = Run(name)
        T, K, L = r.get("estimator.T"), r.get("estimator.K"), r.get("backend.window")
        eps = r.get("circuit.eps")
        first = r.history[0]
        rows.append([f"{T} / {K} / {L}", f"{(T + K) * eps:g} tau", pct(first["test_error"]),
                     num(first["brian2_examples_per_second"]), num(first["brian2_examples_per_cpu_second"]),
                     f"`{name}` (epoch 1)"])
    return table(["T / K / L (steps)", "time per example", "test error after 1 epoch", "examples/s (wall)",
                  "examples / CPU s", "folder"], rows)


def spiking_devices(names: list[str]) -> str:
    rows = []
    for name in names:
        r = Run(name)
        syn = r.result.get("synapses") or {}
        errors = [pct(h["test_error"]) for h in r.history]
        speeds = [h.get("brian2_examples_per_cpu_second") for h in r.history]
        speeds = [s for s in speeds if s]
        speed = f"{num(min(speeds))}-{num(max(speeds))}" if speeds else "-"
        rows.append([f"`{syn.get('device', 'ideal')}`", f"`{name}`", " / ".join(errors),
                     f"{syn['pulses']:.2g}" if syn.get("pulses") else "-",
                     f"{syn['pulses_per_device_mean']:.0f} / {num(syn['pulses_per_device_max'])}" if syn.get("pulses") else "-",
                     speed, r.machine(run_command(name)[1])])
    return table(["synapses", "run", "test error after each epoch", "pulses", "per device: mean / max",
                  "examples per CPU s", "machine"], rows)


# ---------------------------------------------------------------- numbers in the prose

def _metric(name: str, kind: str) -> float:
    r = Run(name)
    if kind == "final":
        return r.result["test_error"]
    if kind == "last5":
        return r.last5()
    if kind == "best":
        return r.result["best_test_error"]
    if kind == "train":
        return r.result["train_error"]
    if kind.startswith("epoch"):
        index = int(kind[5:])
        if not 1 <= index <= len(r.history):
            raise GenError(f"{name} has no epoch {index}")
        return r.history[index - 1]["test_error"]
    raise GenError(f"unknown metric {kind!r}")


def E(name: str, kind: str = "final", digits: int = 2) -> str:
    """A run's error in percent for the prose: kind final, last5, best, train or epochN."""
    return f"{100 * _metric(name, kind):.{digits}f}"


def S(names: list[str], kind: str = "final", digits: int = 2) -> str:
    """Several runs' errors, 'a / b / c'."""
    return " / ".join(E(n, kind, digits) for n in names)


def M(names: list[str], kind: str = "final", digits: int = 2) -> str:
    """The mean error of several runs, in percent."""
    return f"{100 * sum(_metric(n, kind) for n in names) / len(names):.{digits}f}"


def GAP(a: list[str], b: list[str], kind: str = "final", digits: int = 2) -> str:
    """Mean of a minus mean of b, in points."""
    mean = lambda names: sum(_metric(n, kind) for n in names) / len(names)  # noqa: E731
    return f"{100 * (mean(a) - mean(b)):.{digits}f}"


def LAST(name: str, n: int) -> str:
    """The test errors of a run's last n epochs, 'a, b, c'."""
    return ", ".join(f"{100 * h['test_error']:.2f}" for h in Run(name).history[-n:])


def PICK(path: str, where: dict, field: str, fmt: str = "{:.2f}", scale: float = 1.0, rows: str = "rows") -> str:
    """One field of the row of a result file's list ``rows`` whose keys match ``where``."""
    data: Any = read_json(RESULTS / path)
    for part in rows.split("."):
        data = data[part] if part else data
    found = [r for r in data if all(r.get(k) == v for k, v in where.items())]
    if len(found) != 1:
        raise GenError(f"{path}: {len(found)} rows match {where}")
    if field not in found[0]:
        raise GenError(f"{path}: the row {where} has no {field!r}")
    value = found[0][field]
    if isinstance(value, list):
        value = value[0]
    return fmt.format(value * scale)


def _dev_row(estimator: str, device: str) -> dict:
    rows = read_json(RESULTS / "device_comparison" / "presets" / estimator / "summary.json")["rows"]
    found = [r for r in rows if r["device"] == device]
    if len(found) != 1:
        raise GenError(f"device_comparison/presets/{estimator}: no single row for {device!r}")
    return found[0]


def DEV(estimator: str, device: str, kind: str = "error", digits: int = 2) -> str:
    """Test error (kind error) or gap to ideal (kind gap) of a preset in device_comparison, in percent / points."""
    row = _dev_row(estimator, device)
    value = row["test_error"] if kind == "error" else row["gap_to_ideal"]
    return f"{100 * value:.{digits}f}"


def DEVDIFF(estimator: str, a: str, b: str, digits: int = 1) -> str:
    """Test error of device a minus that of device b, in points."""
    return f"{100 * (_dev_row(estimator, a)['test_error'] - _dev_row(estimator, b)['test_error']):.{digits}f}"


def _prop(prop: str, value: float) -> tuple[dict, float]:
    s = read_json(RESULTS / "device_comparison" / "properties" / "summary.json")
    if prop not in s["properties"]:
        raise GenError(f"device_comparison/properties: no property {prop!r}")
    found = [r for r in s["properties"][prop]["rows"] if r["value"] == value]
    if len(found) != 1:
        raise GenError(f"device_comparison/properties/{prop}: no single row at {value!r}")
    return found[0], s["ideal"]


def PROP(prop: str, value: float, kind: str = "error", digits: int = 2) -> str:
    """One property run of device_comparison: its test error (%) or its gap to ideal (points)."""
    row, ideal = _prop(prop, value)
    x = row["test_error"] - (ideal if kind == "gap" else 0.0)
    return f"{100 * x:.{digits}f}"


def PROPDIFF(prop: str, a: float, b: float, digits: int = 1) -> str:
    return f"{100 * (_prop(prop, a)[0]['test_error'] - _prop(prop, b)[0]['test_error']):.{digits}f}"
