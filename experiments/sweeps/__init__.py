"""Sweep files (``neurosim sweep NAME``): many training runs over axes of a base config."""
