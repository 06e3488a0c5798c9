"""neurosim chip: estimators picking sibling configs, devices, the report's numbers against the runs'
result.json, resume, seeds, and the errors of the Python call and of the command line."""

from __future__ import annotations

import json
import re
import shlex
import statistics
from pathlib import Path

import pytest
import yaml

import neurosim
from neurosim.cli import main
from neurosim.errors import ConfigError
from neurosim.studies.chip import family, resolve_estimators
from neurosim.sweeps.spec import SweepSpec

from mnist_data import SAMPLE_OVERRIDES

TINY = [*SAMPLE_OVERRIDES, "data.test_subset=100", "circuit.layers=[784, 32, 10]", "train.check_every=5"]
"""A tiny network on the bundled sample: a run takes well under a second."""


@pytest.fixture
def device_file(tmp_path) -> Path:
    """A device of one's own, with the endurance and energy per pulse its datasheet would state."""
    path = tmp_path / "my_device.yaml"
    path.write_text(yaml.safe_dump({"description": "64 noisy steps", "response": "constant", "w_min": -0.6,
                                    "w_max": 0.6, "states": 64, "dw_min_std": 0.1, "energy_per_pulse": 1e-12,
                                    "endurance": 1000}))
    return path


def small_chip(out: Path, devices, **kwargs):
    kwargs = {"epochs": 1, "subset": 200, "workers": 0, "threads": 1, "overrides": TINY, "progress": False,
              **kwargs}
    return neurosim.chip("mnist_fc1_ep", devices, out=out, **kwargs)


def md_table(text: str, heading: str) -> list[dict[str, str]]:
    """The first table after ``## heading`` in report.md, as dicts by column."""
    section = text.split(f"## {heading}\n", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        if not line.startswith("| "):
            break
        rows.append(dict(zip(header, [c.strip() for c in line.strip("|").split("|")])))
    return rows


# --------------------------------------------------------------------------- configs and estimators


def test_an_estimator_picks_the_sibling_config_of_the_family():
    assert family("mnist_fc1_ep") == ("mnist_fc1", "ep")
    assert family("mnist_fc1_cep_negbeta") == ("mnist_fc1", "cep_negbeta")
    assert family("quickstart") is None
    chosen = resolve_estimators("mnist_fc1_ep", ["ep", "cep", "cep_negbeta", "cvf"])
    assert [(e.label, e.base, e.estimator) for e in chosen] == [
        ("ep", "mnist_fc1_ep", "ep"), ("cep", "mnist_fc1_cep", "cep"),
        ("cep_negbeta", "mnist_fc1_cep_negbeta", "cep"), ("cvf", "mnist_fc1_cvf", "cvf")]
    # without estimators: the configs as given, labelled by their estimator part
    assert [(e.label, e.base) for e in resolve_estimators("mnist_fc1_ep,mnist_fc1_cep")] == [
        ("ep", "mnist_fc1_ep"), ("cep", "mnist_fc1_cep")]
    assert [e.label for e in resolve_estimators("quickstart")] == ["ep"]


def test_files_of_ones_own_find_their_siblings_beside_them(tmp_path):
    for name, estimator, lr in (("mine_ep", "ep", [0.1, 0.05]), ("mine_cep", "cep", [0.01, 0.005])):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "circuit": "mnist_fc1",
                                                               "estimator": {"name": estimator, "lr": lr}}))
    chosen = resolve_estimators(str(tmp_path / "mine_ep.yaml"), "ep,cep")
    assert [(e.label, e.base, e.estimator) for e in chosen] == [
        ("ep", str(tmp_path / "mine_ep.yaml"), "ep"), ("cep", str(tmp_path / "mine_cep.yaml"), "cep")]
    with pytest.raises(ConfigError, match=r"estimators.*'cvf'.*the mine family.*: cep, ep"):
        resolve_estimators(str(tmp_path / "mine_ep.yaml"), ["cvf"])


@pytest.mark.parametrize("config, estimators, expected", [
    ("mnist_fc1_ep", ["xyz"], r"'estimators': got 'xyz', expected one of the estimators of the mnist_fc1 family.*"
                              r"bptt, .*cep, .*cep_negbeta, .*cvf, .*ep"),
    ("quickstart", ["cep"], r"'estimators'.*no estimator part"),
    ("mnist_fc1_ep,mnist_fc1_cep", ["ep"], r"'estimators'.*no estimators with several configs"),
    ("no_such_experiment", None, r"'config'.*shipped experiments"),
])
def test_unknown_estimators_and_configs_are_refused_by_name(config, estimators, expected):
    with pytest.raises(ConfigError, match=expected):
        resolve_estimators(config, estimators)


# --------------------------------------------------------------------------- the report


def test_report_numbers_are_the_runs_results_and_a_second_call_trains_nothing(tmp_path, device_file):
    out = tmp_path / "chip"
    result = small_chip(out, ["levels_64", str(device_file)], estimators=["ep", "cep"])
    assert result.trained == 6 and result.counts == {"done": 6}
    assert [(r["estimator"], r["device"]) for r in result.rows] == [
        (e, d) for e in ("ep", "cep") for d in ("ideal", "levels_64", "my_device")]  # ideal first, unlisted

    summary = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    errors = {(r["estimator"], r["device"]): r for r in md_table(md, "Test error")}
    pulses = {(r["estimator"], r["device"]): r for r in md_table(md, "Pulses and write energy")}
    ideal = {}
    for run in summary["runs"]:
        folder = out / run["run_dir"]
        saved = json.loads((folder / "result.json").read_text())
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["estimator"]["name"] == run["estimator"] and config["train"]["epochs"] == 1
        assert config["data"]["train_subset"] == 200
        assert run["test_error"] == saved["test_error"] and run["best_test_error"] == saved["best_test_error"]
        curve = [json.loads(line)["test_error"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert run["curve"] == curve
        row = next(r for r in summary["rows"] if (r["estimator"], r["device"]) == (run["estimator"], run["device"]))
        assert row["test_error"]["values"] == [saved["test_error"]]
        assert errors[(run["estimator"], run["device"])]["final test error"] == f"{100 * saved['test_error']:.2f}%"
        if run["device"] == "ideal":
            assert "synapses" not in saved
            ideal[run["estimator"]] = saved["test_error"]
            continue
        device = saved["synapses"]
        for key in ("pulses", "pulses_up", "pulses_down", "pulses_per_device_mean", "pulses_per_device_max",
                    "energy_joules"):
            assert run[key] == device[key]
        table = pulses[(run["estimator"], run["device"])]
        assert table["pulses"] == f"{device['pulses']:,}"
        assert table["per device, max"] == f"{device['pulses_per_device_max']:,}"
        if run["device"] == "my_device":  # the file states energy and endurance
            assert device["energy_joules"] == pytest.approx(1e-12 * device["pulses"])
            assert table["write energy per training"] == f"{device['energy_joules']:.3g} J"
            assert table["endurance"] == "1,000"
            assert row["endurance_used"] == device["pulses_per_device_max"] / 1000
        else:  # levels_64 states neither
            assert table["write energy per training"] == "n/a" and table["endurance"] == "not stated"
    for row in summary["rows"]:
        assert row["gap_to_ideal"]["mean"] == pytest.approx(row["test_error"]["mean"] - ideal[row["estimator"]])

    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # self-contained: no file, font or script fetched
    assert page.count('src="data:image/png;base64,') == 4
    for png in ("report_test_error.png", "report_curves.png", "report_pulses.png", "report_pulse_response.png"):
        assert (out / png).is_file() and f"]({png})" in md

    # the commands it gives repeat it: the sweep file gives the same points, a train command the same run
    spec = SweepSpec.load(out / "ep" / "sweep.yaml")
    assert sorted(p.name for p in spec.points()) == sorted(r["point"] for r in summary["runs"] if r["estimator"] == "ep")
    assert summary["command"].startswith("neurosim chip mnist_fc1_ep --devices levels_64,")
    assert "--estimators ep,cep" in summary["command"]
    run = next(r for r in summary["runs"] if r["device"] == "levels_64" and r["estimator"] == "cep")
    assert main(shlex.split(run["train_command"])[1:] + ["--quiet"]) == 0
    again = json.loads((out / "repeat" / "cep" / run["point"] / "result.json").read_text())
    assert (again["test_error"], again["synapses"]["pulses"]) == (run["test_error"], run["pulses"])

    # resume: the same call again reads every run back and trains nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/points/*/result.json")}
    second = small_chip(out, ["levels_64", str(device_file)], estimators=["ep", "cep"])
    assert second.trained == 0 and {p: p.stat().st_mtime_ns for p in out.glob("*/points/*/result.json")} == stamps
    assert second.rows == result.rows


def test_seeds_give_mean_and_std_and_more_seeds_reuse_the_first(tmp_path):
    out = tmp_path / "chip"
    first = small_chip(out, "levels_64")
    assert first.trained == 2
    result = small_chip(out, "levels_64", seeds=3)
    assert result.trained == 4  # seed 0 of both devices was already done
    md = (out / "report.md").read_text()
    table = {r["device"]: r for r in md_table(md, "Test error")}
    for row in result.rows:
        runs = [r for r in result.runs if r["device"] == row["device"]]
        assert sorted(r["seed"] for r in runs) == [0, 1, 2]
        values = [json.loads((out / r["run_dir"] / "result.json").read_text())["test_error"] for r in runs]
        assert row["test_error"]["values"] == values
        assert row["test_error"]["mean"] == pytest.approx(statistics.mean(values))
        assert row["test_error"]["std"] == pytest.approx(statistics.stdev(values))
        assert table[row["device"]]["final test error"] == (f"{100 * statistics.mean(values):.2f} ± "
                                                            f"{100 * statistics.stdev(values):.2f}%")
    ideal = {r["seed"]: r["test_error"] for r in result.runs if r["device"] == "ideal"}
    device = next(r for r in result.rows if r["device"] == "levels_64")
    gaps = [r["test_error"] - ideal[r["seed"]] for r in result.runs if r["device"] == "levels_64"]
    assert device["gap_to_ideal"]["values"] == pytest.approx(gaps)  # paired by seed
    assert "mean ± standard deviation over the seeds" in md


# --------------------------------------------------------------------------- errors


def test_an_unknown_device_is_refused_with_the_presets_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError) as info:
        small_chip(tmp_path / "chip", ["levels_64", "no_such_device"])
    message = str(info.value)
    assert "'devices': got 'no_such_device'" in message and "levels_64" in message and "taox_tio2" in message
    assert not (tmp_path / "chip").exists()


@pytest.mark.parametrize("kwargs, expected", [
    ({"seeds": 0}, "'seeds': got 0"),
    ({"epochs": 0}, "'epochs': got 0"),
    ({"subset": -5}, "'subset': got -5"),
    ({"workers": 1, "scheduler": "tcp://127.0.0.1:1"}, "'workers': got 1, expected no worker count with scheduler"),
    ({"overrides": ["synapses.device=pcmo"]}, "overrides synapses.device=pcmo"),
])
def test_python_errors_name_the_argument(tmp_path, kwargs, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        small_chip(tmp_path / "chip", "levels_64", **kwargs)


@pytest.mark.parametrize("flags, expected", [
    (["--devices", "levels_64,no_such_device"], "'--devices': got 'no_such_device', expected a YAML file or one of "
                                                "the shipped devices: ag_a_si"),
    (["--devices", "levels_64", "--estimators", "ep,xyz"], "'--estimators': got 'xyz'"),
    (["--devices", "levels_64", "--seeds", "0"], "'--seeds': got 0"),
    (["--devices", "levels_64", "--workers", "1", "--scheduler", "tcp://127.0.0.1:1"],
     "'--workers': got 1, expected no worker count with --scheduler"),
    (["--devices", "levels_64", "--set", "synapses.device=pcmo"], "--set synapses.device=pcmo"),
])
def test_cli_errors_name_the_flag_without_traceback(tmp_path, capsys, flags, expected):
    assert main(["chip", "mnist_fc1_ep", *flags, "--out", str(tmp_path / "chip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurosim: error: ") and expected in err and "Traceback" not in err


def test_cli_runs_the_study_and_prints_its_table(tmp_path, capsys):
    args = ["chip", "mnist_fc1_ep,mnist_fc1_cep", "--devices", "levels_16", "--epochs", "1", "--subset", "100",
            "--workers", "0", "--threads", "1", "--quiet", "--out", str(tmp_path / "chip")]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"^cep\s+levels_16\s+\d+\.\d\d%", out, re.M) and "4 runs (4 done), 4 trained now" in out
    assert (tmp_path / "chip" / "report.html").is_file()
