"""Errors that neurosim raises on purpose.

Every error a user can cause (bad config, missing data, diverging run) derives from
:class:`NeurosimError`, so that the command line can print its message alone, without a
traceback, and exit with a code that scripts can test.
"""

from __future__ import annotations


class NeurosimError(Exception):
    """Base class: a problem the user can fix, reported by message, not by traceback."""

    exit_code = 2


class ConfigError(NeurosimError):
    """A config key is unknown, of the wrong type, or holds a value out of range."""

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"config key '{key}': got {value!r}, expected {expected}")


class DataError(NeurosimError):
    """A dataset file is missing, truncated, corrupt or cannot be downloaded."""


class DivergenceError(NeurosimError):
    """States or weights became NaN or infinite during training."""

    exit_code = 3
