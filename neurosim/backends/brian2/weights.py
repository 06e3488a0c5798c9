"""Weights between torch matrices and Brian2 synapses, by the synapses' own indices.

A torch weight matrix W_n has torch.nn.Linear's layout [post, pre]; a Brian2 ``Synapses``
object stores one value ``w`` per synapse with its presynaptic index ``i`` and postsynaptic
index ``j``. The two meet only through (i, j): w_k = W[j_k, i_k], and back W[j_k, i_k] = w_k.
No function here assumes an order of the synapses (Brian2 creates them in the order of the
``connect`` arrays, but a loaded network, another target or a future Brian2 may not), and the
way back checks that every matrix entry is covered exactly once, so a missing or duplicated
synapse is an error rather than a silently stale weight.
"""

from __future__ import annotations

import numpy as np

from neurosim.errors import NeurosimError


def synapse_values(matrix: np.ndarray, i_pre: np.ndarray, j_post: np.ndarray) -> np.ndarray:
    """w of each synapse, from a [post, pre] matrix: w_k = W[j_k, i_k] (float64, a copy)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    i_pre, j_post = np.asarray(i_pre), np.asarray(j_post)
    if i_pre.shape != j_post.shape or i_pre.ndim != 1:
        raise NeurosimError(f"synapse indices of different shapes: i {i_pre.shape}, j {j_post.shape}")
    n_post, n_pre = matrix.shape
    if len(i_pre) and (i_pre.min() < 0 or i_pre.max() >= n_pre or j_post.min() < 0 or j_post.max() >= n_post):
        raise NeurosimError(f"synapse indices out of range for a weight matrix of shape {matrix.shape}")
    return matrix[j_post, i_pre].copy()


def matrix_from_synapses(w: np.ndarray, i_pre: np.ndarray, j_post: np.ndarray,
                         shape: tuple[int, int], name: str = "synapses") -> np.ndarray:
    """The [post, pre] matrix of a fully connected synapse group: W[j_k, i_k] = w_k.

    Raises if the synapses do not cover every (post, pre) pair exactly once.
    """
    w, i_pre, j_post = np.asarray(w, dtype=np.float64), np.asarray(i_pre), np.asarray(j_post)
    n_post, n_pre = shape
    if not (w.shape == i_pre.shape == j_post.shape) or w.ndim != 1:
        raise NeurosimError(f"{name}: w, i and j of different shapes ({w.shape}, {i_pre.shape}, {j_post.shape})")
    if len(w) != n_post * n_pre:
        raise NeurosimError(f"{name}: {len(w)} synapses for a {n_post}x{n_pre} weight matrix "
                            f"(expected all {n_post * n_pre} pairs)")
    if len(w) and (i_pre.min() < 0 or i_pre.max() >= n_pre or j_post.min() < 0 or j_post.max() >= n_post):
        raise NeurosimError(f"{name}: synapse indices out of range for a {n_post}x{n_pre} matrix")
    flat = j_post.astype(np.int64) * n_pre + i_pre.astype(np.int64)
    if len(np.unique(flat)) != len(flat):
        raise NeurosimError(f"{name}: some (pre, post) pairs have more than one synapse")
    matrix = np.empty(n_post * n_pre, dtype=np.float64)
    matrix[flat] = w
    return matrix.reshape(n_post, n_pre)
