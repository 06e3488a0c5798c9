"""No test may carry its own path to a dataset: they all go through tests/mnist_data.py.

A hard-coded folder (``../shared/data`` next to the checkout, say) passes on the machine that
has it and fails on every fresh clone, which is how the suite once failed 62 tests for new
users. conftest.py refuses to open a dataset file outside the fixture's folders at run time;
this test catches the path in the source, where the run-time guard cannot tell it apart (CI
points ``NEUROSIM_DATA`` at that same folder).
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# The files that are allowed to know where data lives: the fixture and the data module's own
# tests of NEUROSIM_DATA / the cache (which use tmp_path folders only).
ALLOWED = {"mnist_data.py", "conftest.py", "test_data.py", "test_data_paths.py"}
SUSPECT = [
    (re.compile(r"""["']shared["']|shared/data|\.\./shared"""), "a path into ../shared"),
    (re.compile(r"""environ(\.get\(|\[)["']NEUROSIM_DATA|getenv\(["']NEUROSIM_DATA"""),
     "reads NEUROSIM_DATA itself instead of taking the mnist_dir fixture"),
    (re.compile(r"""\.cache["'/]"""), "a path into the user cache"),
    (re.compile(r"""data\.dir=(?!\{(mnist_dir|tmp_path)\b)"""), "a data.dir override not from the fixture"),
]


def test_no_test_file_hard_codes_a_data_path() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for pattern, why in SUSPECT:
                if pattern.search(line):
                    found.append(f"{path.relative_to(TESTS)}:{number}: {why}: {line.strip()}")
    assert not found, "use the mnist_dir fixture or the bundled sample (tests/mnist_data.py):\n" + "\n".join(found)


def test_the_scan_would_catch_the_old_pattern() -> None:
    old = 'DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"'
    assert any(pattern.search(old) for pattern, _ in SUSPECT)
    assert any(pattern.search('overrides = ["data.dir=/home/me/mnist"]') for pattern, _ in SUSPECT)
    assert any(pattern.search('root = os.environ.get("NEUROSIM_DATA")') for pattern, _ in SUSPECT)
    for fine in ('overrides = [f"data.dir={mnist_dir}"]', 'f"data.dir={tmp_path / \'empty\'}"',
                 'monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path))'):
        assert not any(pattern.search(fine) for pattern, _ in SUSPECT), fine
