"""Time one end-of-example device write of 784 x 500 synapses in cpp_standalone (brian2_devices).

    python experiments/bench_spiking_device_write.py MODE

MODE: ideal (w += delta), const (constant response, stochastic rounding, c2c 0.3), lin
(linear_step, gamma 0.5, c2c 0.3), nonoise (constant, no c2c), det (constant, deterministic
rounding, no c2c), nonlin (NeuroSim nonlinear, 1000 states, c2c 0.3), lin_d2d (lin with
d2d spreads: the per-device parameters read from arrays, not constants). One core; the project compiles into /tmp/devbench/MODE. A fifth of the pixels
and 30% of the hidden deltas are non-zero, as for MNIST. Numbers: neurosim/backends/brian2_devices.py.
"""

import sys
import time

import brian2 as b2

from neurosim.backends.brian2 import devices as bd
from neurosim.hardware.devices import DeviceConfig

MODES = {"ideal": ("constant", "stochastic", 0.0), "const": ("constant", "stochastic", 0.3),
         "lin": ("linear_step", "stochastic", 0.3), "nonoise": ("constant", "stochastic", 0.0),
         "det": ("constant", "deterministic", 0.0), "nonlin": ("nonlinear", "stochastic", 0.3),
         "lin_d2d": ("linear_step", "stochastic", 0.3)}


def main(mode: str, examples: int = 300) -> float:
    response, rounding, c2c = MODES[mode]
    directory = f"/tmp/devbench/{mode}"
    b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    n_pre, n_post = 784, 500
    pre = b2.NeuronGroup(n_pre, "x : 1", dt=1 * b2.ms)
    post = b2.NeuronGroup(n_post, "delta : 1", dt=1 * b2.ms)
    pre.x = "rand()"
    pre.x = "x * int(x < 0.2) * 5"
    post.run_regularly("delta = rand() - 0.5\ndelta = delta * int(abs(delta) < 0.15) * 0.01", dt=1 * b2.ms,
                       when="start")
    config = DeviceConfig(response=response, rounding=rounding, dw_min=0.0012, gamma_up=0.5, gamma_down=0.5,
                          dw_min_std=c2c, states=1000 if response == "nonlinear" else None, a_up=0.5, a_down=0.5,
                          dw_min_dtod=0.3 if mode == "lin_d2d" else 0.0)
    code = "w += delta_post * x_pre" if mode == "ideal" else bd.write_code(config, "delta_post * x_pre")
    syn = b2.Synapses(pre, post, "w : 1\n" + bd.variables(config), dt=1 * b2.ms)
    syn.connect()
    if not bd.uniform(config):  # per-device parameters (d2d spreads) read from arrays
        syn.dw_up, syn.dw_down, syn.w_lo, syn.w_hi, syn.movable = 0.0012, 0.0012, -0.6, 0.6, 1
    syn.run_regularly(code, dt=1 * b2.ms, when="start", order=2)
    b2.run(examples * b2.ms, namespace=bd.functions())
    b2.device.build(directory=directory, compile=True, run=False)
    t0 = time.perf_counter()
    b2.device.run()
    return (time.perf_counter() - t0) / examples


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "const"
    print(mode, f"{main(mode) * 1e3:.2f} ms per write of {784 * 500} synapses")
