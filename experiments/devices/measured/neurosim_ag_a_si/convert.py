"""Convert the Ag:a-Si LTP/LTD data of NeuroSim's nonlinear_fit.m into neurosim's long form.

Source (CC BY-NC 4.0, see SOURCE.md): github.com/neurosim/MLP_NeuroSim_V3.0, file
``nonlinear_fit.m`` (added in commit 58a5f0ca7304367e628ebc5df0b44dfdef08867e, unchanged at
cc1386372d01fc022a9bf52cabd8c96e94fb838b; sha256 7ddc20a7...a311c95972). The script holds two
MATLAB matrices, ``exp_LTP_raw`` and ``exp_LTD_raw``, each of rows (pulse number, conductance in
siemens): the Ag:a-Si memristor of S. H. Jo et al., Nano Lett. 10:1297, 2010, as NeuroSim
pre-processed it for its fit (its manual, section 5.2).

Two things NeuroSim did to the data are undone or kept as they are:

- NeuroSim stores the depression curve "mirrored horizontally" so that it starts at pulse 0 and
  rises like the potentiation curve (its manual). The depression pulse number here is therefore
  ``x_max - x`` (x_max = 100.5714, the last LTD x), read in increasing order: pulse 0 is the
  state before the first depressing pulse (41.77 nS, where LTP ends).
- The pulse numbers are not integers (0, 0.857143, 1.71429, 2.85714, ...): the points were read
  off a figure. They are written as they are (4 decimals), so a reading is not exactly one pulse
  after the previous one (mean spacing 1.08 pulses for LTP, 1.31 for LTD, largest gap 3.1).

Conductance is written in nS. One device, one cycle.

    python convert.py nonlinear_fit.m > data.csv
"""

from __future__ import annotations

import re
import sys

import numpy as np

SOURCE = ("Ag:a-Si memristor, S. H. Jo et al., Nano Lett. 10(4):1297-1301, 2010, doi:10.1021/nl904092h, "
          "as digitised in NeuroSim's nonlinear_fit.m (github.com/neurosim/MLP_NeuroSim_V3.0@58a5f0ca, "
          "CC BY-NC 4.0)")


def matrix(text: str, name: str) -> np.ndarray:
    found = re.search(name + r"\s*=\s*\[(.*?)\];", text, re.S)
    if found is None:
        raise SystemExit(f"no matrix {name} in the file")
    rows = [line.split() for line in found[1].strip().splitlines() if line.strip()]
    data = np.array(rows, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 2:
        raise SystemExit(f"{name}: expected rows of (pulse, conductance)")
    if np.any(np.diff(data[:, 0]) <= 0):
        raise SystemExit(f"{name}: pulse numbers do not increase")
    return data


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    text = open(argv[0], encoding="utf-8").read()
    ltp, ltd = matrix(text, "exp_LTP_raw"), matrix(text, "exp_LTD_raw")
    x_max = ltd[-1, 0]
    down = np.column_stack([x_max - ltd[::-1, 0], ltd[::-1, 1]])
    out = sys.stdout
    out.write("# units: nS\n")
    out.write(f"# source: {SOURCE}\n")
    out.write("# pulse numbers are the digitised ones (not integers); depression un-mirrored as pulse = "
              f"{x_max:.4f} - x of NeuroSim's exp_LTD_raw\n")
    out.write("device,cycle,direction,pulse,conductance\n")
    for direction, data in (("up", ltp), ("down", down)):
        for pulse, g in data:
            out.write(f"d0,0,{direction},{round(pulse, 4):g},{g * 1e9:.6g}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
