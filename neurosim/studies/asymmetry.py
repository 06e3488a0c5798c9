"""Fig. 1c of Ernoult et al. 2020: how well a network satisfies Theorem 1 before training vs what it learns.

For each initial angle between forward and backward weights, a C-VF network is built, its
Theorem-1 agreement is measured on one batch before any training (``neurosim gdu``'s
processes: the angle between the total VF update sum_t DeltaVF_theta(t) and the total BPTT
gradient sum_t -grad_theta(t), over all weights at once, as the paper's "angle-grad"), and it
is trained; the same is done for the reference model (C-EP, tied weights). The study writes
``study.json`` (one row per point) and ``fig1c.png`` (final test error against the
Theorem-1 angle, initial weight angles as labels). Each training run has its own folder under
the study's, so an interrupted study resumes: finished runs are read back, unfinished ones are
resumed from their last epoch.

A study is described by a YAML file (``neurosim/presets/studies/fig1c_cvf.yaml``, loaded by name)::

    name: fig1c_cvf
    base: mnist_fc1_cvf            # experiment trained at every angle (dynamics vector_field)
    angles: [0, 45, 90, 135, 180]  # initial angles in degrees
    reference: mnist_fc1_cep       # optional: the tied C-EP point
    overrides: [train.epochs=10]   # --set keys applied to every run
    gdu_batch_size: 100            # samples of the Theorem-1 batch
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


from neurosim.schema import read_yaml
from neurosim.errors import ConfigError


@dataclass
class AsymmetrySpec:
    name: str
    base: str
    angles: list[float]
    reference: str | None = None
    overrides: list[str] = field(default_factory=list)
    gdu_batch_size: int = 100

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any]) -> AsymmetrySpec:
        if isinstance(source, Mapping):
            raw, where = dict(source), "study"
        else:
            from neurosim.presets import find

            path = find("studies", str(source))
            where = str(path)
            raw = read_yaml(path, "a mapping with name, base and angles")
        if not isinstance(raw, dict):
            raise ConfigError(where, type(raw).__name__, "a mapping with name, base and angles")
        known = {"name", "base", "angles", "reference", "overrides", "gdu_batch_size"}
        for key in raw:
            if key not in known:
                raise ConfigError(key, raw[key], f"one of the study keys: {', '.join(sorted(known))}")
        for key in ("name", "base", "angles"):
            if key not in raw:
                raise ConfigError(key, None, f"a value ({where} must give name, base and angles)")
        angles = raw["angles"]
        if (not isinstance(angles, list) or not angles
                or not all(isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a <= 180 for a in angles)):
            raise ConfigError("angles", angles, "a non-empty list of angles in degrees between 0 and 180")
        overrides = raw.get("overrides") or []
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise ConfigError("overrides", overrides, "a list of key=value strings")
        size = raw.get("gdu_batch_size", 100)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("gdu_batch_size", size, "a positive integer")
        return cls(str(raw["name"]), str(raw["base"]), [float(a) for a in angles], raw.get("reference"),
                   list(overrides), size)


@dataclass
class AsymmetryResult:
    rows: list[dict[str, Any]]
    out_dir: Path

    @property
    def table(self) -> str:
        lines = [f"{'run':<22} {'init angle':>10} {'gdu angle':>10} {'gdu cos':>9} {'test err':>9} {'final angle':>12}"]
        for r in self.rows:
            init = "-" if r["initial_angle"] is None else f"{r['initial_angle']:g}"
            final = "-" if r["final_angle_deg"] is None else ", ".join(f"{a:.1f}" for a in r["final_angle_deg"])
            lines.append(f"{r['run']:<22} {init:>10} {r['gdu_angle_deg']:>10.2f} {r['gdu_cosine']:>9.5f} "
                         f"{100 * r['test_error']:>8.2f}% {final:>12}")
        return "\n".join(lines)


def asymmetry_study(spec: str | Path | Mapping[str, Any] | AsymmetrySpec, out: str | Path | None = None,
                    extra_overrides: list[str] | None = None, progress: bool = True) -> AsymmetryResult:
    """Run (or resume) a Fig. 1c study; the Python twin of ``neurosim asymmetry``."""
    from neurosim.config import load_config

    if not isinstance(spec, AsymmetrySpec):
        spec = AsymmetrySpec.load(spec)
    out_dir = Path(out) if out is not None else Path("runs") / spec.name
    overrides = spec.overrides + list(extra_overrides or [])
    points: list[tuple[str, str, float | None]] = []
    base = load_config(spec.base, overrides)  # fails early on a bad base or override
    if base.circuit.dynamics != "vector_field":
        raise ConfigError("base", spec.base, "an experiment with circuit dynamics vector_field (C-VF or VF)")
    for angle in spec.angles:
        points.append((f"angle_{angle:g}", spec.base, angle))
    if spec.reference:
        load_config(spec.reference, overrides)
        points.append(("reference", spec.reference, None))
    rows = []
    for i, (label, experiment, angle) in enumerate(points, 1):
        if progress:
            print(f"[{i}/{len(points)}] {label} ({experiment})", file=sys.stderr)
        point_overrides = overrides + ([f"circuit.initial_angle={angle}"] if angle is not None else [])
        rows.append(_point(label, experiment, angle, point_overrides, out_dir / label, spec, progress))
        _write(out_dir, spec, rows)
    return AsymmetryResult(rows, out_dir)


def _point(label: str, experiment: str, angle: float | None, overrides: list[str], run_dir: Path,
           spec: AsymmetrySpec, progress: bool) -> dict[str, Any]:
    from neurosim.studies.gdu import gdu
    from neurosim.run.trainer import train

    check_file = run_dir / "gdu_before_training.json"
    if check_file.is_file():
        check = json.loads(check_file.read_text())
    else:
        result = gdu(experiment, overrides=overrides, batch_size=spec.gdu_batch_size, write=False,
                     progress=progress)
        cosine = result.total_cosine
        check = {"cosine": cosine, "angle_deg": math.degrees(math.acos(max(-1.0, min(1.0, cosine)))),
                 "free_residual": result.free_residual}
        from neurosim.io import atomic_write_json

        atomic_write_json(check_file, check)
    result_file = run_dir / "result.json"
    if result_file.is_file():
        summary = json.loads(result_file.read_text())
    else:
        train(experiment, out=run_dir, resume=(run_dir / "checkpoint.pt").is_file(), overrides=overrides,
              progress=progress)
        summary = json.loads(result_file.read_text())
    return {"run": label, "experiment": experiment, "initial_angle": angle,
            "gdu_cosine": check["cosine"], "gdu_angle_deg": check["angle_deg"],
            "free_residual": check["free_residual"], "test_error": summary["test_error"],
            "best_test_error": summary["best_test_error"], "epochs": summary["epochs"],
            "initial_angle_deg": summary.get("initial", {}).get("angle_deg"),
            "final_angle_deg": summary.get("final", {}).get("angle_deg")}


def _write(out_dir: Path, spec: AsymmetrySpec, rows: list[dict[str, Any]]) -> None:
    from neurosim.io import atomic_write_json

    atomic_write_json(out_dir / "study.json", {"spec": spec.__dict__, "rows": rows})
    plot_asymmetry(rows, out_dir / "fig1c.png", title=spec.name)


def plot_asymmetry(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Final test error against the angle between total update and total BPTT gradient."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurosim.io import atomic_write

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    vf = [r for r in rows if r["initial_angle"] is not None]
    ref = [r for r in rows if r["initial_angle"] is None]
    ax.plot([r["gdu_angle_deg"] for r in vf], [100 * r["test_error"] for r in vf], "o-", label="C-VF")
    for r in vf:
        ax.annotate(f"{r['initial_angle']:g}°", (r["gdu_angle_deg"], 100 * r["test_error"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
    if ref:
        ax.plot([r["gdu_angle_deg"] for r in ref], [100 * r["test_error"] for r in ref], "s",
                color="C3", label="C-EP (tied)")
    ax.set_xlabel("angle(total update, total BPTT gradient) before training (deg)")
    ax.set_ylabel("test error (%)")
    ax.set_yscale("log")  # a few tenths of a point near 0 degrees, chance (90%) beyond
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(f"{title}: labels = initial angle between W and B^T", fontsize=9)
    fig.tight_layout()
    atomic_write(Path(path), lambda h: fig.savefig(h, format="png"), "wb")
    plt.close(fig)
