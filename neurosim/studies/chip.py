"""What a chip built from a device would learn: ``neurosim chip`` (``neurosim.chip``).

One call answers a hardware designer's question, "what accuracy would a chip built from my device
reach, with how many programming pulses and how much write energy?": it trains a config on ideal
synapses and on each device, for each estimator and seed, through the sweep engine, and writes a
report from the runs' own files (``result.json``, ``metrics.jsonl``; nothing is recomputed).

Estimators and configs. The shipped experiments come in families named
``<family>_<estimator>[_<variant>]``: ``mnist_fc1_ep``, ``mnist_fc1_cep``, ``mnist_fc1_cep_negbeta``,
``mnist_fc1_cvf``, ``mnist_fc1_bptt`` ..., each with the settings its paper gives that estimator
(learning rates, beta, epochs). An estimator is named by the part after the family, and picks
that sibling of ``config``: ``chip("mnist_fc1_ep", ..., estimators=["ep", "cep"])`` runs
``mnist_fc1_ep`` and ``mnist_fc1_cep`` (a file of one's own, ``dir/mine_ep.yaml``, finds
``dir/mine_cep.yaml``). It never sets ``estimator.name=cep`` on the EP config: that would run
C-EP at EP's rates and beta. Without ``estimators`` the config runs as it is, and ``config`` may be
a list of configs (on the command line a comma list), each labelled by its estimator part.

The folder ``out``::

    report.html       the report, self-contained (plots embedded as base64 PNGs)
    report.md         the same as Markdown, its plots as report_*.png beside it
    report.json       every number of the report, and each run's own values
    <estimator>/      one sweep folder per estimator (sweep.yaml, sweep.json, results.csv,
                      points/device=NAME_seed=S/: ordinary run folders)

Calling again with the same arguments continues: finished runs are read back, interrupted ones
resume from their last checkpoint (the sweep engine's guarantees), and the report is rewritten.
The report itself is ``neurosim.studies.chip_report``.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neurosim import presets as catalog
from neurosim.config import ESTIMATORS, load_config
from neurosim.errors import ConfigError, arg
from neurosim.hardware.records import device_config
from neurosim.io import atomic_write_text
from neurosim.schema import parse_override
from neurosim.studies.chip_report import format_table, write_report
from neurosim.sweeps.execution import SweepResult, sweep
from neurosim.sweeps.spec import SweepSpec
from neurosim.sweeps.state import read_json

IDEAL = "ideal"
"""The baseline device, always run (first) whether or not it is listed."""
ALL_DEVICES = "all"
"""A devices entry that stands for every shipped preset."""
SWEEP_FILE = "sweep.yaml"
"""The sweep file each estimator's folder gets: ``neurosim sweep DIR/<estimator>/sweep.yaml --out DIR/<estimator>``."""


@dataclass
class ChipEstimator:
    """One estimator of a chip study: its label (a folder name) and the config it runs."""

    label: str
    """'ep', 'cep', 'cep_negbeta', ...: the config's name after its family (or its estimator.name)."""
    base: str
    """The experiment: a shipped name, or an absolute YAML path."""
    estimator: str
    """The config's estimator.name."""


@dataclass
class ChipDevice:
    """One device of a chip study."""

    label: str
    """The preset's name, or a YAML file's stem."""
    ref: str
    """What ``synapses.device`` is set to: the preset's name, or the YAML file's absolute path."""
    params: dict[str, Any] = field(default_factory=dict)
    """``synapses.params`` of the config (overrides of the preset)."""


@dataclass
class ChipResult:
    """What ``chip`` returns; every number is also in ``report.json``."""

    out_dir: Path
    rows: list[dict[str, Any]]
    """One per (estimator, device): mean, std and values over seeds (see ``report.json``)."""
    runs: list[dict[str, Any]]
    """One per training run, with the values of its result.json."""
    report: dict[str, Path]
    """Paths of report.html, report.md and report.json."""
    sweeps: dict[str, SweepResult]
    """The sweep of each estimator, by label."""
    trained: int
    """Runs this call started or resumed (0 when everything was done already)."""
    wall_seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    """The whole of report.json."""

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run["status"]] = counts.get(run["status"], 0) + 1
        return counts

    @property
    def table(self) -> str:
        return format_table(self.summary)


def chip(config: str | Path | Sequence[str | Path], devices: str | Sequence[str | Path],
         estimators: str | Sequence[str] | None = None, epochs: int | None = None, subset: int | None = None,
         seeds: int = 1, workers: int | None = None, scheduler: str | None = None, threads: int | None = None,
         out: str | Path | None = None, overrides: Sequence[str] = (), progress: bool = True) -> ChipResult:
    """Train ``config`` on ideal synapses and on each device, and write the report; the Python twin
    of ``neurosim chip``.

    ``config``: an experiment name or YAML path (or, without ``estimators``, a list of them).
    ``devices``: preset names or device YAML paths (a list, or a comma-separated string; ``"all"``:
    every shipped preset); ``ideal`` is always run as the baseline, listed or not.
    ``estimators``: names of the config's siblings (``["ep", "cep"]`` with ``mnist_fc1_ep``: runs
    ``mnist_fc1_ep`` and ``mnist_fc1_cep``; see the module docstring); None: the config itself.
    ``epochs``: ``train.epochs`` of every run (None: each config's own). ``subset``: train on the
    first N training samples (``data.train_subset``). ``seeds``: runs per point, seeds s, s+1, ...
    from the config's seed. ``workers``, ``scheduler``, ``threads``: as for ``neurosim.sweep`` (local
    worker processes, 0 for this process; or a Dask scheduler address). ``out``: the study folder
    (default ``runs/chip_<family>``). ``overrides``: ``--set`` strings for every run (not
    ``synapses.device``, which the study sets).

    Calling it again with the same arguments continues where it stopped and rewrites the report.
    A script that uses local workers needs the ``if __name__ == "__main__":`` guard.
    """
    t0 = time.perf_counter()
    overrides = _overrides(overrides)
    _check_count(epochs, "epochs", "--epochs", "a positive number of epochs, or None (each config's own)")
    _check_count(subset, "subset", "--subset", "a positive number of training samples, or None (all)")
    _check_count(seeds, "seeds", "--seeds", "a positive number of seeds per point")
    if scheduler is not None and workers is not None:
        raise ConfigError(arg("workers", "--workers"), workers,
                          f"no worker count with {arg('scheduler', '--scheduler')} (the cluster has its own)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ConfigError(arg("workers", "--workers"), workers, "a number of local worker processes >= 0")
    if threads is not None:
        _check_count(threads, "threads", "--threads", "a positive number of torch threads per run")

    chosen = resolve_estimators(config, estimators)
    extra = ([f"train.epochs={epochs}"] if epochs is not None else []) + (
        [f"data.train_subset={subset}"] if subset is not None else [])
    common = [o for o in overrides if parse_override(o)[0] != "seed"] + extra  # the seeds are an axis
    resolved = {e.label: _resolve(e, overrides + extra) for e in chosen}
    first = resolved[chosen[0].label]
    listed = _split(devices, "devices", "--devices")
    chip_devices = resolve_devices(listed, dict(first["synapses"]["params"]))

    out_dir = (Path(out) if out is not None else Path("runs") / f"chip_{_study_name(chosen)}").expanduser().resolve()
    specs = {}
    for e in chosen:
        base_seed = int(resolved[e.label]["seed"])
        specs[e.label] = sweep_spec(e, chip_devices, common, [base_seed + i for i in range(seeds)])
        try:  # every point of every estimator is validated before anything runs
            SweepSpec.load(specs[e.label]).points()
        except ConfigError as exc:
            raise ConfigError(f"{e.label} ({e.base}): {exc.key}", exc.value, exc.expected) from None

    results: dict[str, SweepResult] = {}
    trained = 0
    for e in chosen:
        folder = out_dir / e.label
        atomic_write_text(folder / SWEEP_FILE, _sweep_file_text(specs[e.label], folder))
        if progress:
            runs = len(chip_devices) * seeds
            print(f"chip: {e.label} ({e.base}): {runs} runs ({len(chip_devices)} devices x {seeds} "
                  f"seed{'s' if seeds > 1 else ''}) in {folder}", file=sys.stderr)
        results[e.label] = sweep(specs[e.label], out=folder, workers=workers, scheduler=scheduler,
                                 threads=threads, progress=progress)
        trained += int(results[e.label].session.get("to_run", 0))

    runs = collect_runs(out_dir, chosen, chip_devices, results, common)
    command = _command(config, listed, estimators, epochs, subset, seeds, workers, scheduler, threads, overrides,
                       out_dir)
    python = _python_call(config, listed, estimators, epochs, subset, seeds, workers, scheduler, threads,
                          overrides, out_dir)
    summary = {
        "title": f"What a chip would learn: {', '.join(e.base for e in chosen)}",
        "config": [str(c) for c in _as_list(config)], "epochs": epochs, "subset": subset,
        "seeds": seeds, "overrides": overrides,
        "estimators": [{"label": e.label, "config": e.base, "estimator": e.estimator,
                        "epochs": int(resolved[e.label]["train"]["epochs"]),
                        "train_subset": resolved[e.label]["data"]["train_subset"],
                        "dataset": resolved[e.label]["data"]["name"],
                        "seeds": specs[e.label]["seeds"], "folder": e.label,
                        "sweep_file": f"{e.label}/{SWEEP_FILE}",
                        "repeat": shlex.join(["neurosim", "sweep", str(out_dir / e.label / SWEEP_FILE),
                                              "--out", str(out_dir / e.label)])}
                       for e in chosen],
        "devices": [_device_entry(d) for d in chip_devices],
        "rows": aggregate(runs, chosen, chip_devices),
        "runs": runs,
        "command": command, "python": python,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    paths = write_report(out_dir, summary)
    return ChipResult(out_dir, summary["rows"], runs, paths, results, trained,
                      round(time.perf_counter() - t0, 3), summary)


# --------------------------------------------------------------------------- estimators


def family(name: str) -> tuple[str, str] | None:
    """('mnist_fc1', 'cep_negbeta') for 'mnist_fc1_cep_negbeta': the name before its first
    estimator part (``config.ESTIMATORS``) and the rest; None when no part after the first names one."""
    parts = name.split("_")
    for i in range(1, len(parts)):
        if parts[i] in ESTIMATORS:
            return "_".join(parts[:i]), "_".join(parts[i:])
    return None


def resolve_estimators(config: str | Path | Sequence[str | Path],
                       estimators: str | Sequence[str] | None = None) -> list[ChipEstimator]:
    """The configs a chip study runs, one per estimator (see the module docstring)."""
    configs = _split(config, "config", "CONFIG")
    if estimators is None:
        bases = [_base(c) for c in configs]
        labels = [_own_label(c, b) for c, b in zip(configs, bases)]
        if len(set(labels)) < len(labels):  # e.g. two EP configs: their names tell them apart
            labels = [_stem(c) for c in configs]
        if len(set(labels)) < len(labels):
            raise ConfigError(arg("config", "CONFIG"), configs, "distinct configs (one appears twice)")
    else:
        names = _split(estimators, "estimators", "--estimators")
        if len(configs) > 1:
            raise ConfigError(arg("estimators", "--estimators"), names,
                              f"no estimators with several configs (each of {configs} runs with its own "
                              f"estimator; give one config of a family to pick its siblings by estimator)")
        if len(set(names)) < len(names):
            raise ConfigError(arg("estimators", "--estimators"), names, "distinct estimators")
        labels, bases = names, [sibling(configs[0], name) for name in names]
    return [ChipEstimator(_safe(label), base, load_config(base).estimator.name) for label, base in zip(labels, bases)]


def sibling(config: str, estimator: str) -> str:
    """The config of ``config``'s family for ``estimator`` (``mnist_fc1_ep``, ``cep`` -> ``mnist_fc1_cep``)."""
    path = Path(config).expanduser()
    own = family(_stem(config))
    if own is None:
        raise ConfigError(arg("estimators", "--estimators"), estimator,
                          f"a config named <family>_<estimator> to find the estimator's sibling of ({config!r} has "
                          f"no estimator part ({', '.join(ESTIMATORS)}) after its family); or, without "
                          f"{arg('estimators', '--estimators')}, the configs themselves "
                          f"({arg('config=[...]', 'CONFIG,CONFIG')})")
    name = own[0]
    if path.is_file():
        files = {p.stem: p for p in sorted(path.resolve().parent.glob(f"{name}_*.y*ml"))}
        members = {s[len(name) + 1:]: str(p) for s, p in files.items() if (family(s) or ("",))[0] == name}
    else:
        members = {n[len(name) + 1:]: n for n in catalog.available("experiments") if (family(n) or ("",))[0] == name}
    if estimator not in members:
        where = f"beside {path}" if path.is_file() else "shipped"
        raise ConfigError(arg("estimators", "--estimators"), estimator,
                          f"one of the estimators of the {name} family ({where}: {name}_<estimator>): "
                          f"{', '.join(sorted(members))}")
    return members[estimator]


def _base(config: str) -> str:
    """A shipped experiment's name, or a YAML file's absolute path (workers may run elsewhere)."""
    path = Path(config).expanduser()
    if path.is_file():
        return str(path.resolve())
    try:
        catalog.find("experiments", config)
    except ConfigError as exc:
        raise ConfigError(arg("config", "CONFIG"), config, exc.expected) from None
    return Path(config).stem


def _own_label(config: str, base: str) -> str:
    own = family(_stem(config))
    return own[1] if own else load_config(base).estimator.name


def _stem(config: str | Path) -> str:
    return Path(str(config)).stem


def _safe(label: str) -> str:
    """A folder and sweep name: letters, digits and . _ + - only."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", label)


def _study_name(chosen: list[ChipEstimator]) -> str:
    stem = _stem(chosen[0].base)
    own = family(stem)
    return _safe(own[0] if own else stem)


def _resolve(e: ChipEstimator, overrides: list[str]) -> dict[str, Any]:
    try:
        return load_config(e.base, overrides).to_dict()
    except ConfigError as exc:
        raise ConfigError(f"{e.label} ({e.base}): {exc.key}", exc.value, exc.expected) from None


# --------------------------------------------------------------------------- devices


def resolve_devices(devices: Sequence[str], params: dict[str, Any] | None = None) -> list[ChipDevice]:
    """``ideal`` first, then each device once (``all``: every shipped preset), each checked."""
    entries: list[str] = []
    for entry in devices:
        if entry == ALL_DEVICES and not Path(entry).is_file():
            entries += catalog.available("devices")
        else:
            entries.append(entry)
    chosen: list[ChipDevice] = []
    for entry in [IDEAL, *entries]:
        path = Path(entry).expanduser()
        ref = str(path.resolve()) if path.is_file() else entry
        try:
            device_config(ref, params or {}, "synapses.params")
        except ConfigError as exc:
            if exc.key == "synapses.device":  # neither a file nor a preset
                raise ConfigError(arg("devices", "--devices"), entry, exc.expected) from None
            raise ConfigError(f"{arg('devices', '--devices')} {entry}: {exc.key}", exc.value, exc.expected) from None
        label = path.stem if path.is_file() else entry
        if any(d.ref == ref for d in chosen):
            continue
        if any(d.label == label for d in chosen):
            raise ConfigError(arg("devices", "--devices"), list(devices),
                              f"devices with distinct names ({label!r} names two of them: rename a file)")
        chosen.append(ChipDevice(label, ref, dict(params or {})))
    return chosen


def _device_entry(device: ChipDevice) -> dict[str, Any]:
    record = device_config(device.ref, device.params, "synapses.params")
    return {"label": device.label, "device": device.ref, "params": device.params, "ideal": record.ideal,
            "description": record.description, "response": None if record.ideal else record.response,
            "mapping": record.mapping, "states": record.states, "step": None if record.ideal else record.step,
            "energy_per_pulse": record.energy_per_pulse or None, "endurance": record.endurance}


# --------------------------------------------------------------------------- sweeps and runs


def sweep_spec(e: ChipEstimator, devices: list[ChipDevice], overrides: list[str], seeds: list[int]) -> dict[str, Any]:
    """The sweep of one estimator: every device x every seed, on the estimator's config."""
    return {"name": f"chip_{e.label}",
            "description": f"neurosim chip: {e.base} on {', '.join(d.label for d in devices)}",
            "base": e.base, "overrides": list(overrides),
            "grid": {"synapses.device": [d.ref for d in devices]}, "seeds": list(seeds)}


def _sweep_file_text(spec: dict[str, Any], folder: Path) -> str:
    head = (f"# Written by neurosim chip; the same runs again: neurosim sweep {folder / SWEEP_FILE} --out {folder}\n"
            f"# (finished points are kept: delete the folder's points/ to train them anew)\n")
    return head + yaml.safe_dump(spec, sort_keys=False, width=1000)


def collect_runs(out_dir: Path, chosen: list[ChipEstimator], devices: list[ChipDevice],
                 results: dict[str, SweepResult], overrides: list[str]) -> list[dict[str, Any]]:
    """One record per run, read from its folder: status, result.json's values, the test-error curve
    of metrics.jsonl, and the ``neurosim train`` command that repeats it."""
    by_ref = {d.ref: d for d in devices}
    runs = []
    for e in chosen:
        for row in results[e.label].rows:
            device = by_ref[row["synapses.device"]]
            run_dir = out_dir / e.label / "points" / row["point"]
            record: dict[str, Any] = {"estimator": e.label, "device": device.label, "seed": row["seed"],
                                      "point": row["point"], "run_dir": f"{e.label}/points/{row['point']}",
                                      "status": row["status"], "error": row.get("error") or ""}
            if row["status"] == "done":
                result = read_json(run_dir / "result.json")
                synapses = result.get("synapses", {})
                record.update({k: result.get(k) for k in ("test_error", "best_test_error", "train_error", "epochs",
                                                          "wall_seconds", "train_samples", "test_samples")})
                record.update({k: synapses.get(k) for k in ("pulses", "pulses_up", "pulses_down",
                                                            "pulses_per_device_mean", "pulses_per_device_max",
                                                            "energy_joules", "refreshes") if k in synapses})
            record["curve"] = _curve(run_dir)
            record["train_command"] = shlex.join(
                ["neurosim", "train", e.base, *[a for o in overrides for a in ("--set", o)],
                 "--set", f"synapses.device={device.ref}", "--set", f"seed={row['seed']}",
                 "--out", str(out_dir / "repeat" / e.label / row["point"])])
            runs.append(record)
    return runs


def _curve(run_dir: Path) -> list[float]:
    """Test error after each epoch, from metrics.jsonl (as far as the run got)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    curve = []
    for line in lines:
        try:
            curve.append(float(json.loads(line)["test_error"]))
        except (ValueError, KeyError):
            break
    return curve


# --------------------------------------------------------------------------- aggregation over seeds


def stats(values: list[float]) -> dict[str, Any] | None:
    """Mean, sample standard deviation (0 for one value), count and the values; None for none."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(values), "values": values}


def aggregate(runs: list[dict[str, Any]], chosen: list[ChipEstimator], devices: list[ChipDevice]
              ) -> list[dict[str, Any]]:
    """One row per (estimator, device): each quantity's mean and std over the finished seeds; the gap
    to ideal paired by seed (device minus ideal synapses of the same estimator and seed)."""
    entries = {d.label: _device_entry(d) for d in devices}
    rows = []
    for e in chosen:
        ideal = {r["seed"]: r for r in runs if r["estimator"] == e.label and r["device"] == IDEAL
                 and r["status"] == "done"}
        for d in devices:
            mine = [r for r in runs if r["estimator"] == e.label and r["device"] == d.label]
            done = [r for r in mine if r["status"] == "done"]
            entry = entries[d.label]
            row: dict[str, Any] = {
                "estimator": e.label, "device": d.label, "ideal": entry["ideal"], "runs": len(mine),
                "done": len(done), "status": _status(mine),
                "errors": sorted({r["error"] for r in mine if r["error"]}),
                **{k: stats([r[k] for r in done]) for k in ("test_error", "best_test_error", "train_error",
                                                            "wall_seconds")},
                "gap_to_ideal": stats([r["test_error"] - ideal[r["seed"]]["test_error"] for r in done
                                       if r["seed"] in ideal]),
                "curve": _mean_curve([r["curve"] for r in done])}
            if not entry["ideal"]:
                row.update({k: stats([r.get(k) for r in done]) for k in (
                    "pulses", "pulses_up", "pulses_down", "pulses_per_device_mean", "pulses_per_device_max")})
                row["energy_joules"] = (stats([r.get("energy_joules") for r in done])
                                        if entry["energy_per_pulse"] else None)
                row["endurance"] = entry["endurance"]
                worst = max((r.get("pulses_per_device_max") or 0 for r in done), default=None)
                row["endurance_used"] = worst / entry["endurance"] if entry["endurance"] and worst is not None else None
            rows.append(row)
    return rows


def _status(runs: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if set(counts) == {"done"}:
        return "done"
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _mean_curve(curves: list[list[float]]) -> dict[str, list[float]] | None:
    """Mean and std of the test-error curves over seeds, over the epochs every seed reached."""
    curves = [c for c in curves if c]
    if not curves:
        return None
    length = min(len(c) for c in curves)
    columns = [stats([c[i] for c in curves]) for i in range(length)]
    return {"mean": [s["mean"] for s in columns], "std": [s["std"] for s in columns]}


# --------------------------------------------------------------------------- arguments


def _split(value: Any, python: str, flag: str) -> list[str]:
    """A comma-separated string or a list of strings/paths, as a list of non-empty strings."""
    items = value.split(",") if isinstance(value, str) else _as_list(value)
    if not all(isinstance(v, (str, Path)) for v in items):
        raise ConfigError(arg(python, flag), value, "names or paths (a list, or one comma-separated string)")
    items = [str(v).strip() for v in items if str(v).strip()]
    if not items:
        raise ConfigError(arg(python, flag), value, "at least one name or path")
    return items


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (str, Path)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _check_count(value: Any, python: str, flag: str, expected: str) -> None:
    if value is None and python in ("epochs", "subset"):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(arg(python, flag), value, expected)


def _overrides(overrides: Sequence[str]) -> list[str]:
    if isinstance(overrides, str):
        overrides = [overrides]
    items = list(overrides or [])
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(arg("overrides", "--set"), item, "key=value strings")
        key = parse_override(item)[0]
        if key == "synapses.device" or key.startswith("synapses.device."):
            raise ConfigError(f"{arg('overrides', '--set')} {item}", key,
                              f"a key chip does not set itself: name the devices in {arg('devices=', '--devices')}")
    return items


def _command(config: Any, devices: list[str], estimators: Any, epochs: int | None, subset: int | None, seeds: int,
             workers: int | None, scheduler: str | None, threads: int | None, overrides: list[str],
             out_dir: Path) -> str:
    """The ``neurosim chip`` command line that repeats (and continues) this study."""
    args = ["neurosim", "chip", ",".join(_abs(c) for c in _as_list(config)),
            "--devices", ",".join(_abs(d) for d in devices)]
    if estimators is not None:
        args += ["--estimators", ",".join(_split(estimators, "estimators", "--estimators"))]
    for flag, value in (("--epochs", epochs), ("--subset", subset), ("--workers", workers),
                        ("--scheduler", scheduler), ("--threads", threads)):
        if value is not None:
            args += [flag, str(value)]
    if seeds != 1:
        args += ["--seeds", str(seeds)]
    for item in overrides:
        args += ["--set", item]
    return shlex.join([*args, "--out", str(out_dir)])


def _python_call(config: Any, devices: list[str], estimators: Any, epochs: int | None, subset: int | None,
                 seeds: int, workers: int | None, scheduler: str | None, threads: int | None,
                 overrides: list[str], out_dir: Path) -> str:
    configs = [_abs(c) for c in _as_list(config)]
    parts = [repr(configs[0] if len(configs) == 1 else configs), f"devices={[_abs(d) for d in devices]!r}"]
    if estimators is not None:
        parts.append(f"estimators={_split(estimators, 'estimators', '--estimators')!r}")
    for name, value in (("epochs", epochs), ("subset", subset), ("workers", workers), ("scheduler", scheduler),
                        ("threads", threads)):
        if value is not None:
            parts.append(f"{name}={value!r}")
    if seeds != 1:
        parts.append(f"seeds={seeds}")
    if overrides:
        parts.append(f"overrides={overrides!r}")
    parts.append(f"out={str(out_dir)!r}")
    return f"neurosim.chip({', '.join(parts)})"


def _abs(value: Any) -> str:
    path = Path(str(value)).expanduser()
    return str(path.resolve()) if path.is_file() else str(value)
