"""Experiment configs (YAML) that reproduce the README tables; loaded by name."""
