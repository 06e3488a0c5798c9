"""Config loading: names, overrides and errors that name the key, the value and what was expected."""

from __future__ import annotations

import pytest
import yaml

from neurosim.cli import main
from neurosim.config import load_config
from neurosim.errors import ConfigError

BASE = {"circuit": "mnist_fc1", "estimator": {"name": "ep", "lr": [0.1, 0.05]}}


def test_every_shipped_experiment_loads_and_names_its_twin():
    from neurosim.presets import available

    names = available("experiments")
    for name in names:
        config = load_config(name)
        assert config.name == name
        assert len(config.estimator.lr) == config.circuit.num_weight_layers
    for name in [n for n in names if n.endswith("_ep")]:  # every EP row has its BPTT twin
        twin = load_config(name.replace("_ep", "_bptt"))
        ep = load_config(name)
        assert twin.estimator.name == "bptt"
        assert (twin.circuit, twin.estimator.T, twin.estimator.K) == (ep.circuit, ep.estimator.T, ep.estimator.K)


def test_paper_row_p1h():
    config = load_config("mnist_fc1_ep")
    assert config.circuit.layers == [784, 512, 10]
    assert (config.estimator.T, config.estimator.K, config.estimator.beta) == (40, 15, 0.1)
    assert config.estimator.lr == [0.08, 0.04] and config.train.batch_size == 20 and config.train.epochs == 30


def test_overrides_are_parsed_as_yaml_and_reach_named_circuits():
    config = load_config(BASE, ["train.epochs=3", "estimator.beta=0.5", "circuit.layers=[784, 100, 10]",
                                "data.train_subset=null", "compute.dtype=float64"])
    assert config.train.epochs == 3 and config.estimator.beta == 0.5
    assert config.circuit.layers == [784, 100, 10] and config.circuit.name == "mnist_fc1"
    assert config.compute.dtype == "float64" and config.data.train_subset is None


def test_circuit_can_be_swapped_by_override():
    config = load_config(BASE, ["circuit=mnist_eb1"])
    assert config.circuit.dynamics == "energy" and config.circuit.eps == 0.2


def test_config_round_trips_through_yaml(tmp_path):
    config = load_config("mnist_eb1_ep", ["seed=7"])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert load_config(path) == config


@pytest.mark.parametrize("override, key, words", [
    ("train.epoch=3", "train.epoch", "known keys"),
    ("trainer.epochs=3", "trainer", "known keys"),
    ("train.epochs=three", "train.epochs", "an integer"),
    ("train.epochs=2.5", "train.epochs", "an integer"),
    ("train.epochs=0", "train.epochs", "positive"),
    ("estimator.beta=strong", "estimator.beta", "a number"),
    ("estimator.name=adam", "estimator.name", "ep, cep, vf, cvf, bptt"),
    ("estimator.lr=[0.1]", "estimator.lr", "one learning rate per weight layer"),
    ("estimator.lr=0.1", "estimator.lr", "a list"),
    ("estimator.symmetric=yes please", "estimator.symmetric", "true or false"),
    ("circuit.activation=relu", "circuit.activation", "sigmoid"),
    ("circuit.eps=2", "circuit.eps", "(0, 1]"),
    ("data.name=cifar", "data.name", "mnist"),
    ("compute.device=tpu", "compute.device", "cuda"),
    ("compute.dtype=float16", "compute.dtype", "float32"),
    ("loss=hinge", "loss", "cross_entropy"),
    ("circuit=no_such_circuit", "circuit", "mnist_fc1"),
    ("estimator.K=0", "estimator.K", "positive"),
    ("estimator.beta=0", "estimator.beta", "non-zero"),
])
def test_bad_values_name_key_value_and_expectation(override, key, words):
    with pytest.raises(ConfigError) as info:
        load_config(BASE, [override])
    message = str(info.value)
    assert info.value.key == key
    assert f"'{key}'" in message and words in message


def test_malformed_override_and_yaml(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        load_config(BASE, ["train.epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("estimator: {name: ep\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_unknown_experiment_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="mnist_fc1_ep"):
        load_config("mnist_fc9_ep")


def test_cli_prints_config_errors_without_traceback(capsys):
    code = main(["config", "mnist_fc1_ep", "--set", "train.batchsize=5"])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.batchsize" in err and "Traceback" not in err


def test_cli_config_shows_resolved_values(capsys):
    assert main(["config", "mnist_fc1_ep", "--set", "seed=11"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["seed"] == 11 and shown["circuit"]["layers"] == [784, 512, 10]
