"""Convert CrossSim's example measured ramps (set.csv, reset.csv) into neurosim's long form.

Source (BSD-3-Clause, Sandia): github.com/sandialabs/cross-sim, tag v2.0
(commit b30b36596290a946ccaf7624ce3f39461ed74460; the files date from commit
39fd461b7d214831ff7deb00f8d8656686f754c4):

    examples/lookup_table_generation/lookup_table_example/set.csv     sha256 01911062...80654cf
    examples/lookup_table_generation/lookup_table_example/reset.csv   sha256 76f6ffb4...1bab7edb3

(fetched e.g. with ``git show v2.0:examples/lookup_table_generation/lookup_table_example/set.csv``).
The files were removed from CrossSim after v2.0 (v3.x has no training lookup-table tools).

Each file has one header row (rmp1, rmp2, ...) and one column per ramp: set.csv 39 ramps of
potentiating (SET) pulses, reset.csv 40 ramps of depressing (RESET) pulses; a column ends early
with empty cells (its ramp was shorter). Every value is a reading taken after a pulse (CrossSim's
loader: "conductance values after a pulse"); there is no separate pre-pulse reading, so each
sweep starts at pulse 1.

Units: the values are read as conductance in siemens and written in uS. (CrossSim's example
script create_lookup_table.py assumes they are read currents at 0.1 V and divides by 0.1, which
would make them 1.6-2.5 mS; the numbers of the LISTA figure in CrossSim's manual v0.3 match the
values read as siemens, 160-249 uS. See SOURCE.md.)

Time order: the last reading of reset ramp k matches the first of set ramp k, and the last of
set ramp k the first of reset ramp k+1, so the measurement ran reset 1, set 1, reset 2, set 2,
..., set 39, reset 40. Cycles are labelled so that each is potentiation then depression in time:
cycle 0 is reset ramp 1 alone (the initial depression), cycle k (1..39) is set ramp k then reset
ramp k+1.

    python convert.py set.csv reset.csv > data.csv
"""

from __future__ import annotations

import sys

import numpy as np

SOURCE = ("Sandia CrossSim v2.0 example measured ramps, most likely the Li-ion synaptic transistor "
          "(LISTA; E. J. Fuller et al., Adv. Mater. 29:1604310, 2017), see SOURCE.md; "
          "github.com/sandialabs/cross-sim@b30b3659 (tag v2.0) "
          "examples/lookup_table_generation/lookup_table_example/{set,reset}.csv, BSD-3-Clause")


def read_ramps(path: str) -> list[np.ndarray]:
    """Columns of a CrossSim ramp file, each without its trailing empty cells (in siemens)."""
    data = np.genfromtxt(path, delimiter=",", skip_header=1)
    ramps = []
    for column in data.T:
        n = int((~np.isnan(column)).sum())
        if np.isnan(column[:n]).any():
            raise SystemExit(f"{path}: a ramp has an empty cell before its last reading")
        ramps.append(column[:n])
    return ramps


def uS(value: float) -> str:
    return f"{value * 1e6:.6g}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sets, resets = read_ramps(argv[0]), read_ramps(argv[1])
    if len(resets) != len(sets) + 1:
        raise SystemExit(f"expected one more reset ramp than set ramps, got {len(sets)} and {len(resets)}")
    out = sys.stdout
    out.write("# units: uS\n")
    out.write(f"# source: {SOURCE}\n")
    out.write("# cycle 0: reset ramp 1 (initial depression); cycle k: set ramp k then reset ramp k+1, "
              "in time order; pulse 1 is the reading after a sweep's first pulse (no pre-pulse reading)\n")
    out.write("device,cycle,direction,pulse,conductance\n")

    def sweep(cycle: int, direction: str, values: np.ndarray) -> None:
        for k, g in enumerate(values, start=1):
            out.write(f"d0,{cycle},{direction},{k},{uS(g)}\n")

    sweep(0, "down", resets[0])
    for k in range(1, len(sets) + 1):
        sweep(k, "up", sets[k - 1])
        sweep(k, "down", resets[k])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
