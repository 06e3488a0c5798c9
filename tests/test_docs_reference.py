"""The generated config reference (docs/gen/config_ref.py) lists every config key with its meaning."""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "gen"))

import config_ref  # noqa: E402
from common import GenError  # noqa: E402

from neurosim.config import Config  # noqa: E402


def _keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of a config, walked here independently of the generator."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        keys.append(prefix + f.name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += _keys(tp, f"{prefix}{f.name}.")
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                keys += _keys(arg, f"{prefix}{f.name}[i].")
    return keys


def test_reference_lists_every_config_key_with_type_default_and_meaning():
    page = config_ref.render()["reference/config.md"]
    rows = {line.split(" | ")[0].strip("| `"): line for line in page.splitlines() if line.startswith("| `")}
    keys = _keys(Config)
    assert len(keys) > 60
    for key in keys:
        if key in ("circuit", "estimator", "data", "train", "compute", "gdu", "synapses", "backend"):
            assert f"## `{key}`" in page, key  # a section: its own heading
            continue
        assert key in rows, f"config key {key!r} missing from the generated reference"
        cells = [c.strip() for c in rows[key].strip("|").split(" | ")]
        assert len(cells) == 4 and all(cells), (key, cells)  # key, type, default, meaning
    assert set(config_ref.all_keys()) == set(keys)


def test_reference_shows_real_defaults():
    page = config_ref.render()["reference/config.md"]
    assert "| `estimator.T` | `int` | `40` |" in page
    assert "| `train.batch_size` | `int` | `20` |" in page
    assert "| `estimator.lr` | `list[float]` | `[0.08, 0.04]` |" in page


def test_undocumented_field_fails_the_build():
    @dataclasses.dataclass
    class Broken:
        documented: int = 1
        """Has a docstring."""
        undocumented: int = 2

    with pytest.raises(GenError, match="undocumented"):
        config_ref.walk(Broken)


def test_headline_table_reads_the_results_and_rewrites_only_its_block():
    import headline

    rows = [line for line in headline.render().splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert 0 < len(rows) <= headline.MAX_ROWS
    assert "**1.98%**" in rows[0]  # mnist_fc1_ep's final test error, read from its result.json
    text = f"before\n{headline.START}\nstale\n{headline.END}\nafter\n"
    new = headline.replace(text)
    assert new.startswith("before\n") and new.endswith("\nafter\n") and "stale" not in new
    assert headline.replace(new) == new
    with pytest.raises(GenError):
        headline.replace("no markers here")


def test_results_generator_fails_loudly_on_a_malformed_run(tmp_path, monkeypatch):
    import results

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text("{not json")
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    with pytest.raises(GenError, match="malformed JSON"):
        results.Run("broken")
    with pytest.raises(GenError, match="missing"):
        results.Run("absent")
