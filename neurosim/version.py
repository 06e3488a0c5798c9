"""The package version, in one place: pyproject.toml reads it, and so do run records."""

__version__ = "0.1.0"
