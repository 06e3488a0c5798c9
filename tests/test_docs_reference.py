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
