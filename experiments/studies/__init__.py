"""Study files (YAML) shipped with neurosim: loaded by name by ``neurosim asymmetry``."""
