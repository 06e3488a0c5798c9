"""--set values, config files and sweep files read numbers alike (YAML 1.2: 1e6 is a float)."""

from __future__ import annotations

import math

import pytest
import yaml

import neurosim
from neurosim import config as config_module
from neurosim.sweeps import spec as sweep_spec
from neurosim.cli import main
from neurosim.config import load_yaml, parse_override, parse_value
from neurosim.errors import ConfigError
from neurosim.sweeps.spec import SweepSpec


@pytest.mark.parametrize("text, value", [
    ("1e6", 1e6), ("-3e-5", -3e-5), ("1.0e30", 1e30), ("1E-3", 1e-3), ("+2e+2", 200.0), (".5e3", 500.0),
    ("1.0e+30", 1e30), ("0.25", 0.25), ("[1.0e30, 1.0e30]", [1e30, 1e30]), ("[1e-3, 5e-4]", [1e-3, 5e-4]),
    ("3", 3), ("-7", -7), ("[784, 32, 10]", [784, 32, 10]), ("true", True), ("null", None), ("", None),
    ("1e", "1e"), ("1e-3x", "1e-3x"), ("e5", "e5"), ("mnist-sample", "mnist-sample"),
])
def test_set_values_read_numbers_as_yaml_1_2(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_inf_and_nan_are_floats_but_not_learning_rates():
    assert parse_value(".inf") == math.inf and parse_value("-.inf") == -math.inf and math.isnan(parse_value(".nan"))
    for bad in ("[.inf, 0.1]", "[.nan, 0.1]", "[-3e-5, 0.1]"):
        with pytest.raises(ConfigError, match="finite, non-negative learning rates"):
            neurosim.load_config("mnist_fc1_ep", [f"estimator.lr={bad}"])


def test_python_overrides_take_exponent_forms():
    config = neurosim.load_config("mnist_fc1_ep", ["estimator.lr=[1.0e30, 1e6]", "estimator.beta=1e-1",
                                                   "circuit.dt=5e-1"])
    assert config.estimator.lr == [1e30, 1e6] and config.estimator.beta == 0.1 and config.circuit.dt == 0.5
    assert parse_override("estimator.beta=-3e-5") == ("estimator.beta", -3e-5)


def test_cli_set_takes_exponent_forms(capsys):
    assert main(["config", "mnist_fc1_ep", "--set", "estimator.lr=[1.0e30, 1.0e30]",
                 "--set", "estimator.beta=1e-3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["estimator"]["lr"] == [1e30, 1e30] and printed["estimator"]["beta"] == 1e-3


def test_cli_refuses_a_scalar_for_a_list_with_a_clear_message(capsys):
    assert main(["config", "mnist_fc1_ep", "--set", "estimator.lr=1e6"]) == 2
    err = capsys.readouterr().err
    assert "estimator.lr" in err and "1000000.0" in err and "a list of numbers" in err


def test_config_files_read_exponent_forms(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: exp\ncircuit: mnist_fc1\nestimator:\n  lr: [1e-3, 5e-4]\n  beta: 1e-1\n")
    config = neurosim.load_config(path)
    assert config.estimator.lr == [1e-3, 5e-4] and config.estimator.beta == 0.1
    assert yaml.safe_load("lr: 1e-3")["lr"] == "1e-3"  # what plain PyYAML (YAML 1.1) makes of it


def test_sweep_files_and_set_use_one_parser(tmp_path):
    assert sweep_spec.parse_override is config_module.parse_override
    assert sweep_spec.load_yaml is config_module.load_yaml
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase: mnist_fc1_ep\noverrides: [estimator.T=5, 'estimator.lr=[1e-3, 1e-3]']\n"
                    "grid:\n  estimator.beta: [1e-3, 2.5e-1]\n")
    points = SweepSpec.load(path).points(["estimator.K=3"])
    assert [p.values["estimator.beta"] for p in points] == [1e-3, 0.25]
    assert all(p.config["estimator"]["lr"] == [1e-3, 1e-3] for p in points)
    assert load_yaml(path.read_text())["grid"]["estimator.beta"] == [1e-3, 0.25]
