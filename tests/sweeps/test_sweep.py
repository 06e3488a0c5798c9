"""Sweeps: expansion and errors of sweep files, local workers, a Dask cluster, failures, kills, resume, report."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

import neurosim
from neurosim.presets import available, find as find_preset
from neurosim.cli import main
from neurosim.errors import ConfigError
from neurosim.sweeps.cluster import usable_cores
from neurosim.sweeps.spec import SweepSpec

from mnist_data import SAMPLE_OVERRIDES
TINY = [*SAMPLE_OVERRIDES, "train.epochs=1", "data.train_subset=200", "data.test_subset=100",
        "circuit.layers=[784, 32, 10]", "train.check_every=5"]


def tiny(name: str = "tiny", overrides: list[str] | None = None, **extra) -> dict:
    """A sweep of tiny EP runs (32 hidden units, 200 samples): about 0.3 s per point."""
    return {"name": name, "base": "mnist_fc1_ep", "overrides": TINY + list(overrides or []), **extra}


def rows_of(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def epochs_of(run_dir: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- sweep files


def test_axes_expand_to_stable_named_points(tmp_path):
    spec = tiny(grid={"estimator.beta": [0.1, 0.5], "circuit.dt": {"linspace": [0.25, 0.75, 3]}},
                zip={"estimator.lr": [[0.1, 0.05], [0.2, 0.1]], "estimator.T": [20, 30]},
                random={"samples": 3, "seed": 7, "keys": {"estimator.K": {"int_uniform": [5, 15]},
                                                          "synapses.params.dw_min_std": {"log_uniform": [1e-3, 1e-1]}}},
                repeats=2)
    points = SweepSpec.load(spec).points()
    assert len(points) == 2 * 3 * 2 * 3 * 2
    assert sorted({p.values["circuit.dt"] for p in points}) == [0.25, 0.5, 0.75]
    assert {p.values["seed"] for p in points} == {0, 1}  # repeats: base seed 0, 1
    assert all(5 <= p.values["estimator.K"] <= 15 for p in points)
    stds = {p.values["synapses.params.dw_min_std"] for p in points}
    assert len(stds) == 3 and all(1e-3 <= s <= 1e-1 for s in stds)
    # zipped values move together, and each point's config holds its values
    for p in points:
        assert (p.values["estimator.lr"], p.values["estimator.T"]) in (([0.1, 0.05], 20), ([0.2, 0.1], 30))
        assert p.config["estimator"]["T"] == p.values["estimator.T"] and p.config["seed"] == p.values["seed"]
        assert p.config["data"]["train_subset"] == 200
    names = [p.name for p in points]
    assert len(set(names)) == len(names)
    assert names[0].startswith("beta=0.1_dt=0.25_lr=0.1-0.05_T=20_K=")
    again = SweepSpec.load(spec).points()  # the same file gives the same points: a restart finds them
    assert [(p.name, p.values) for p in again] == [(p.name, p.values) for p in points]
    other_seed = SweepSpec.load({**spec, "random": {**spec["random"], "seed": 8}}).points()
    assert {p.values["synapses.params.dw_min_std"] for p in other_seed} != stds


def test_device_files_name_points_by_their_stem_and_collisions_get_digests(tmp_path):
    # neurosim chip passes device files as absolute paths (for workers elsewhere): the folder name
    # must not carry the directories, and two files of one stem must still get distinct folders
    a, b = tmp_path / "x" / "mine.yaml", tmp_path / "y" / "mine.yaml"
    for path in (a, b):
        path.parent.mkdir()
        path.write_text(find_preset("devices", "levels_64").read_text())
    points = SweepSpec.load(tiny(grid={"synapses.device": ["ideal", str(a), str(b), "levels_64"]})).points()
    names = [p.name for p in points]
    assert names[0] == "device=ideal" and names[3] == "device=levels_64"
    assert names[1].startswith("device=mine_") and names[2].startswith("device=mine_") and names[1] != names[2]
    single = SweepSpec.load(tiny(grid={"synapses.device": ["ideal", str(a)]})).points()
    assert [p.name for p in single] == ["device=ideal", "device=mine"]
    assert single[1].values["synapses.device"] == str(a)  # the run still gets the full path


def test_sweep_file_reads_exponents_as_numbers_and_bases_relative_to_itself(tmp_path):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"name": "mine", "circuit": "mnist_fc1",
                                                        "estimator": {"name": "ep", "lr": [0.1, 0.05]}}))
    (tmp_path / "s.yaml").write_text("name: s\nbase: mine.yaml\ngrid:\n  estimator.beta: [1e-2, 2.5E-1]\n"
                                     "  estimator.lr: [[1e-3, 5e-4]]\n")
    points = SweepSpec.load(tmp_path / "s.yaml").points()
    assert [p.values["estimator.beta"] for p in points] == [0.01, 0.25]
    assert points[0].config["estimator"]["lr"] == [0.001, 0.0005] and points[0].config["name"] == "mine"


@pytest.mark.parametrize("text, where, expected", [
    ("name: s\nbase: mnist_fc1_ep\ngrids: {estimator.beta: [0.1]}\n", "grids", "one of the sweep keys"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.bta: [0.1]}\n", "grid: estimator.bta", "one of the known keys"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.beta: [0.1, 0]}\n", "grid: estimator.beta (point beta=0)",
     "non-zero nudging"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.lr: [0.1]}\n", "grid: estimator.lr", "a list of numbers"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.beta: []}\n", "grid: estimator.beta", "non-empty list"),
    ("name: s\nbase: mnist_fc1_ep\nzip: {estimator.beta: [0.1, 0.2], estimator.T: [10]}\n", "zip",
     "equal length"),
    ("name: s\nbase: mnist_fc1_ep\nrandom: {samples: 3, keys: {estimator.beta: {normal: [0, 1]}}}\n",
     "random: keys: estimator.beta", "log_uniform"),
    ("name: s\nbase: mnist_fc1_ep\nrandom: {samples: 0, keys: {estimator.beta: {uniform: [0.1, 1]}}}\n",
     "random: samples", "an integer >= 1"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.beta: [0.1]}\noverrides: [estimator.beta=0.3]\n",
     "overrides: estimator.beta=0.3", "no axis sweeps"),
    ("name: s\nbase: mnist_fc1_ep\noverrides: [train.epochs]\n", "train.epochs", "key=value"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.beta: [0.1]}\nreport: {plots: [{x: estimator.T}]}\n",
     "report: plots[0]: x", "a swept key: estimator.beta"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.beta: [0.1]}\nreport: {metric: accuracy}\n",
     "report: metric", "test_error"),
    ("name: s\nbase: mnist_fc1_ep\nrepeats: 2\nseeds: [0, 1]\n", "repeats", "not both"),
    ("name: s\nbase: no_such_experiment\n", "base/overrides: experiment", "shipped experiments"),
    ("name: s\ngrid: {estimator.beta: [0.1]}\n", "base", "non-empty string"),
    ("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.beta: [0.1}\n", "(file)", "valid YAML"),
])
def test_malformed_sweep_files_name_the_file_key_and_expectation(tmp_path, text, where, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        SweepSpec.load(path).points()
    message = str(info.value)
    assert str(path) in message and where in message and expected in message, message


def test_cli_reports_a_bad_sweep_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.bta: [0.1]}\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "estimator.bta" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written
    assert main(["report", str(tmp_path)]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


def test_shipped_sweeps_load_and_validate_every_point():
    names = available("sweeps")
    assert {"cep_beta_eta", "device_states_noise", "cvf_initial_angle"} <= set(names)
    for name in names:
        spec = SweepSpec.load(name)
        points = spec.points()
        assert points and all(p.config["train"]["epochs"] >= 1 for p in points)
        assert spec.plots  # each ships the plots its question needs


def test_the_documented_sweep_file_is_valid():
    import re

    from neurosim.config import load_yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "guide" / "sweeps.md").read_text()
    spec = SweepSpec.load(load_yaml(re.search(r"```yaml\n(.*?)```", text, re.DOTALL).group(1)))
    points = spec.points()
    assert len(points) == 3 * 2 * 2 * 2 * 2 * 2 and spec.reference_point() is not None and len(spec.plots) == 2


def test_package_names_are_the_functions():
    import neurosim.sweeps.report
    import neurosim.sweeps.execution  # importing the submodules must not rebind the package names

    assert callable(neurosim.sweep) and callable(neurosim.report)


# --------------------------------------------------------------------------- running


def test_local_workers_run_every_point_and_record_failures(tmp_path, capsys):
    # Four points on two local worker processes: two train, one diverges, one raises (its network
    # ends with 9 outputs for 10 classes, which only training finds out); the others go on.
    spec = tiny(zip={"estimator.lr": [[0.1, 0.05], [0.2, 0.1], [1.0e+38, 1.0e+38], [0.1, 0.05]],
                     "circuit.layers": [[784, 32, 10], [784, 32, 10], [784, 32, 10], [784, 32, 9]]},
                report={"plots": [{"x": "estimator.lr"}]})
    spec["overrides"] = [o for o in TINY if not o.startswith("circuit.layers")]
    out = tmp_path / "sweep"
    result = neurosim.sweep(spec, out=out, workers=2, progress=True)
    status = [r["status"] for r in result.rows]
    assert status == ["done", "done", "diverged", "failed"], result.table
    assert result.session["workers"] == 2 and result.session["threads"] == max(1, usable_cores() // 2)
    rows = rows_of(out)
    assert [r["status"] for r in rows] == status
    assert "diverged at epoch 1" in rows[2]["error"] and "a last size of 10" in rows[3]["error"]
    for row in rows[:2]:
        assert 0 < float(row["test_error"]) < 0.9 and row["epochs"] == "1" and row["error"] == ""
        saved = json.loads((out / "points" / row["point"] / "result.json").read_text())
        assert float(row["test_error"]) == saved["test_error"]
        record = json.loads((out / "points" / row["point"] / "sweep_point.json").read_text())
        assert record["threads"] == result.session["threads"] and record["pid"] != os.getpid()
    assert json.loads(rows[0]["estimator.lr"]) == [0.1, 0.05]
    err = capsys.readouterr().err
    assert "4/4 done" not in err and "2/4 done, 0 running, 2 failed, 0 pending" in err and "ETA" in err
    assert (out / "plot1_test_error_vs_lr.png").read_bytes()[:4] == b"\x89PNG"


def test_restart_skips_finished_points_and_reruns_failed_ones(tmp_path, monkeypatch):
    spec = tiny(grid={"estimator.beta": [0.1, 0.3]})
    out = tmp_path / "sweep"
    neurosim.sweep(spec, out=out, workers=0, threads=1, progress=False)
    before = {p.name: (p / "result.json").stat().st_mtime_ns for p in (out / "points").iterdir()}
    point = out / "points" / "beta=0.3"
    record = json.loads((point / "sweep_point.json").read_text())
    (point / "result.json").unlink()  # as if it had failed
    (point / "sweep_point.json").write_text(json.dumps({**record, "status": "failed", "error": "boom"}))
    (point / "checkpoint.pt").unlink()
    (point / "metrics.jsonl").unlink()

    kept = neurosim.sweep(spec, out=out, workers=0, threads=1, retry_failed=False, progress=False)
    assert [r["status"] for r in kept.rows] == ["done", "failed"] and kept.rows[1]["error"] == "boom"
    assert kept.session["to_run"] == 0

    again = neurosim.sweep(spec, out=out, workers=0, threads=1, progress=False)
    assert [r["status"] for r in again.rows] == ["done", "done"] and again.session["to_run"] == 1
    assert (out / "points" / "beta=0.1" / "result.json").stat().st_mtime_ns == before["beta=0.1"]
    assert json.loads((point / "sweep_point.json").read_text())["attempts"] == 2


def test_a_failed_point_queued_again_reports_as_pending_while_it_waits(tmp_path, monkeypatch):
    """A sweep started again runs its failed points again: while they wait, a report of the
    folder (a publish of a long sweep) shows them pending, not their old failure, which their
    record keeps as previous_error."""
    from neurosim.sweeps import execution

    spec = tiny(grid={"estimator.beta": [0.1, 0.3]})
    out = tmp_path / "sweep"
    neurosim.sweep(spec, out=out, workers=0, threads=1, progress=False)
    point = out / "points" / "beta=0.3"
    record = json.loads((point / "sweep_point.json").read_text())
    for name in ("result.json", "checkpoint.pt", "metrics.jsonl"):
        (point / name).unlink()
    (point / "sweep_point.json").write_text(json.dumps({**record, "status": "failed", "error": "boom"}))
    seen = {}

    def waiting(spec, todo, out_dir, *args, **kwargs):  # the points are queued, none has started
        seen["rows"] = neurosim.report(out_dir).rows

    monkeypatch.setattr(execution, "run_points", waiting)
    neurosim.sweep(spec, out=out, workers=0, threads=1, progress=False)
    assert [r["status"] for r in seen["rows"]] == ["done", "pending"]
    saved = json.loads((point / "sweep_point.json").read_text())
    assert saved["status"] == "pending" and saved["previous_error"] == "boom" and saved["error"] == ""


def test_run_killed_between_last_checkpoint_and_result_is_not_lost(tmp_path):
    spec = tiny()
    out = tmp_path / "sweep"
    first = neurosim.sweep(spec, out=out, workers=0, threads=1, progress=False)
    point = out / "points" / "base"
    metrics = (point / "metrics.jsonl").read_bytes()
    (point / "result.json").unlink()
    second = neurosim.sweep(spec, out=out, workers=0, threads=1, progress=False)
    saved = json.loads((point / "result.json").read_text())
    assert saved["rebuilt_from_checkpoint"] and (point / "metrics.jsonl").read_bytes() == metrics  # not retrained
    assert second.rows[0]["test_error"] == first.rows[0]["test_error"]


def test_a_changed_config_is_refused_not_mixed_in(tmp_path):
    out = tmp_path / "sweep"
    neurosim.sweep(tiny(grid={"estimator.beta": [0.1]}), out=out, workers=0, threads=1, progress=False)
    with pytest.raises(ConfigError, match="estimator.T"):
        neurosim.sweep(tiny(grid={"estimator.beta": [0.1]}, overrides=["estimator.T=12"]), out=out, workers=0,
                       threads=1, progress=False)
    # raising the epochs is not a change: the finished point is extended with train(resume=True)
    longer = neurosim.sweep(tiny(grid={"estimator.beta": [0.1]}, overrides=["train.epochs=2"]), out=out,
                            workers=0, threads=1, progress=False)
    assert longer.rows[0]["epochs"] == 2 and epochs_of(out / "points" / "beta=0.1") == [1, 2]


def test_one_sweep_process_per_folder(tmp_path):
    import socket

    out = tmp_path / "sweep"
    out.mkdir()
    (out / ".sweep.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    with pytest.raises(neurosim.NeurosimError, match="another sweep is running"):
        neurosim.sweep(tiny(), out=out, workers=0, threads=1, progress=False)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (out / ".sweep.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    result = neurosim.sweep(tiny(), out=out, workers=0, threads=1, progress=False)  # a stale lock is taken over
    assert result.rows[0]["status"] == "done" and not (out / ".sweep.lock").exists()


def test_interrupted_sweep_resumes_with_every_point_done_once(tmp_path):
    # The real command, killed (SIGKILL to it and its workers) once a point has finished; started
    # again, it skips the finished points, resumes the others and ends with every epoch run once.
    spec = tiny(grid={"estimator.beta": [0.1, 0.2, 0.3, 0.4]}, overrides=["train.epochs=3", "data.train_subset=400"])
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "neurosim.cli", "sweep", str(path), "--out", str(out), "--workers", "2",
               "--quiet"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not list(out.glob("points/*/result.json")):
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("points/*/result.json")}
    assert 1 <= len(finished) < 4
    assert any(row["status"] == "pending" for row in rows_of(out))

    result = neurosim.sweep(path, out=out, workers=0, threads=1, progress=False)
    assert [r["status"] for r in result.rows] == ["done"] * 4
    for run_dir in (out / "points").iterdir():
        assert epochs_of(run_dir) == [1, 2, 3], run_dir.name
    for name, mtime in finished.items():  # finished before the kill: not run again
        assert (out / "points" / name / "result.json").stat().st_mtime_ns == mtime
    assert result.session["to_run"] == 4 - len(finished)


# --------------------------------------------------------------------------- a Dask cluster


@pytest.fixture(scope="module")
def cluster():
    """A Dask LocalCluster of two single-threaded worker processes on 127.0.0.1, shut down after."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 3}):
        local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                             dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    client = Client(local)
    yield local, client
    client.close()
    local.close()


def test_sweep_on_a_dask_cluster(tmp_path, cluster, capsys):
    local, _ = cluster
    spec = tiny(grid={"estimator.beta": [0.1, 0.5]}, repeats=2,
                reference={"label": "BPTT", "overrides": ["estimator.name=bptt"]})
    out = tmp_path / "sweep"
    assert main(["sweep", yaml_file(tmp_path, spec), "--out", str(out), "--scheduler", local.scheduler_address,
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "5 points (5 done)" in printed and "reference" in printed
    rows = rows_of(out)
    assert [r["point"] for r in rows] == ["beta=0.1_seed=0", "beta=0.1_seed=1", "beta=0.5_seed=0",
                                          "beta=0.5_seed=1", "reference"]
    cores = usable_cores()
    for row in rows:
        record = json.loads((out / "points" / row["point"] / "sweep_point.json").read_text())
        assert record["threads"] == max(1, cores // 2)  # cores // task slots on the host
    assert neurosim.load_config(out / "points" / "reference" / "config.yaml").estimator.name == "bptt"

    # the report: the table and a line plot (seeds averaged) with the reference as a line
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "beta" in printed and "test err" in printed and "plot1_test_error_vs_beta.png" in printed
    assert (out / "plot1_test_error_vs_beta.png").read_bytes()[:4] == b"\x89PNG"


def test_a_killed_worker_is_retried_and_the_point_resumes(tmp_path, cluster):
    local, client = cluster
    spec = tiny(grid={"estimator.beta": [0.1, 0.2]}, overrides=["train.epochs=3", "data.train_subset=1000"])
    out = tmp_path / "sweep"
    victim = out / "points" / "beta=0.1"
    killed = []

    def kill_when_mid_run():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                record = json.loads((victim / "sweep_point.json").read_text())
                done_epochs = len((victim / "metrics.jsonl").read_text().splitlines())
            except (OSError, ValueError):
                time.sleep(0.02)
                continue
            if record.get("status") == "running" and 1 <= done_epochs < 3:
                os.kill(record["pid"], signal.SIGKILL)  # the worker process itself, mid-run
                killed.append(record["pid"])
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_when_mid_run)
    watcher.start()
    result = neurosim.sweep(spec, out=out, scheduler=local.scheduler_address, progress=False)
    watcher.join()
    assert killed, "the point finished before it could be killed"
    assert [r["status"] for r in result.rows] == ["done", "done"]
    record = json.loads((victim / "sweep_point.json").read_text())
    assert record["attempts"] == 2 and record["pid"] != killed[0]
    assert epochs_of(victim) == [1, 2, 3]  # resumed from its checkpoint: no epoch lost or repeated
    assert int(rows_of(out)[0]["attempts"]) == 2
    client.wait_for_workers(2, timeout=30)  # the nanny restarted the killed worker


def test_a_scheduler_without_workers_warns_and_the_sweep_runs_once_one_joins(tmp_path, monkeypatch):
    """A scheduler with no worker must not look like a hung sweep: it warns, then waits for one
    (here the worker is started by the warning itself, so the order cannot race)."""
    import types

    from distributed import LocalCluster

    from neurosim.sweeps import cluster as cluster_module

    monkeypatch.setattr(cluster_module, "WORKER_WAIT", 0.5)
    spec = tiny(grid={"estimator.beta": [0.1]})
    warned = []
    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as local:
        def warn(message, category, stacklevel=1):
            warned.append((str(message), category))
            threading.Thread(target=local.scale, args=(1,)).start()

        monkeypatch.setattr(cluster_module, "warnings", types.SimpleNamespace(warn=warn))
        result = neurosim.sweep(spec, out=tmp_path / "sweep", scheduler=local.scheduler_address, progress=False)
    assert len(warned) == 1 and warned[0][1] is cluster_module.NoWorkersWarning
    assert "no Dask worker has joined the scheduler" in warned[0][0] and "dask worker" in warned[0][0]
    assert [r["status"] for r in result.rows] == ["done"]


def test_local_workers_keep_glibc_adaptive_malloc():
    # Dask's default MALLOC_TRIM_THRESHOLD_ made training 1.7x slower in a worker (see local_cluster)
    from distributed import Client

    from neurosim.sweeps.cluster import local_cluster

    with local_cluster(1) as local, Client(local) as client:
        nanny = next(iter(local.workers.values()))
        assert "MALLOC_TRIM_THRESHOLD_" not in nanny.pre_spawn_env and nanny.pre_spawn_env["OMP_NUM_THREADS"] == "1"
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:  # a Dask nanny started earlier in this process sets it
            assert list(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == [None]


def yaml_file(folder: Path, spec: dict) -> str:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


# --------------------------------------------------------------------------- workers that cannot load or run a point


class Hung(Exception):
    """Not a TimeoutError: the sweep's wait loop must not take it for its own poll timeout."""


@pytest.fixture
def deadline():
    """Fail (an exception raised in the main thread) if the test runs past 90 s, instead of hanging."""
    def expired(signum, frame):
        raise Hung("the sweep hung: a point its worker could not load or run stayed pending")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(90)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def unloadable_run_point(tmp_path, monkeypatch):
    """The sweep's run_point replaced by one from a module only this process can import (as when the
    workers' neurosim is missing or mid-edit): a worker cannot unpickle the point's task."""
    import importlib

    folder = tmp_path / "driver_only"
    folder.mkdir()
    (folder / "ghost_sweep_worker.py").write_text("def run_point(task):\n    return {'status': 'done'}\n")
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("ghost_sweep_worker")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(folder)])  # gone before the workers spawn
    monkeypatch.setattr("neurosim.sweeps.cluster.run_point", module.run_point)
    yield
    sys.modules.pop("ghost_sweep_worker", None)


def test_a_point_its_worker_cannot_load_is_recorded_as_failed(tmp_path, capsys, deadline, unloadable_run_point):
    spec = tiny(grid={"estimator.beta": [0.1, 0.2]})
    out = tmp_path / "sweep"
    assert main(["sweep", yaml_file(tmp_path, spec), "--out", str(out), "--workers", "1", "--quiet"]) == 1
    assert "ModuleNotFoundError" in capsys.readouterr().out  # the table
    rows = rows_of(out)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    for row in rows:
        assert row["error"] == ("ModuleNotFoundError: No module named 'ghost_sweep_worker' (the worker could not "
                                "load or start this point)")
        record = json.loads((out / "points" / row["point"] / "sweep_point.json").read_text())
        assert record["status"] == "failed" and "ghost_sweep_worker" in record["traceback"]


def test_a_sweep_whose_workers_keep_failing_to_load_stops_with_the_error(tmp_path, capsys, deadline,
                                                                         unloadable_run_point):
    import re

    from neurosim.sweeps.cluster import LOAD_FAILURES

    spec = tiny(grid={"estimator.beta": [0.1, 0.2, 0.3, 0.4, 0.5]})
    out = tmp_path / "sweep"
    assert main(["sweep", yaml_file(tmp_path, spec), "--out", str(out), "--workers", "1", "--quiet"]) == 2
    printed = capsys.readouterr().err
    counted = re.search(r"could not load or start (\d+) points in a row", printed)
    assert counted and int(counted.group(1)) >= LOAD_FAILURES  # those that ended together are all counted
    assert "ModuleNotFoundError: No module named 'ghost_sweep_worker'" in printed
    statuses = [r["status"] for r in rows_of(out)]
    assert statuses.count("failed") >= LOAD_FAILURES and set(statuses) <= {"failed", "pending"}


def test_a_point_whose_worker_always_dies_is_recorded_as_failed(tmp_path, monkeypatch, deadline):
    def die(task):
        os._exit(3)  # the worker process itself, as if killed (pickled by value: no module needed)

    monkeypatch.setattr("neurosim.sweeps.cluster.ALLOWED_FAILURES", 0)
    monkeypatch.setattr("neurosim.sweeps.cluster.run_point", die)
    result = neurosim.sweep(tiny(grid={"estimator.beta": [0.1]}), out=tmp_path / "sweep", workers=1, progress=False)
    assert [r["status"] for r in result.rows] == ["failed"]
    assert result.rows[0]["error"].startswith("the worker process running this point died 1 times")
