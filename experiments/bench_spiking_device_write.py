"""Time one end-of-example device write of 784 x 500 synapses in cpp_standalone (brian2 devices).

    python experiments/bench_spiking_device_write.py MODE
    python experiments/bench_spiking_device_write.py --compare [--before REV] [--repeats 5] [--out FILE]

MODE: ideal (w += delta), const (constant response, stochastic rounding, c2c 0.3), lin
(linear_step, gamma 0.5, c2c 0.3), nonoise (constant, no c2c), det (constant, deterministic
rounding, no c2c), nonlin (NeuroSim nonlinear, 1000 states, c2c 0.3), lin_d2d (lin with a d2d
spread of dw_min 0.3: the steps vary per device), lin_d2d_all (lin with the spreads of
tests/backends/test_spiking_devices.py: dw_min 0.3, asymmetry 0.05, bounds 0.1, 10% stuck), and
lin_d2d_ungated / lin_d2d_all_ungated (the same write code with the varying parameters read as
Brian2 synapse variables for every synapse, as the numpy target does, instead of through the
gated C++ reads of ``devices.gates``). One core; the project compiles into /tmp/devbench/MODE.
A fifth of the pixels and 30% of the hidden deltas are non-zero, as for MNIST.

Times: the CPU time of the write's code object (Brian2's profiling, std::clock), per write;
and the whole binary's wall time per example (its start and the other code objects included).
--compare builds lin, lin_d2d, lin_d2d_all and the ungated pair (plus, with --before REV, lin and
the two d2d modes with the devices module of git revision REV, "..._before"), then runs the compiled
binaries interleaved, ``--repeats`` rounds, and reports per mode min/median ms per write and the
ratio to ``lin`` (uniform devices; for "..._before", to ``lin_before``) of the same round, min and
median over the rounds. With --out the numbers go to a JSON file (command, machine, per-round times).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = 300
N_PRE, N_POST = 784, 500
MODES = {"ideal": ("constant", "stochastic", 0.0), "const": ("constant", "stochastic", 0.3),
         "lin": ("linear_step", "stochastic", 0.3), "nonoise": ("constant", "stochastic", 0.0),
         "det": ("constant", "deterministic", 0.0), "nonlin": ("nonlinear", "stochastic", 0.3),
         "lin_d2d": ("linear_step", "stochastic", 0.3), "lin_d2d_all": ("linear_step", "stochastic", 0.3)}
SPREADS = {"lin_d2d": {"dw_min_dtod": 0.3},
           "lin_d2d_all": {"dw_min_dtod": 0.3, "up_down_dtod": 0.05, "w_bounds_dtod": 0.1, "stuck_fraction": 0.1}}
COMPARED = ["lin", "lin_d2d", "lin_d2d_all", "lin_d2d_ungated", "lin_d2d_all_ungated"]


def _devices_module(before: str | None):
    """The devices module: this tree's, or that of git revision ``before``."""
    from neurosim.backends.brian2 import devices

    if not before:
        return devices
    source = subprocess.run(["git", "show", f"{before}:neurosim/backends/brian2/devices.py"], check=True,
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]).stdout
    path = Path(tempfile.mkdtemp()) / "devices_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("neurosim_devices_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(mode: str, before: str | None = None, examples: int = EXAMPLES) -> Path:
    """Generate and compile the project of ``mode`` (``..._ungated``: no gated reads; with
    ``before``: the devices module of that git revision); returns its directory."""
    import brian2 as b2
    import numpy as np
    import torch

    from neurosim.hardware.devices import DeviceArray, DeviceConfig

    bd = _devices_module(before)
    gated = not mode.endswith("_ungated") and not before
    base = mode.removesuffix("_ungated")
    response, rounding, c2c = MODES[base]
    directory = Path(f"/tmp/devbench/{mode}" + ("_before" if before else ""))
    b2.set_device("cpp_standalone", directory=str(directory), build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    pre = b2.NeuronGroup(N_PRE, "x : 1", dt=1 * b2.ms)
    post = b2.NeuronGroup(N_POST, "delta : 1", dt=1 * b2.ms)
    pre.x = "rand()"
    pre.x = "x * int(x < 0.2) * 5"
    post.run_regularly("delta = rand() - 0.5\ndelta = delta * int(abs(delta) < 0.15) * 0.01", dt=1 * b2.ms,
                       when="start")
    config = DeviceConfig(response=response, rounding=rounding, dw_min=0.0012, gamma_up=0.5, gamma_down=0.5,
                          dw_min_std=c2c, states=1000 if response == "nonlinear" else None, a_up=0.5, a_down=0.5,
                          w_min=-0.6, w_max=0.6, **SPREADS.get(base, {}))
    owner = "syn"
    if mode == "ideal":
        code, model = "w += delta_post * x_pre", "w : 1"
    else:
        code = bd.write_code(config, "delta_post * x_pre", *([owner] if gated else []))
        model = "w : 1\n" + bd.variables(config)
    syn = b2.Synapses(pre, post, model, dt=1 * b2.ms, name=owner)
    i_pre, j_post = (a.ravel() for a in np.meshgrid(np.arange(N_PRE), np.arange(N_POST), indexing="ij"))
    syn.connect(i=i_pre, j=j_post)
    weight = (torch.rand(N_POST, N_PRE, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 0.5)
    array = DeviceArray.create(config, weight, 0)  # the devices, spreads drawn as for training
    syn.w = weight.numpy()[j_post, i_pre]
    if mode != "ideal":
        for var, values in bd.per_device_values(array, i_pre, j_post).items():
            setattr(syn, var, values)
    syn.run_regularly(code, dt=1 * b2.ms, when="start", order=2)
    namespace = bd.functions()
    if gated and mode != "ideal" and hasattr(bd, "gates"):
        namespace.update(bd.gates(config, owner))
    b2.run(examples * b2.ms, namespace=namespace, profile=True)  # CPU time of each code object
    b2.device.build(directory=str(directory), compile=True, run=False)
    return directory


def time_binary(directory: Path, examples: int = EXAMPLES) -> tuple[float, float]:
    """One run of the compiled binary (as ``device.run`` does) over ``examples``: seconds per
    write of the write's code object alone (its CPU time, std::clock, from Brian2's profiling:
    neither the binary's start nor other jobs' time slices count), and wall seconds per example
    of the whole binary (start and the other code objects included)."""
    t0 = time.perf_counter()
    subprocess.run(["./main"], cwd=directory, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - t0) / examples
    write = None
    for line in (directory / "results" / "profiling_info.txt").read_text().splitlines():
        name, _, value = line.rpartition("\t") if "\t" in line else line.rpartition(" ")
        if name.strip() == "syn_run_regularly_codeobject":
            write = float(value) / examples
    return write, wall


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def compare(before: str | None, repeats: int, out: str | None) -> dict:
    builds = [(mode, None) for mode in COMPARED]
    builds += [(mode, before) for mode in ("lin", "lin_d2d", "lin_d2d_all")] if before else []
    dirs = {}
    for mode, rev in builds:  # one process per project: a Brian2 device builds one project
        args = [sys.executable, __file__, "--build", mode] + (["--before", rev] if rev else [])
        path = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        dirs[mode + ("_before" if rev else "")] = Path(path)
    rounds, rounds_wall = [], []
    for _ in range(repeats):  # interleaved: every mode once per round
        times = {name: time_binary(path) for name, path in dirs.items()}
        rounds.append({name: t[0] * 1e3 for name, t in times.items()})
        rounds_wall.append({name: t[1] * 1e3 for name, t in times.items()})
    summary = {}
    for name in dirs:
        times = [r[name] for r in rounds]
        uniform = "lin_before" if name.endswith("_before") else "lin"  # each against its own uniform devices
        ratios = [r[name] / r[uniform] for r in rounds]
        wall_ratios = [r[name] / r[uniform] for r in rounds_wall]
        summary[name] = {"ms_min": min(times), "ms_median": statistics.median(times),
                         "ratio_to_uniform_min": min(ratios), "ratio_to_uniform_median": statistics.median(ratios),
                         "wall_ms_median": statistics.median(r[name] for r in rounds_wall),
                         "wall_ratio_to_uniform_median": statistics.median(wall_ratios)}
    result = {"command": "python experiments/bench_spiking_device_write.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.node()}: {_cpu_model()}, {os.cpu_count()} cores "
                         f"(shared, other jobs running); one core per binary, no OpenMP",
              "synapses": N_PRE * N_POST, "examples_per_run": EXAMPLES, "repeats": repeats,
              "before": before,
              "measure": "ms_*, ratio_*: CPU time (std::clock, Brian2 profiling) of the write's code object "
                         "per write; wall_*: the whole binary's wall time per example (start included)",
              "summary": summary, "rounds_ms": rounds, "rounds_wall_ms": rounds_wall}
    for name, row in summary.items():
        print(f"{name:22s} write {row['ms_min']:5.2f} / {row['ms_median']:5.2f} ms (min/median)  vs uniform "
              f"{row['ratio_to_uniform_min']:.2f} / {row['ratio_to_uniform_median']:.2f}   whole binary "
              f"{row['wall_ms_median']:5.2f} ms/example ({row['wall_ratio_to_uniform_median']:.2f})")
    if out:
        Path(out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="const")
    parser.add_argument("--build", metavar="MODE", help="only generate and compile MODE's project; print its directory")
    parser.add_argument("--before", metavar="REV", help="also build the d2d modes with the devices module of REV")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.build:
        print(build(args.build, args.before))
    elif args.compare:
        compare(args.before, args.repeats, args.out)
    else:
        write, wall = time_binary(build(args.mode))
        print(args.mode, f"{write * 1e3:.2f} ms per write of {N_PRE * N_POST} synapses (CPU time of the write; "
                         f"{wall * 1e3:.2f} ms wall per example for the whole binary)")
