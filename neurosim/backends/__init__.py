"""The simulators behind the trainer's one loop (``neurosim.backends.base.Backend``): torch, and
Brian2 rate and spiking networks.

Importing this package registers the shipped backends, in the order their names are listed in
errors (torch, brian2, brian2-spiking); the package's face imports it, so every loaded config is
checked against its backend. A new backend is one module with a registered ``Backend`` subclass,
imported here.
"""

from neurosim.backends import torch  # noqa: F401  (registers "torch")
from neurosim.backends.brian2 import train  # noqa: F401  (registers "brian2", "brian2-spiking")
from neurosim.backends.base import Backend, backend_names, get_backend, register

__all__ = ["Backend", "backend_names", "get_backend", "register"]
