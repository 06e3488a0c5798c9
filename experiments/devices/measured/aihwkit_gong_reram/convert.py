"""Convert aihwkit's gong_et_al.csv (HfO2 ReRAM pulse response, normalised) into neurosim's long form.

Source (MIT licence, IBM): github.com/IBM/aihwkit, ``examples/csv/gong_et_al.csv``, added in
commit fb564fe13530d8000d31cec5626dcf71a2cc8c5c (2022-05-11, "SelfDefine device based on user
input (#356)"), unchanged at 4545f11b5214c5e3c6b9d293053bbf8baf74e110; sha256
8f009fcbe88d818ae4defff5fb98483c203fcded7958678d42890f27e3e91881. aihwkit's example
``examples/21_fit_device_data.py`` reads it as "two columns, one for the up and the second for the
down pulses. The conductance values should be consecutive" and calls it "real device data".

The values are a normalised conductance (about -1.36 to 1.41, on a grid of 1/90), not siemens:
the file states no unit and none can be recovered. So the output states ``# units: au``
(normalised): neurosim fits it in those units and claims no siemens, on/off ratio or energy
(the fitted weight-unit law does not depend on the unit). See SOURCE.md.

1000 up readings (column 1) and 1000 down readings (column 2), one device, one cycle each; no
pre-pulse reading is known, so each sweep starts at pulse 1.

    python convert.py gong_et_al.csv > data.csv
"""

from __future__ import annotations

import csv
import sys

SOURCE = ("HfO2 ReRAM pulse response (N. Gong et al., Nat. Commun. 9:2102, 2018) as shipped normalised in "
          "github.com/IBM/aihwkit@fb564fe1 examples/csv/gong_et_al.csv, MIT licence")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    up, down = [], []
    with open(argv[0], newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != 2:
                raise SystemExit(f"{argv[0]}:{n}: expected two columns (up, down)")
            up.append(row[0].strip())
            down.append(row[1].strip())
    out = sys.stdout
    out.write("# conductance is NORMALISED (no physical unit; about -1.4 to 1.4)\n")
    out.write("# units: au\n")
    out.write(f"# source: {SOURCE}\n")
    out.write("device,cycle,direction,pulse,conductance\n")
    for direction, values in (("up", up), ("down", down)):
        for k, value in enumerate(values, start=1):
            out.write(f"d0,0,{direction},{k},{float(value):.6g}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
