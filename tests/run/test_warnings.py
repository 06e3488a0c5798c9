"""Messages for the caller's language (Python arguments vs flags) and the chance-level warning."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import neurosim
from neurosim.cli import main
from neurosim.config import Config
from neurosim.data import TensorDataset
from neurosim.errors import ConfigError, NeurosimError, NeurosimWarning, arg, render
from neurosim.run.trainer import chance_level_warning

# About a second per epoch on the bundled sample (1,000 training digits), no data folder needed.
SAMPLE = ["data.name=mnist-sample", "data.test_subset=200", "circuit.layers=[784, 32, 10]", "train.epochs=1"]


def cli_sets(overrides: list[str]) -> list[str]:
    return [part for item in overrides for part in ("--set", item)]


# --------------------------------------------------------------------------- Python vs CLI wording


def test_arg_renders_python_or_flag_wording():
    text = f"pass {arg('resume=True', '--resume')} or choose {arg('out=...', '--out')}"
    assert render(text) == "pass resume=True or choose out=..."
    assert render(text, cli=True) == "pass --resume or choose --out"
    error = NeurosimError(text)
    assert str(error) == "pass resume=True or choose out=..." and error.cli_message() == "pass --resume or choose --out"


def test_an_existing_run_names_resume_true_in_python_and_the_flag_on_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    neurosim.train("mnist_fc1_ep", out=out, overrides=SAMPLE, progress=False)
    with pytest.raises(NeurosimError) as info:
        neurosim.train("mnist_fc1_ep", out=out, overrides=SAMPLE, progress=False, resume=False)
    assert "resume=True" in str(info.value) and "out=" in str(info.value) and "--" not in str(info.value)

    assert main(["train", "mnist_fc1_ep", "--out", str(out), "--quiet", *cli_sets(SAMPLE)]) == 2
    err = capsys.readouterr().err
    assert "pass --resume" in err and "(--out)" in err and "resume=True" not in err


def test_resume_without_a_checkpoint_names_the_argument_or_the_flag(tmp_path, capsys):
    with pytest.raises(NeurosimError, match=r"without resume=True\)"):
        neurosim.train("mnist_fc1_ep", out=tmp_path / "none", overrides=SAMPLE, resume=True, progress=False)
    assert main(["train", "mnist_fc1_ep", "--out", str(tmp_path / "none"), "--resume", "--quiet",
                 *cli_sets(SAMPLE)]) == 2
    assert "without --resume)" in capsys.readouterr().err


def test_sweep_arguments_are_named_as_the_caller_wrote_them(capsys):
    spec = {"name": "s", "base": "mnist_fc1_ep", "overrides": SAMPLE}
    with pytest.raises(ConfigError) as info:
        neurosim.sweep(spec, workers=-1, progress=False)
    assert info.value.key == "workers" and "--" not in str(info.value)
    with pytest.raises(ConfigError, match="no worker count with scheduler"):
        neurosim.sweep(spec, workers=2, scheduler="tcp://127.0.0.1:1", progress=False)


def test_sweep_cli_names_flags(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase: mnist_fc1_ep\ngrid: {estimator.beta: [0.1, 0.2]}\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--threads", "0"]) == 2
    assert "config key '--threads'" in capsys.readouterr().err
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--set", "estimator.beta=0.3"]) == 2
    assert "'--set estimator.beta=0.3'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="'overrides: estimator.beta=0.3'"):
        neurosim.sweep(path, out=tmp_path / "o", overrides=["estimator.beta=0.3"], progress=False)


# --------------------------------------------------------------------------- chance level


def _balanced(n: int = 1000, classes: int = 10) -> TensorDataset:
    return TensorDataset(torch.zeros(n, 4), torch.arange(n) % classes, classes)


@pytest.mark.parametrize("train_error, test_error, moved, warns", [
    (0.896, 0.90, 3e7, True), (0.86, 0.88, 5.0, True), (0.83, 0.90, 3e7, False), (0.90, 0.80, 3e7, False),
    (0.45, 0.35, 3e7, False),
    (0.90, 0.885, 0.09, False),  # C-EP at its rates on 400 digits: still at chance, but slow, not unstable
    (0.906, 0.94, 3e-4, False),  # rates far too small: at chance, weights unmoved
])
def test_chance_level_threshold(train_error, test_error, moved, warns):
    row = {"train_error": train_error, "test_error": test_error}
    message = chance_level_warning(Config(), row, _balanced(), moved)
    assert bool(message) is warns
    if warns:
        assert "learning rates may be too large" in message and "estimator.lr" in message


def test_chance_level_counts_the_majority_class():
    # 70% of one class: always answering it errs 30%, so 30% error after an epoch is chance level
    skewed = TensorDataset(torch.zeros(10, 4), torch.tensor([0] * 7 + [1, 2, 3]), 10)
    assert chance_level_warning(Config(), {"train_error": 0.3, "test_error": 0.3}, skewed, 100.0)
    assert not chance_level_warning(Config(), {"train_error": 0.1, "test_error": 0.2}, skewed, 100.0)


def test_a_huge_learning_rate_warns_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    with pytest.warns(NeurosimWarning, match="learning rates may be too large"):
        result = neurosim.train("mnist_fc1_ep", out=out, overrides=[*SAMPLE, "estimator.lr=[1e6, 1e6]"],
                                progress=False)
    assert result.train_error > 0.8  # the run goes on to the end: a warning, not a stop
    saved = json.loads((out / "result.json").read_text())
    assert len(saved["warnings"]) == 1 and "1000000.0" in saved["warnings"][0]
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["warning"] == saved["warnings"][0]  # kept with the epoch, so a resumed run reports it too


@pytest.mark.parametrize("experiment, extra", [
    ("mnist_fc1_ep", []),
    ("mnist_fc1_cep", ["data.train_subset=400"]),  # slow: at chance after one epoch of 400 digits
])
def test_normal_and_slow_runs_do_not_warn(tmp_path, experiment, extra):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeurosimWarning)
        neurosim.train(experiment, out=tmp_path / "run", overrides=[*SAMPLE, *extra], progress=False)
    assert "warnings" not in json.loads((tmp_path / "run" / "result.json").read_text())


def test_the_cli_prints_the_warning_as_one_line_and_exits_0(tmp_path, capsys):
    code = main(["train", "mnist_fc1_ep", "--out", str(tmp_path / "run"), "--quiet",
                 *cli_sets([*SAMPLE, "estimator.lr=[1.0e30, 1.0e30]"])])
    assert code == 0
    err = capsys.readouterr().err
    assert "neurosim: warning: train error" in err and "learning rates may be too large" in err
    assert "NeurosimWarning" not in err
