"""The Fig. 1c study: points, resume without retraining, spec errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import neurosim
from neurosim.studies.asymmetry import AsymmetrySpec
from neurosim.cli import main
from neurosim.errors import ConfigError

from mnist_data import SAMPLE_OVERRIDES


def spec(**extra):
    raw = {"name": "tiny", "base": "mnist_fc1_cvf", "angles": [0, 90], "reference": "mnist_fc1_cep",
           "overrides": [*SAMPLE_OVERRIDES, "train.epochs=1", "data.train_subset=400", "data.test_subset=200",
                         "circuit.layers=[784, 64, 10]"],
           "gdu_batch_size": 10}
    raw.update(extra)
    return raw


def test_study_measures_every_point_and_resumes_without_retraining(tmp_path, monkeypatch):
    result = neurosim.asymmetry_study(spec(), out=tmp_path / "study", progress=False)
    rows = result.rows
    assert [r["run"] for r in rows] == ["angle_0", "angle_90", "reference"]
    tied, orthogonal, cep = rows
    assert tied["gdu_angle_deg"] < orthogonal["gdu_angle_deg"]  # angle 0 satisfies Theorem 1 better
    assert abs(orthogonal["initial_angle_deg"][0] - 90) < 1 and tied["initial_angle_deg"] == [0.0]
    assert cep["initial_angle"] is None and cep["final_angle_deg"] is None
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    assert saved["rows"] == rows and (tmp_path / "study" / "fig1c.png").stat().st_size > 0

    def refuse(*args, **kwargs):
        raise AssertionError("a finished point was recomputed")

    monkeypatch.setattr("neurosim.run.trainer.train", refuse)
    monkeypatch.setattr("neurosim.studies.gdu.gdu", refuse)
    again = neurosim.asymmetry_study(spec(), out=tmp_path / "study", progress=False)
    assert again.rows == rows
    assert "angle_90" in again.table


def test_cli_runs_a_study_file(tmp_path, capsys):
    path = tmp_path / "study.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec(angles=[45], reference=None)))
    assert main(["asymmetry", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "angle_45" in capsys.readouterr().out


@pytest.mark.parametrize("change, key", [
    ({"angles": [0, 200]}, "angles"),
    ({"angles": []}, "angles"),
    ({"gdu_batch_size": 0}, "gdu_batch_size"),
    ({"overrides": "train.epochs=1"}, "overrides"),
    ({"colour": "red"}, "colour"),
])
def test_malformed_study_files_get_clear_errors(change, key):
    with pytest.raises(ConfigError, match=key):
        AsymmetrySpec.load(spec(**change))


def test_study_base_must_be_a_vector_field(tmp_path):
    with pytest.raises(ConfigError, match="base"):
        neurosim.asymmetry_study(spec(base="mnist_fc1_cep"), out=tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="stud"):
        AsymmetrySpec.load("no_such_study")
