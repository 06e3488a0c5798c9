"""No test may carry its own path to a dataset: they all go through tests/mnist_data.py.

A hard-coded folder (one next to the checkout, say) passes on the machine that has it and fails
on every fresh clone, which is how the suite once failed 62 tests for new users. conftest.py
refuses to open a dataset file outside the fixture's folders at run time; this test catches such
a path in the source, where the run-time guard cannot tell it apart (CI points NEUROSIM_DATA at
the very folder a hard-coded path would name).
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# The files that are allowed to know where data lives: the fixture and the data module's own
# tests of NEUROSIM_DATA / the cache (which use tmp_path folders only).
ALLOWED = {"mnist_data.py", "conftest.py", "test_data.py", "test_data_paths.py"}
SUSPECT = [
    (re.compile(r"""["']\.\./"""), "a relative path out of the checkout"),
    (re.compile(r"""["']/[^"'\s]*(data|mnist)""", re.I), "an absolute path to a data folder"),
    (re.compile(r"""environ(\.get\(|\[)["']NEUROSIM_DATA|getenv\(["']NEUROSIM_DATA"""),
     "reads NEUROSIM_DATA itself instead of taking the mnist_dir fixture"),
    (re.compile(r"""\.cache["'/]"""), "a path into the user cache"),
    (re.compile(r"""data\.dir=(?!\{(mnist_dir|tmp_path)\b)"""), "a data.dir override not from the fixture"),
]
PARENTS = re.compile(r"parents\[(\d+)\]((?:\.parent)*)")
PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent)+)")


def climbs_out(line: str, root_level: int) -> bool:
    """True if ``line`` builds a path above the repository from ``__file__``: for a file whose
    ``parents[root_level]`` is the repository root, any higher parent is outside the checkout."""
    levels = [int(k) + len(dots) // len(".parent") for k, dots in PARENTS.findall(line)]
    levels += [len(dots) // len(".parent") - 1 for dots in PARENT_CHAIN.findall(line)]
    return any(level > root_level for level in levels)


def problems(text: str, root_level: int) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        reasons = [why for pattern, why in SUSPECT if pattern.search(line)]
        if climbs_out(line, root_level):
            reasons.append("a path above the checkout")
        found += [f"{number}: {why}: {line.strip()}" for why in reasons]
    return found


def test_no_test_file_hard_codes_a_data_path() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in ALLOWED:
            continue
        root_level = len(path.relative_to(REPO).parts) - 1  # parents[root_level] == REPO
        found += [f"{path.relative_to(TESTS)}:{p}" for p in problems(path.read_text(), root_level)]
    assert not found, "use the mnist_dir fixture or the bundled sample (tests/mnist_data.py):\n" + "\n".join(found)


def test_the_scan_would_catch_the_old_pattern() -> None:
    # The pattern that broke fresh clones: a folder beside the checkout, reached from __file__
    # (root_level 1: a file directly in tests/).
    assert problems('DATA = Path(__file__).resolve().parents[1].parent / "elsewhere" / "data"', 1)
    assert problems('DATA = Path(__file__).resolve().parent.parent.parent / "elsewhere"', 1)
    assert problems('load_dataset("mnist", "train", "../datasets")', 1)
    assert problems('overrides = ["data.dir=/home/me/mnist"]', 1)
    assert problems('root = os.environ.get("NEUROSIM_DATA")', 1)
    for fine in ('overrides = [f"data.dir={mnist_dir}"]', 'f"data.dir={tmp_path / \'empty\'}"',
                 'monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path))',
                 'text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "sweeps.md")'):
        assert not problems(fine, 1), fine
    assert not problems('(Path(__file__).resolve().parents[2] / "docs")', 2)  # tests/sweeps/: the repo
    assert problems('(Path(__file__).resolve().parents[3] / "data")', 2)
