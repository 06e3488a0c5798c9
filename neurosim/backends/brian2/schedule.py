"""What a Brian2 run is built for and what it presents: the Layout, the Schedule, the RunOutput.

Plain data, shared by the rate and the spiking networks and by the trainer that fills them:
a ``Layout`` is everything the generated code depends on (one compiled standalone project per
layout), a ``Schedule`` is what changes from run to run without recompiling (the data table
and, per example, its row, beta and learning gate), passed to Brian2 as TimedArrays
(``schedule_tables``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from neurosim.backends.brian2 import equations as eq
from neurosim.errors import ConfigError, NeurosimError


@dataclass(frozen=True)
class Layout:
    """Everything the generated code depends on: one compiled standalone project per Layout."""

    sizes: tuple[int, ...]
    """Input, hidden..., output sizes."""
    activation: str
    eps: float
    """dt / tau (the torch model's Euler step)."""
    tau_ms: float
    clamp: bool
    T: int
    K: int
    rule: str
    """'ep' (update at the end of the nudged phase) or 'cep' (continual, during it)."""
    n_examples: int
    """Examples per run."""
    n_rows: int
    """Rows of the data table."""
    record_states: bool = False
    """Record every layer's state at every step (tests; costly for long runs)."""

    def __post_init__(self) -> None:
        if self.rule not in ("ep", "cep"):
            raise ConfigError("estimator.name", self.rule, "ep or cep for the Brian2 backend")
        if self.T < 1 or self.K < 0:
            raise ConfigError("estimator.T", (self.T, self.K), "T >= 1 free steps and K >= 0 nudged steps")
        if len(self.sizes) < 2:
            raise ConfigError("circuit.layers", list(self.sizes), "at least two layer sizes")
        eq.rho_expression(self.activation)

    @property
    def steps_per_example(self) -> int:
        return self.T + self.K

    def key(self) -> str:
        """Short hash naming the standalone project folder of this layout."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Schedule:
    """What one run presents: the data table and, per example, its row, beta and gate."""

    images: np.ndarray
    """[n_rows, n_in] rates rho(s^0) = x."""
    targets: np.ndarray
    """[n_rows, n_out] (one-hot) targets."""
    rows: np.ndarray
    """[n_examples] row of each example."""
    betas: np.ndarray
    """[n_examples] nudging strength, sign included (non-zero; unused where gate is 0)."""
    gates: np.ndarray
    """[n_examples] 1: learn from the example, 0: evaluate it only."""

    def check(self, layout: Layout) -> None:
        n_in, n_out = layout.sizes[0], layout.sizes[-1]
        expect = {"images": (layout.n_rows, n_in), "targets": (layout.n_rows, n_out),
                  "rows": (layout.n_examples,), "betas": (layout.n_examples,), "gates": (layout.n_examples,)}
        for name, shape in expect.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise NeurosimError(f"Brian2 schedule: {name} has shape {got}, the network was built for {shape}")
        if np.any(np.asarray(self.betas) == 0):
            raise NeurosimError("Brian2 schedule: beta must be non-zero for every example")
        rows = np.asarray(self.rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= layout.n_rows):
            raise NeurosimError(f"Brian2 schedule: rows outside the data table of {layout.n_rows} rows")


@dataclass
class RunOutput:
    """What a run tells the trainer and the tests."""

    free_outputs: np.ndarray
    """[n_examples, n_out]: the output layer at the end of each free phase (s_T)."""
    states: list[np.ndarray] | None = None
    """With ``record_states``: per layer, [steps, size], the state after every step."""
    seconds: float = 0.0
    """Wall time of the simulation itself (the standalone binary, or Network.run)."""
    cpu_seconds: float = 0.0
    """CPU time of the same (the binary as a child process; this process for runtime targets):
    on a shared machine, the throughput that does not depend on the other jobs."""


Params = list[tuple[np.ndarray, np.ndarray]]
"""(W_n [post, pre], b_n) per weight layer, input side first, float64."""


def schedule_tables(schedule: Schedule, period: Any) -> dict[str, Any]:
    """The schedule as Brian2 TimedArrays (images and targets by example row, per-example row,
    beta and learning gate), with fixed names so that a rebuilt standalone project has the same code."""
    import brian2 as b2
    from brian2 import ms

    def table(values: Any, dt: Any, name: str) -> Any:
        return b2.TimedArray(np.asarray(values, dtype=np.float64), dt=dt, name=name)

    return {"x_ta": table(schedule.images, 1 * ms, "x_ta"), "y_ta": table(schedule.targets, 1 * ms, "y_ta"),
            "row_ta": table(schedule.rows, period, "row_ta"), "beta_ta": table(schedule.betas, period, "beta_ta"),
            "gate_ta": table(schedule.gates, period, "gate_ta")}
