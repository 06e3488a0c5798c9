"""Simulators other than the discrete-time torch models: Brian2 rate and spiking networks."""
