"""Synaptic device presets (YAML, each number with its source); loaded by name."""
