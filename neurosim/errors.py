"""Errors that neurosim raises on purpose.

Every error a user can cause (bad config, missing data, diverging run) derives from
:class:`NeurosimError`, so that the command line can print its message alone, without a
traceback, and exit with a code that scripts can test.

A message that tells the user what to pass names the argument with :func:`arg`, in both
spellings: ``str(error)`` speaks Python (``resume=True``), and the command line prints
:meth:`NeurosimError.cli_message`, which speaks flags (``--resume``).
"""

from __future__ import annotations

import re

_MARK = "\x00"
_ARG = re.compile(f"{_MARK}([^{_MARK}]*){_MARK}([^{_MARK}]*){_MARK}")


def arg(python: str, flag: str) -> str:
    """An argument named in an error message: ``python`` as the Python API spells it
    (``resume=True``), ``flag`` as the command line does (``--resume``)."""
    return f"{_MARK}{python}{_MARK}{flag}{_MARK}"


def render(text: str, cli: bool = False) -> str:
    """``text`` with every :func:`arg` in its Python spelling, or its flag spelling if ``cli``."""
    return _ARG.sub(lambda m: m[2] if cli else m[1], text)


class NeurosimError(Exception):
    """Base class: a problem the user can fix, reported by message, not by traceback."""

    exit_code = 2

    def __str__(self) -> str:
        return render(super().__str__())

    def cli_message(self) -> str:
        """The message as the command line prints it: arguments named by their flags."""
        return render(super().__str__(), cli=True)


class ConfigError(NeurosimError):
    """A config key is unknown, of the wrong type, or holds a value out of range."""

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key = render(key)
        self.value = value
        self.expected = render(expected)
        super().__init__(f"config key '{key}': got {value!r}, expected {expected}")


class DataError(NeurosimError):
    """A dataset file is missing, truncated, corrupt or cannot be downloaded."""


class NeurosimWarning(UserWarning):
    """Something the user should look at that does not stop the run (e.g. chance-level training
    error after the first epoch); the command line prints it as ``neurosim: warning: ...``."""


class DivergenceError(NeurosimError):
    """States or weights became NaN or infinite during training."""

    exit_code = 3


class MeasurementError(NeurosimError):
    """A measurement file (``neurosim devices fit``) cannot be read or fitted: names the file and,
    where one is to blame, the line."""

    def __init__(self, path: object, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
