"""The continuous-time EP network as a Brian2 simulation (rate neurons, ``backend: brian2``).

One Brian2 run covers a whole sequence of examples (an epoch, then the test set with plasticity
off). Every example lasts S = T + K steps of dt = eps tau; what happens when is written as
Brian2 objects, not as a Python loop:

- data: the examples' pixels and targets are TimedArrays indexed by row (``x_ta``, ``y_ta``:
  the data table, fixed), and three per-example TimedArrays (``row_ta``: which row, so a new
  shuffle costs n numbers, not n images; ``beta_ta``: beta with its sign; ``gate_ta``: 1 to
  learn from the example, 0 to evaluate it only);
- input drive: an input group and a drive group whose clocks tick once per example; the input
  synapses' summed variable W_1 x is therefore summed once per example (not over all 784 x n_1
  synapses at every step), and layer 1 reads it through a linked variable;
- phases: layer equations (``brian2_equations``) switch the nudge current on when the step
  offset within the example reaches T; run_regularly operations, scheduled at the start of each
  example, apply EP's update for the example that just ended, then reset the states;
- learning: EP at the end of the nudged phase; C-EP during it, dW/dt = (eta/beta) d/dt[rho_i rho_j],
  one Euler step per time step in the 'end' slot (W_1's share is telescoped, exactly, since x
  is constant: its change of drive coef |x|^2 Delta rho is tracked by each layer-1 neuron, and
  W_1 itself is updated once, at the end of the example).

The run lasts n S + 1 steps: the extra step applies the last example's update.

Targets: 'numpy' and 'cython' (runtime: the objects are rebuilt for each run, cheap), and
'cpp_standalone': the project is generated and compiled once per architecture and schedule
(``Layout``), into a cache folder named by its hash; later runs, in this process or another
one, pass new weights, order, betas and gates through ``device.run(run_args=...)``. Weights
enter and leave by the synapses' (i, j) indices (``weights``).

The run's data (``Layout``, ``Schedule``, ``RunOutput``) live in ``brian2.schedule`` and the
target machinery (runtime preferences, the standalone binary's progress lines) in
``brian2.targets``; their names are importable from here too, as before.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neurosim.errors import ConfigError, NeurosimError
from neurosim.backends.brian2 import equations as eq
from neurosim.backends.brian2.schedule import Layout, Params, RunOutput, Schedule, schedule_tables
from neurosim.backends.brian2.targets import (PROGRESS_TAG, TARGETS, ProgressWatcher, array_digest, build_cache_root,
                                              codegen_target, standalone_report)
from neurosim.backends.brian2.weights import matrix_from_synapses, synapse_values

__all__ = ["PROGRESS_TAG", "TARGETS", "Brian2RateNetwork", "Layout", "Params", "ProgressWatcher", "RunOutput",
           "Schedule", "default_build_dir", "schedule_tables", "standalone_report"]

_ACTIVE_STANDALONE: Brian2RateNetwork | None = None
"""The network whose objects Brian2's (single) standalone device holds now."""


class Brian2RateNetwork:
    """The network of a Layout on one Brian2 target; ``run`` simulates a Schedule.

    ``params`` holds the current weights between runs (as matrices): a run starts from them
    and leaves the learnt ones there. ``lrs`` are EP's learning rates or C-EP's etas per layer.
    """

    def __init__(self, layout: Layout, params: Params, lrs: list[float], target: str = "numpy",
                 build_dir: str | Path | None = None) -> None:
        if target not in TARGETS:
            raise ConfigError("backend.target", target, "one of " + ", ".join(TARGETS))
        if len(lrs) != len(layout.sizes) - 1:
            raise ConfigError("estimator.lr", lrs, f"one learning rate per weight layer ({len(layout.sizes) - 1})")
        self.layout = layout
        self.target = target
        self.lrs = [float(v) for v in lrs]
        self.params: Params = []
        self.set_params(params)
        self.build_dir = Path(build_dir) if build_dir else default_build_dir(layout)
        self._standalone: dict[str, Any] | None = None
        self._device: Any = None
        self._built_data: dict[str, str] = {}
        self._runs = 0
        self.on_progress: Callable[[float, float], None] | None = None
        """Called with (fraction simulated, seconds) every few seconds of a cpp_standalone run."""
        self.build_seconds = 0.0
        self.build_cpu_seconds = 0.0

    # ------------------------------------------------------------------ parameters

    def set_params(self, params: Params) -> None:
        sizes = self.layout.sizes
        if len(params) != len(sizes) - 1:
            raise NeurosimError(f"{len(params)} weight layers for a network of sizes {list(sizes)}")
        checked = []
        for n, (w, b) in enumerate(params):
            w, b = np.array(w, dtype=np.float64), np.array(b, dtype=np.float64)
            if w.shape != (sizes[n + 1], sizes[n]) or b.shape != (sizes[n + 1],):
                raise NeurosimError(f"layer {n + 1}: weights {w.shape} and bias {b.shape} for sizes "
                                    f"{sizes[n]} -> {sizes[n + 1]}")
            checked.append((w, b))
        self.params = checked

    # ------------------------------------------------------------------ running

    def run(self, schedule: Schedule) -> RunOutput:
        """Simulate the schedule from the current params; keep the learnt ones."""
        schedule.check(self.layout)
        if self.target == "cpp_standalone":
            return self._run_standalone(schedule)
        return self._run_runtime(schedule)

    def _run_runtime(self, schedule: Schedule) -> RunOutput:
        import time

        import brian2 as b2

        with codegen_target(self.target):
            objects = self._runtime_objects(schedule)
            for syn, (w, _) in zip(objects["synapses"], self.params):
                syn.w[:] = synapse_values(w, syn.i[:], syn.j[:])
            for group, (_, b) in zip(objects["layers"], self.params):
                group.b[:] = b
            for syn, var, values in self._synapse_extras(objects):
                getattr(syn, var)[:] = values
            net = b2.Network(*objects["all"])
            t0, cpu0 = time.perf_counter(), time.process_time()
            net.run(objects["duration"], namespace=objects["namespace"])
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            return self._collect(objects, seconds, cpu)

    def _read_params(self, objects: dict[str, Any]) -> None:
        """The learnt weights and biases, matrices rebuilt from the synapses' own indices."""
        sizes = self.layout.sizes
        params = []
        for n, (syn, group) in enumerate(zip(objects["synapses"], objects["layers"])):
            w = matrix_from_synapses(np.asarray(syn.w[:]), np.asarray(syn.i[:]), np.asarray(syn.j[:]),
                                     (sizes[n + 1], sizes[n]), name=syn.name)
            params.append((w, np.array(group.b[:], dtype=np.float64)))
        self.params = params

    def _synapse_extras(self, objects: dict[str, Any]) -> list[tuple[Any, str, np.ndarray]]:
        """Per-synapse values besides w that a run starts from, as (Synapses, variable, values in
        the connect order): none here (the spiking network's devices)."""
        return []

    def _runtime_objects(self, schedule: Schedule) -> dict[str, Any]:
        """The Brian2 objects of one runtime run (subclasses: other networks on the same schedule)."""
        return _build_objects(self.layout, schedule, self.lrs)

    def _standalone_objects(self, schedule: Schedule, device: Any) -> dict[str, Any]:
        """The Brian2 objects of the standalone project, created on the activated ``device``
        (subclasses: other networks, code of their own in main())."""
        return _build_objects(self.layout, schedule, self.lrs)

    def _collect(self, objects: dict[str, Any], seconds: float, cpu_seconds: float) -> RunOutput:
        self._read_params(objects)
        recorded = np.asarray(objects["free_monitor"].s_free)  # [n_out, n_examples + 1]
        free = recorded[:, 1:].T.copy()  # row 0 is the start (no example had ended)
        states = None
        if self.layout.record_states:
            states = [np.asarray(m.s).T.copy() for m in objects["state_monitors"]]
        return RunOutput(free, states, seconds, cpu_seconds)

    def _run_standalone(self, schedule: Schedule) -> RunOutput:
        """Run the compiled binary with this schedule and the current weights as run_args.

        The files it reads are written here: the data table, unless it is the one the binary was
        built with, under its content hash (shared, kept), the weights and per-example arrays under this process's own names (deleted after
        the run), and results go to a folder of its own, so several processes (a sweep, two
        trainings of one layout) can run the same cached binary at once.
        """
        import shutil
        import time

        from brian2.devices.device import get_device, set_device

        global _ACTIVE_STANDALONE
        if self._standalone is None or _ACTIVE_STANDALONE is not self:
            # Brian2 has one standalone device per process: a network built after this one
            # re-initialised it. Rebuilding finds the compiled project up to date.
            self._build_standalone(schedule)
            _ACTIVE_STANDALONE = self
        if get_device() is not self._device:  # a runtime network ran in between
            set_device(self._device, build_on_run=False)
        device = self._device
        objects = self._standalone
        assert objects is not None
        self._runs += 1
        tag = f"{os.getpid()}_{id(self):x}_{self._runs}"
        static = Path(device.project_dir) / "static_arrays"
        args: list[str] = []
        own: list[Path] = []

        def put(name: str, values: np.ndarray, shared: bool = False) -> None:
            values = np.ascontiguousarray(values, dtype=np.float64)
            key = hashlib.md5(values.data).hexdigest() if shared else tag
            path = static / f"neurosim_{name}_{key}.dat"
            if not (shared and path.exists()):
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                values.tofile(tmp)
                os.replace(tmp, path)
            if not shared:
                own.append(path)
            args.append(f"{name}={os.path.join('static_arrays', path.name)}")

        for name, values in (("x_ta.values", schedule.images), ("y_ta.values", schedule.targets)):
            if array_digest(values) != self._built_data.get(name):  # the binary holds the table it was built with
                put(name, values, shared=True)
        for name in ("row_ta", "beta_ta", "gate_ta"):
            put(f"{name}.values", getattr(schedule, name.replace("_ta", "s")))
        for syn, (w, _) in zip(objects["synapses"], self.params):
            i_pre, j_post = objects["connect"][syn.name]
            put(f"{syn.name}.w", synapse_values(w, i_pre, j_post))
        for syn, var, values in self._synapse_extras(objects):
            put(f"{syn.name}.{var}", values)
        for group, (_, b), lr in zip(objects["layers"], self.params, self.lrs):
            put(f"{group.name}.b", b)
            args.append(f"{group.name}.lr={lr!r}")
        results = f"results_{tag}"
        t0, before = time.perf_counter(), os.times()
        try:
            with ProgressWatcher(Path(device.project_dir) / results / "stdout.txt", self.on_progress):
                device.run(results_directory=results, run_args=args, with_output=False)
            seconds, after = time.perf_counter() - t0, os.times()
            cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
            for syn in objects["synapses"]:  # weights went in by the connect arrays' order: check it held
                i_pre, j_post = objects["connect"][syn.name]
                if not (np.array_equal(syn.i[:], i_pre) and np.array_equal(syn.j[:], j_post)):
                    raise NeurosimError(f"{syn.name}: Brian2 created the synapses in another order than "
                                        f"the connect arrays; its weights were loaded in the wrong places")
            return self._collect(objects, seconds, cpu)
        finally:
            for path in own:
                path.unlink(missing_ok=True)
            shutil.rmtree(Path(device.project_dir) / results, ignore_errors=True)

    def _build_standalone(self, schedule: Schedule) -> None:
        """Generate and compile the project once (make finds it up to date when cached)."""
        import time

        from brian2.utils.filelock import FileLock

        t0, cpu0, before = time.perf_counter(), time.process_time(), os.times()
        self.build_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.build_dir / ".neurosim_build.lock")):  # one writer of the project at a time
            self._generate_and_compile(schedule)
        after = os.times()
        self.build_seconds = time.perf_counter() - t0
        self.build_cpu_seconds = (time.process_time() - cpu0 + after.children_user - before.children_user
                                  + after.children_system - before.children_system)  # code generation + compiler

    def _generate_and_compile(self, schedule: Schedule) -> None:
        import brian2 as b2
        from brian2 import device, set_device
        from brian2.devices.device import get_device

        set_device("cpp_standalone", build_on_run=False, directory=str(self.build_dir))
        device.reinit()
        device.activate(build_on_run=False, directory=str(self.build_dir))
        b2.prefs.devices.cpp_standalone.openmp_threads = 0
        objects = self._standalone_objects(schedule, device)
        net = b2.Network(*objects["all"])
        net.run(objects["duration"], namespace=objects["namespace"], **standalone_report())
        device.build(directory=str(self.build_dir), compile=True, run=False, with_output=False)
        self._standalone = objects
        self._device = get_device()
        self._built_data = {"x_ta.values": array_digest(schedule.images), "y_ta.values": array_digest(schedule.targets)}


def default_build_dir(layout: Layout) -> Path:
    """The layout's folder in the Brian2 build cache (targets.build_cache_root)."""
    return build_cache_root() / f"rate_{layout.key()}"


def _build_objects(layout: Layout, schedule: Schedule, lrs: list[float]) -> dict[str, Any]:
    """Create the Brian2 groups, synapses, operations and monitors of a layout."""
    import brian2 as b2
    from brian2 import ms

    sizes = layout.sizes
    n_layers = len(sizes) - 1
    continual = layout.rule == "cep"
    tau = layout.tau_ms * ms
    dt = layout.eps * tau
    period = layout.steps_per_example * dt
    tables = schedule_tables(schedule, period)
    x_ta, y_ta, row_ta, beta_ta, gate_ta = (tables[k] for k in ("x_ta", "y_ta", "row_ta", "beta_ta", "gate_ta"))
    namespace = {"tau": tau, "S": layout.steps_per_example, "T": layout.T, "ms": ms, "x_ta": x_ta,
                 "y_ta": y_ta, "row_ta": row_ta, "beta_ta": beta_ta, "gate_ta": gate_ta}

    inputs = b2.NeuronGroup(sizes[0], "x : 1", dt=period, name="inputs")
    inputs.run_regularly("x = x_ta(row_ta(t) * ms, i)", dt=period, when="start", order=3, name="inputs_load")
    drive = b2.NeuronGroup(sizes[1], "I_in : 1\ndelta : 1 (linked)", dt=period, order=-10, name="drive")
    layers = []
    for n in range(1, n_layers + 1):
        group = b2.NeuronGroup(sizes[n], eq.layer_equations(n, n_layers, layout.activation, continual),
                               method="euler", dt=dt, order=0, name=f"layer{n}")
        group.lr = lrs[n - 1]
        group.beta_now = 1.0  # any non-zero value: coef = gate lr / beta_now with gate = 0 at t = 0
        group.gate = 0.0
        update = eq.end_of_example_update(n, continual)
        if update:
            group.run_regularly(update, dt=period, when="start", order=1, name=f"layer{n}_update")
        group.run_regularly(eq.example_reset(n, n_layers, continual), dt=period, when="start", order=3,
                            name=f"layer{n}_reset")
        if layout.clamp:
            group.run_regularly("s = clip(s, 0, 1)", when="after_groups", name=f"layer{n}_clamp")
        group.run_regularly(eq.after_step(n, continual), when="end", order=1, name=f"layer{n}_after_step")
        layers.append(group)
    layers[0].I_in = b2.linked_var(drive, "I_in")
    drive.delta = b2.linked_var(layers[0], "delta")
    extra: list[Any] = []
    if continual:
        norm = b2.NeuronGroup(1, "xx : 1", dt=period, order=-10, name="input_norm")
        norm_syn = b2.Synapses(inputs, norm, "xx_post = x_pre * x_pre : 1 (summed)", dt=period, name="input_norm_syn")
        norm_syn.connect()
        layers[0].xx = b2.linked_var(norm, "xx", index=np.zeros(sizes[1], dtype=np.int64))
        extra += [norm, norm_syn]

    synapses, connect = [], {}
    for n in range(1, n_layers + 1):
        # Presynaptic-major order: consecutive synapses add into different postsynaptic neurons, so
        # the summed variable's loop has no chain of dependent additions (measured 3 ns -> 1 ns per
        # synapse for W_1 x). Weights still travel by (i, j), whatever the order.
        i_pre, j_post = (a.ravel() for a in np.meshgrid(np.arange(sizes[n - 1]), np.arange(sizes[n]), indexing="ij"))
        if n == 1:
            syn = b2.Synapses(inputs, drive, eq.INPUT_SYNAPSE_MODEL, dt=period, name="syn1")
            syn.connect(i=i_pre, j=j_post)
            syn.run_regularly(eq.INPUT_SYNAPSE_UPDATE, dt=period, when="start", order=2, name="syn1_update")
        else:
            syn = b2.Synapses(layers[n - 2], layers[n - 1], eq.SYNAPSE_MODEL, dt=dt, name=f"syn{n}")
            syn.connect(i=i_pre, j=j_post)
            if continual:
                syn.run_regularly(eq.CEP_SYNAPSE_STEP, when="end", order=0, name=f"syn{n}_step")
            else:
                syn.run_regularly(eq.EP_SYNAPSE_UPDATE, dt=period, when="start", order=2, name=f"syn{n}_update")
        synapses.append(syn)
        connect[syn.name] = (i_pre.astype(np.int32), j_post.astype(np.int32))

    free_monitor = b2.StateMonitor(layers[-1], "s_free", record=True, dt=period, when="start", order=0,
                                   name="free_monitor")
    state_monitors = []
    if layout.record_states:
        state_monitors = [b2.StateMonitor(g, "s", record=True, when="end", order=5, name=f"{g.name}_states")
                          for g in layers]
    duration = (layout.n_examples * layout.steps_per_example + 1) * dt
    return {"all": [inputs, drive, *layers, *extra, *synapses, free_monitor, *state_monitors],
            "layers": layers, "synapses": synapses, "connect": connect, "free_monitor": free_monitor,
            "state_monitors": state_monitors, "namespace": namespace, "duration": duration,
            "x_ta": x_ta, "y_ta": y_ta, "row_ta": row_ta, "beta_ta": beta_ta, "gate_ta": gate_ta}
