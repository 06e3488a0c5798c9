"""Experiment configs: YAML in, validated dataclasses out.

A config names everything a run needs (circuit, estimator, data, seed, compute), so that a
result can be reproduced from its ``config.yaml`` alone. Validation happens once, here, and
every error names the dotted key, the value and what was expected: users mostly meet configs
through ``--set key=value`` on the command line and through sweeps, where a silent typo would
waste a whole run.

This module is the run config's schema and nothing else: one dataclass per section, each field
with the docstring the generated reference prints, and the cross-section checks. It stays one
module (about 500 lines, most of them field docstrings) because the sections are read together
and checked against each other; the engine that builds them (YAML 1.2 numbers, key and type
checks, ``--set``) is :mod:`neurosim.schema`, device records are :mod:`neurosim.hardware.records`
and each backend's capability check is registered by the backend (``RUN_CHECKS``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from neurosim import presets as catalog
from neurosim.data import DATASETS as DATASET_SPECS
from neurosim.errors import ConfigError
# The engine's reading functions are part of this module's public face too (overrides, dotted keys).
from neurosim.schema import (YAMLLoader, build, choice, load_yaml, parse_override, parse_value,  # noqa: F401
                             positive, read_yaml, set_dotted)

ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh")
DYNAMICS = ("prototypical", "vector_field", "convolutional", "energy", "continuous", "toy")
ESTIMATORS = ("ep", "cep", "vf", "cvf", "bptt")
LR_SCHEDULES = ("constant", "cosine")
TOL_SCOPES = ("batch", "sample")
VF_ESTIMATORS = ("vf", "cvf")
"""Estimators for vector fields (no Phi); ep and cep need a model with Phi."""
LOSSES = ("mse", "cross_entropy")
DATASETS = tuple(DATASET_SPECS)
"""Dataset names: neurosim.data's table (mnist, fashion-mnist, the bundled mnist-sample)."""
DTYPES = ("float32", "float64")
RUN_CHECKS: dict[str, Callable[[Config], None]] = {}
"""Each backend's own check of what it can simulate, by ``backend.name``, in registration order.
Filled by ``neurosim.backends.base.register`` when ``neurosim.backends`` is imported (the package's
face imports it): the backends sit above config, so config names none of them."""
BRIAN2_TARGETS = ("cpp_standalone", "cython", "numpy")


@dataclass
class ConvLayerConfig:
    """One convolutional layer: kernel x kernel convolution, then non-overlapping max pooling."""

    channels: int = 32
    """Output channels (feature maps) of the convolution."""
    kernel: int = 5
    """Side of the square convolution kernel."""
    padding: int = 0
    """Zero padding added on each side of the input before the convolution."""
    pool: int = 2
    """Max-pooling window and stride (1: no pooling)."""


@dataclass
class CircuitConfig:
    """Architecture of the network: what it is, not how it learns."""

    name: str = "inline"
    """The circuit's name: a file of ``circuits/`` when loaded by name, 'inline' for a mapping in the config."""
    description: str = ""
    """One line saying what the network is (shown in resolved configs)."""
    source: str = ""
    """Where the architecture comes from (paper, table, code)."""
    dynamics: str = "prototypical"
    """'prototypical': s_{t+1} = sigma(dPhi/ds) (Ernoult et al. 2019); 'energy': Hopfield
    energy relaxed by Euler steps of size eps (Scellier & Bengio 2017); 'toy': all neurons
    coupled symmetrically, s_{t+1} = dPhi/ds exactly (the Theorem-1 reference, models/toy.py);
    'vector_field': the prototypical dynamics with separate forward and backward weights
    (Ernoult et al. 2020, C-VF), trained with the vf or cvf estimators."""
    layers: list[int] = field(default_factory=lambda: [784, 512, 10])
    """Sizes from input to output; the first must match the data (784 for MNIST). For
    convolutional dynamics: the sizes of the fully connected head after the conv stack
    (e.g. [10]); the input is ``input_shape``."""
    input_shape: list[int] | None = None
    """Convolutional only: [channels, height, width] of the input (MNIST: [1, 28, 28])."""
    conv: list[ConvLayerConfig] = field(default_factory=list)
    """Convolutional only: the conv layers, input side first (Ernoult et al. 2019: 32 and 64
    channels, 5x5 kernels, 2x2 max pooling)."""
    activation: str = "sigmoid"
    """sigmoid = 1/(1+exp(-4(x-1/2))), hard_sigmoid = clamp(x, 0, 1), tanh."""
    eps: float = 0.5
    """Euler step of the energy-based and toy dynamics (dt/tau); ignored by prototypical dynamics."""
    dt: float = 1.0
    """Prototypical only: damping step, s_{t+1} = (1 - dt) s_t + dt rho(dPhi/ds); 1 is the
    undamped map of SPEC §1 (Ernoult et al.'s code defaults to 0.2)."""
    initial_angle: float = 0.0
    """vector_field only: angle in degrees (0 to 180; the paper sweeps 0 to 180) between each W_n and the transposed
    backward weights B_n^T at initialization; 0 ties them (the prototypical network)."""
    clamp: bool = False
    """Energy-based only: clip states to [0, 1] after each step, as the papers' code does
    (Scellier & Bengio 2017; Ernoult et al. 2019 EB rows)."""
    init: str = "uniform_fan_in"
    """'uniform_fan_in': U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch.nn.Linear, the papers' codes."""
    init_gain: list[float] | None = None
    """Optional factor per weight layer on the initial weights (input side first)."""

    @property
    def convolutional(self) -> bool:
        return self.dynamics == "convolutional"

    @property
    def input_size(self) -> int:
        """Number of input values (pixels) the circuit expects."""
        return math.prod(self.input_shape) if self.convolutional and self.input_shape else self.layers[0]

    @property
    def num_weight_layers(self) -> int:
        return len(self.conv) + len(self.layers) if self.convolutional else len(self.layers) - 1

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """[channels, height, width] of each conv layer's state (after pooling)."""
        shapes = []
        c, h, w = self.input_shape or (1, 1, 1)
        for layer in self.conv:
            h = (h + 2 * layer.padding - layer.kernel + 1) // layer.pool
            w = (w + 2 * layer.padding - layer.kernel + 1) // layer.pool
            c = layer.channels
            shapes.append((c, h, w))
        return shapes

    def validate(self, prefix: str) -> None:
        choice(f"{prefix}.dynamics", self.dynamics, DYNAMICS)
        choice(f"{prefix}.activation", self.activation, ACTIVATIONS)
        choice(f"{prefix}.init", self.init, ("uniform_fan_in",))
        if self.convolutional:
            self._validate_conv(prefix)
        elif self.conv or self.input_shape is not None:
            raise ConfigError(f"{prefix}.conv", self.conv, "no conv layers / input_shape unless dynamics is convolutional")
        elif len(self.layers) < 2 or any(n < 1 for n in self.layers):
            raise ConfigError(f"{prefix}.layers", self.layers, "at least two positive layer sizes")
        for key in ("eps", "dt"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"{prefix}.{key}", getattr(self, key), "a step size in (0, 1]")
        if not 0 <= self.initial_angle <= 180:
            raise ConfigError(f"{prefix}.initial_angle", self.initial_angle, "an angle in degrees between 0 and 180")
        if self.initial_angle and self.dynamics != "vector_field":
            raise ConfigError(f"{prefix}.initial_angle", self.initial_angle,
                              "0 unless dynamics is vector_field (other models tie their weights)")
        if self.init_gain is not None and len(self.init_gain) != self.num_weight_layers:
            raise ConfigError(f"{prefix}.init_gain", self.init_gain,
                              f"one gain per weight layer ({self.num_weight_layers} values)")

    def _validate_conv(self, prefix: str) -> None:
        shape = self.input_shape
        if shape is None or len(shape) != 3 or any(n < 1 for n in shape):
            raise ConfigError(f"{prefix}.input_shape", shape, "[channels, height, width] of the input, e.g. [1, 28, 28]")
        if not self.conv:
            raise ConfigError(f"{prefix}.conv", self.conv, "at least one conv layer for dynamics convolutional")
        for i, layer in enumerate(self.conv):
            for key, low in (("channels", 1), ("kernel", 1), ("padding", 0), ("pool", 1)):
                if getattr(layer, key) < low:
                    raise ConfigError(f"{prefix}.conv[{i}].{key}", getattr(layer, key), f"an integer >= {low}")
        for i, (c, h, w) in enumerate(self.conv_shapes()):
            if h < 1 or w < 1:
                raise ConfigError(f"{prefix}.conv[{i}]", self.conv[i],
                                  f"a layer that leaves a positive image size (it gives {h}x{w})")
        if any(n < 1 for n in self.layers):
            raise ConfigError(f"{prefix}.layers", self.layers, "positive sizes of the fully connected head")


@dataclass
class EstimatorConfig:
    """How a batch becomes a parameter update (EP or the BPTT baseline)."""

    name: str = "ep"
    """'ep' (Equilibrium Propagation), 'cep' (continual EP: ``lr`` is the per-step eta), 'bptt'
    (backpropagation through the same dynamics, the baseline), and for vector-field dynamics 'vf'
    and 'cvf' (C-VF)."""
    T: int = 40
    """Free-phase steps (from s = 0); also used at evaluation."""
    K: int = 15
    """Nudged-phase steps for EP/VF; number of last free-phase steps backpropagated for BPTT."""
    beta: float = 0.1
    """Nudging strength (EP, C-EP, VF, C-VF)."""
    lr: list[float] = field(default_factory=lambda: [0.08, 0.04])
    """Learning rate per weight layer, input side first; a layer's bias (and, for vector
    fields, its backward weights) share its rate. For C-EP and C-VF, the rate eta of the
    continual update at each nudged step."""
    random_sign: bool = False
    """Draw the sign of beta at random for each batch (cancels the bias of one-sided EP on average)."""
    symmetric: bool = False
    """Nudge at +beta and -beta and take the difference (Laborieux et al. 2021)."""
    lr_schedule: str = "constant"
    """How the rates change over epochs: constant (the papers' setting), or cosine annealing from
    ``lr`` to ``lr_final * lr`` over ``train.epochs`` (as Laborieux et al. 2021). For C-EP and C-VF
    the schedule also shrinks the per-step eta, and with it their bias against EP, as training ends."""
    lr_final: float = 0.0
    """The fraction of ``lr`` reached at the last epoch under the cosine schedule."""
    tol: float | None = None
    """Stop a phase once the network has settled: when max |s_{t+1} - s_t| over the batch falls
    below tol, with T and K as caps (null: always T and K steps, as the papers). EP and VF: the
    free and the nudged phases; C-EP and C-VF: the free phase (their K nudged steps are the
    learning rule); BPTT: the free steps before the K backpropagated ones; evaluation too. The
    steps used (mean, max per batch) go into metrics.jsonl."""
    tol_scope: str = "batch"
    """With ``tol``: what must settle. ``batch``: the phase ends once every sample has (one slow
    sample keeps the whole batch stepping). ``sample``: each sample stops at its own first checked
    step below tol and the rest step on as a smaller batch: fewer steps computed wherever a step
    costs in proportion to the batch (the CNN, evaluation at batch 1000), each sample's fixed point
    as if relaxed alone. EP's nudged phase too, except for vector fields (batch there); refused
    with a read side (read noise, DAC, ADC)."""
    tol_every: int = 1
    """With ``tol``: check for settling at every k-th step only. The check costs a reduction over
    every state and a host sync, which on a small network is a good part of a step (on EP-1h it
    can cost more time than the steps it saves: experiments/bench_tol.py); a phase then runs at
    most k - 1 steps more than checking each step would."""
    materialize_updates: bool = False
    """Form W_1's update as a full [out, in] tensor. Off: C-EP and C-VF with ideal synapses let
    W_1 x follow its rank-B changes through x x^T and update W_1 once per batch (the same weights
    up to rounding); on devices, C-EP's per-step updates and EP's per-batch one reach the arrays
    as their two factors, from which the pulses are counted (the same distribution)."""

    def validate(self, prefix: str) -> None:
        choice(f"{prefix}.name", self.name, ESTIMATORS)
        positive(f"{prefix}.T", self.T)
        positive(f"{prefix}.K", self.K)
        if self.name == "bptt" and self.K > self.T:
            raise ConfigError(f"{prefix}.K", self.K, f"at most T={self.T} for BPTT")
        if self.name in ("ep", "cep", "vf", "cvf") and self.beta == 0:
            raise ConfigError(f"{prefix}.beta", self.beta, "a non-zero nudging strength")
        if self.tol is not None and not 0 < self.tol < math.inf:
            raise ConfigError(f"{prefix}.tol", self.tol, "a positive tolerance on max |s_t+1 - s_t|, or null")
        positive(f"{prefix}.tol_every", self.tol_every)
        choice(f"{prefix}.tol_scope", self.tol_scope, TOL_SCOPES)
        if self.tol_scope != "batch" and self.tol is None:
            raise ConfigError(f"{prefix}.tol_scope", self.tol_scope, "batch unless estimator.tol is set")
        if not all(0 <= lr < math.inf for lr in self.lr):  # also refuses .nan
            raise ConfigError(f"{prefix}.lr", self.lr, "finite, non-negative learning rates")
        choice(f"{prefix}.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not 0 <= self.lr_final <= 1:
            raise ConfigError(f"{prefix}.lr_final", self.lr_final, "a fraction of lr between 0 and 1")
        if self.symmetric and self.random_sign:
            raise ConfigError(f"{prefix}.random_sign", self.random_sign,
                              "false when symmetric nudging is on (it already uses both signs)")


@dataclass
class DataConfig:
    """The dataset and where it is read from."""

    name: str = "mnist"
    """'mnist' or 'fashion-mnist'."""
    dir: str | None = None
    """Folder holding <name>/<file>.gz; null: $NEUROSIM_DATA, else the user cache."""
    train_subset: int | None = None
    """Use only the first N training samples (quick runs, tests)."""
    test_subset: int | None = None
    """Use only the first N test samples; null: the whole test set."""
    download: bool = True
    """Fetch missing files from the public mirrors (always checked against the official MD5s)."""

    def validate(self, prefix: str) -> None:
        choice(f"{prefix}.name", self.name, DATASETS)
        for key in ("train_subset", "test_subset"):
            value = getattr(self, key)
            if value is not None:
                positive(f"{prefix}.{key}", value)


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = 30
    """Passes over the training set."""
    batch_size: int = 20
    """Samples per update (EP: one free and one nudged phase per batch)."""
    eval_batch_size: int = 1000
    """Evaluation runs the free phase only; any batch size gives the same errors."""
    check_every: int = 50
    """Check states for NaN/inf every this many batches (and always at the end of an epoch)."""

    def validate(self, prefix: str) -> None:
        positive(f"{prefix}.epochs", self.epochs)
        positive(f"{prefix}.batch_size", self.batch_size)
        positive(f"{prefix}.eval_batch_size", self.eval_batch_size)
        positive(f"{prefix}.check_every", self.check_every)


@dataclass
class ComputeConfig:
    """Where and in which precision torch computes."""

    device: str = "cpu"
    """torch device: cpu, cuda or cuda:N ('device' alone is kept for synaptic devices)."""
    dtype: str = "float32"
    """'float32' or 'float64' (the Theorem-1 checks and the Brian2 backend use float64)."""
    threads: int | None = None
    """torch CPU threads; null leaves torch's default."""
    fused: bool = True
    """Run the fully connected model's relaxation phases as one compiled loop each
    (``neurosim.core.fused``) where it computes the same step (float32 on the CPU, no autograd,
    no read side, mean-squared cost); false: every step in torch. Same results up to float32
    rounding; about twice as fast at batch 20."""

    def validate(self, prefix: str) -> None:
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ConfigError(f"{prefix}.device", self.device, "'cpu', 'cuda' or 'cuda:N'")
        choice(f"{prefix}.dtype", self.dtype, DTYPES)
        if self.threads is not None:
            positive(f"{prefix}.threads", self.threads)


@dataclass
class GDUConfig:
    """The Theorem-1 check (``neurosim gdu``): EP's processes against BPTT's on one batch.

    T, K, beta and symmetric nudging come from ``estimator``; training ignores this section.
    """

    etas: list[float] = field(default_factory=list)
    """C-EP learning rates checked besides eta = 0 (standard EP, always checked)."""
    batch_size: int | None = None
    """Samples in the batch (the first of the training set); null: train.batch_size."""
    synapses_per_layer: int = 5
    """Synapses (and neurons) drawn per panel of gdu.png."""
    seed: int = 0
    """Draws the plotted synapses."""

    def validate(self, prefix: str) -> None:
        if any(eta < 0 for eta in self.etas):
            raise ConfigError(f"{prefix}.etas", self.etas, "non-negative C-EP learning rates")
        if self.batch_size is not None:
            positive(f"{prefix}.batch_size", self.batch_size)
        positive(f"{prefix}.synapses_per_layer", self.synapses_per_layer)


@dataclass
class SynapsesLayerConfig:
    """The device of one weight layer, where it differs from the section's."""

    device: str | None = None
    """Preset or YAML file; null keeps the section's ``device``."""
    params: dict[str, Any] = field(default_factory=dict)
    """Overrides on top of the section's ``params`` (a layer inherits everything it does not set)."""


@dataclass
class SynapsesConfig:
    """The devices the weights are stored on (``neurosim.hardware.devices``); ideal by default."""

    device: str = "ideal"
    """A preset of ``devices/`` (``neurosim devices`` lists them) or a YAML file."""
    params: dict[str, Any] = field(default_factory=dict)
    """Overrides of the preset's parameters, e.g. {states: 64, dw_min_std: 0.1}."""
    layers: list[SynapsesLayerConfig] = field(default_factory=list)
    """Per weight layer (input side first), when layers sit on different devices: empty, or one
    entry per weight layer (an empty entry ``{}`` keeps the section's device)."""

    def layer(self, index: int) -> tuple[str, dict[str, Any]]:
        """Device name and parameter overrides of weight layer ``index``."""
        if not self.layers:
            return self.device, dict(self.params)
        entry = self.layers[index]
        return entry.device or self.device, {**self.params, **entry.params}

    def layer_device(self, index: int, prefix: str = "synapses"):
        """The validated device record (``neurosim.hardware.devices.DeviceConfig``) of weight layer
        ``index``. Records are loaded once per preset file and overrides (``device_config``
        caches them): validating the config, assembling the network and a backend's checks all
        ask here and share one read of each preset."""
        from neurosim.hardware.devices import device_config

        name, params = self.layer(index)
        key = f"{prefix}.layers[{index}].params" if self.layers else f"{prefix}.params"
        return device_config(name, params, key)

    def validate(self, prefix: str) -> None:
        from neurosim.hardware.devices import device_config

        device_config(self.device, self.params, f"{prefix}.params")  # raises on a bad name or value
        for index in range(len(self.layers)):
            self.layer_device(index, prefix)


@dataclass
class BackendConfig:
    """What simulates the network: torch tensors (discrete or continuous time) or Brian2."""

    name: str = "torch"
    """'torch', 'brian2' (rate neurons as Brian2 equations) or 'brian2-spiking'."""
    target: str = "cpp_standalone"
    """Brian2 code-generation target: 'cpp_standalone' (compiled once, fastest), 'cython' or
    'numpy' (no compiler; what the tests use)."""
    build_dir: str | None = None
    """Where cpp_standalone compiles; null: a cache folder per architecture and schedule
    ($NEUROSIM_BRIAN2_CACHE or ~/.cache/neurosim/brian2)."""
    tau_ms: float = 10.0
    """Membrane time constant of the leaky integrators in ms; the step is dt = circuit.eps * tau
    (the dynamics depend on eps only: tau sets the physical time scale of the Brian2 run)."""
    r_max_hz: float = 1000.0
    """brian2-spiking: firing rate at rho = 1 (at most 1/dt)."""
    tau_syn_ms: float = 2.0
    """brian2-spiking: time constant of the synaptic currents and of the learning traces."""
    spikes: str = "regular"
    """brian2-spiking: 'regular' (integrate-and-fire, random initial phase) or 'poisson'."""
    window: int = 40
    """brian2-spiking: steps at the end of each phase whose spikes are counted and paired."""
    inputs: str = "analog"
    """brian2-spiking: 'analog' (pixels as rates) or 'poisson' (pixels as Poisson spike trains)."""

    def validate(self, prefix: str) -> None:
        choice(f"{prefix}.name", self.name, tuple(RUN_CHECKS))
        choice(f"{prefix}.target", self.target, BRIAN2_TARGETS)
        if not (isinstance(self.tau_ms, (int, float)) and self.tau_ms > 0 and math.isfinite(self.tau_ms)):
            raise ConfigError(f"{prefix}.tau_ms", self.tau_ms, "a positive time constant in ms")
        choice(f"{prefix}.spikes", self.spikes, ("regular", "poisson"))
        choice(f"{prefix}.inputs", self.inputs, ("analog", "poisson"))
        for key in ("r_max_hz", "tau_syn_ms"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ConfigError(f"{prefix}.{key}", value, "a positive number")
        if not (isinstance(self.window, int) and self.window >= 1):
            raise ConfigError(f"{prefix}.window", self.window, "a positive number of steps")

    def validate_run(self, config: Config) -> None:
        """What this backend can simulate: its own check (``Backend.check``, registered in
        ``RUN_CHECKS`` by ``neurosim.backends``), raising a ConfigError that names the key."""
        RUN_CHECKS[self.name](config)


@dataclass
class Config:
    """One training run."""

    name: str = "run"
    """The run's name; the default output folder is runs/<name>."""
    seed: int = 0
    """Weights, shuffling and the sign of beta all derive from it."""
    circuit: CircuitConfig = field(default_factory=CircuitConfig)
    """The network: a name from ``circuits/`` or an inline mapping."""
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    """How updates are computed (EP, C-EP, VF, C-VF or BPTT)."""
    loss: str = "mse"
    """'mse': 1/2||s^N - y||^2 on one-hot y; 'cross_entropy': softmax read-out of the last layer."""
    data: DataConfig = field(default_factory=DataConfig)
    """The dataset."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Epochs and batch sizes."""
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    """torch device, precision and threads."""
    gdu: GDUConfig = field(default_factory=GDUConfig)
    """The Theorem-1 check (``neurosim gdu``); training ignores it."""
    synapses: SynapsesConfig = field(default_factory=SynapsesConfig)
    """The synaptic devices the weights are stored on."""
    backend: BackendConfig = field(default_factory=BackendConfig)
    """The simulator: torch or Brian2."""

    def validate(self) -> None:
        self.circuit.validate("circuit")
        self.estimator.validate("estimator")
        self.data.validate("data")
        self.train.validate("train")
        self.compute.validate("compute")
        self.gdu.validate("gdu")
        self.synapses.validate("synapses")
        self.backend.validate("backend")
        self.backend.validate_run(self)
        choice("loss", self.loss, LOSSES)
        vector_field = self.circuit.dynamics == "vector_field"
        if vector_field and self.estimator.name in ("ep", "cep"):
            raise ConfigError("estimator.name", self.estimator.name,
                              "vf, cvf or bptt for dynamics vector_field (it has no Phi for ep/cep)")
        if not vector_field and self.estimator.name in VF_ESTIMATORS:
            raise ConfigError("estimator.name", self.estimator.name,
                              f"ep, cep or bptt for dynamics {self.circuit.dynamics} (vf and cvf need "
                              "circuit.dynamics: vector_field; initial_angle 0 is the tied network)")
        n_weights = self.circuit.num_weight_layers
        if self.synapses.layers and len(self.synapses.layers) != n_weights:
            raise ConfigError("synapses.layers", self.synapses.layers,
                              f"one entry per weight layer ({n_weights}), or none")
        if len(self.estimator.lr) != n_weights:
            what = (f"{len(self.circuit.conv)} conv + {len(self.circuit.layers)} fully connected"
                    if self.circuit.convolutional else f"layers {self.circuit.layers}")
            raise ConfigError("estimator.lr", self.estimator.lr,
                              f"one learning rate per weight layer ({n_weights} for {what})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- loading


def load_config(source: str | Path | Mapping[str, Any], overrides: list[str] | None = None) -> Config:
    """Read a config from a YAML path, an experiment name, or a mapping; apply ``--set`` overrides.

    The circuit may be given by name (a file of ``circuits/``) or inline; it is resolved
    before the overrides so that ``--set circuit.layers=[784,256,10]`` edits the named circuit.
    """
    if isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))  # overrides must not edit the caller's mapping
    else:
        raw = read_yaml(catalog.find("experiments", str(source)))
    parsed = [parse_override(item) for item in overrides or []]
    for key, value in parsed:  # a new circuit name must be applied before resolving it
        if key == "circuit":
            raw["circuit"] = value
    raw["circuit"] = _resolve_circuit(raw.get("circuit", {}))
    for key, value in parsed:
        if key != "circuit":
            set_dotted(raw, key, value)
    config = build(Config, raw, "")
    config.validate()
    return config


def save_config(config: Config, path: Path) -> None:
    from neurosim.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def _resolve_circuit(value: Any) -> Any:
    if isinstance(value, str):
        circuit = read_yaml(catalog.find("circuits", value))
        circuit.setdefault("name", value)
        return circuit
    return value
