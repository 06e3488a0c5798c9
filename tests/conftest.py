"""Shared test settings."""

import torch

# The test networks are tiny: extra threads only add OpenMP synchronisation, and on a busy
# 2-core runner they make the suite many times slower (measured: 10 min instead of 1).
torch.set_num_threads(1)
