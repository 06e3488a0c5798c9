"""Network and circuit descriptions (YAML), shipped with neurosim and loaded by name."""
