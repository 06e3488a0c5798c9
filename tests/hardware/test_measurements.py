"""Reading measured pulse responses: both file forms, units, and errors that name file and line."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.errors import MeasurementError
from neurosim.hardware.measurements import read_measurements

LONG = """# units: uS
device,cycle,direction,pulse,conductance
a,1,up,0,10
a,1,up,1,11
a,1,up,2,12
a,1,down,0,12
a,1,down,1,11.5
a,1,down,2,10.2
b,1,LTP,0,9
b,1,LTP,1,10
b,1,LTD,0,10
b,1,LTD,1,9.1
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_long_form_gives_one_sweep_per_device_cycle_and_direction(tmp_path):
    m = read_measurements([write(tmp_path, "m.csv", LONG)])
    assert m.devices == ["a", "b"] and m.units == "uS"
    assert [(s.device, s.direction, len(s.pulses)) for s in m.sweeps] == [
        ("a", "up", 3), ("a", "down", 3), ("b", "up", 2), ("b", "down", 2)]
    np.testing.assert_allclose(m.sweeps[0].conductance, [10e-6, 11e-6, 12e-6])
    assert len(m.checksums[str(tmp_path / "m.csv")]) == 64
    assert "2 device(s), 2 cycle(s)" in m.summary()


def test_tsv_units_in_the_header_and_rows_out_of_order(tmp_path):
    text = LONG.replace("# units: uS\n", "").replace(",", "\t").replace("conductance", "G (nS)")
    lines = text.splitlines()
    lines[1], lines[3] = lines[3], lines[1]  # pulse order comes from the pulse column
    m = read_measurements([write(tmp_path, "m.tsv", "\n".join(lines))])
    assert m.units == "nS"
    np.testing.assert_allclose(m.sweeps[0].conductance, [10e-9, 11e-9, 12e-9])


def test_two_column_files_one_per_direction_split_cycles_where_the_pulse_restarts(tmp_path):
    up = "pulse conductance_uS\n" + "".join(f"{p} {10 + p}\n" for c in range(2) for p in range(6))
    down = "".join(f"{p}\t{15 - p}\n" for c in range(2) for p in range(6))  # no header: units passed
    m = read_measurements([write(tmp_path, "ltp.txt", up), write(tmp_path, "ltd.txt", down)], units="uS")
    assert [(s.direction, s.cycle, len(s.pulses)) for s in m.sweeps] == [
        ("up", "0", 6), ("up", "1", 6), ("down", "0", 6), ("down", "1", 6)]
    # the direction can be given instead of read off the trend
    m = read_measurements([write(tmp_path, "a.txt", up), write(tmp_path, "b.txt", down)], units="uS",
                          directions=["up", "down"])
    assert {s.direction for s in m.sweeps} == {"up", "down"}


@pytest.mark.parametrize("text, units, line, message", [
    ("device,cycle,direction,pulse\na,1,up,0\n", None, 1, "no conductance column"),
    (LONG.replace("a,1,up,1,11", "a,1,up,1,eleven"), None, 4, "'eleven' is not a number"),
    (LONG.replace("a,1,up,1,11", "a,1,up,1,nan"), None, 4, "not a finite number"),
    (LONG.replace("a,1,up,1,11", "a,1,up,1"), None, 4, "4 column(s), expected 5"),
    (LONG.replace("a,1,up,1,11", "a,1,sideways,1,11"), None, 4, "direction 'sideways'"),
    (LONG.replace("# units: uS\n", ""), None, None, "unit is not stated"),
    (LONG.replace("# units: uS", "# units: ohm"), None, 1, "unknown conductance unit 'ohm'"),
    (LONG, "nS", None, "states conductance in uS"),
    ("# units: uS\n", None, None, "no readings"),
    ("".join(line + "\n" for line in LONG.splitlines() if "down" not in line and "LTD" not in line), None, None,
     "0 reading(s) of direction 'down'"),
    (LONG.replace("a,1,up,2,12", "a,1,up,1,12"), None, 5, "appears twice"),
    ("# units: uS\ndevice,cycle,direction,pulse,conductance\n" + "".join(
        f"a,1,{d},{p},5\n" for d in ("up", "down") for p in range(6)), None, 3, "never moves"),
    (LONG.replace(",up,", ",x,").replace(",down,", ",up,").replace(",x,", ",down,")
     .replace("LTP", "Q").replace("LTD", "LTP").replace("Q", "LTD"), None, 6, "directions swapped"),
])
def test_malformed_files_are_refused_naming_file_and_line(tmp_path, text, units, line, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(MeasurementError) as info:
        read_measurements([path], units=units)
    assert message in str(info.value)
    assert info.value.path == str(path) and info.value.line == line
    if line is not None:
        assert f"bad.csv, line {line}:" in str(info.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(MeasurementError, match="no such file"):
        read_measurements([tmp_path / "absent.csv"])
    binary = tmp_path / "scope.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(MeasurementError, match="not a text file"):
        read_measurements([binary])
    with pytest.raises(MeasurementError, match="give at least one"):
        read_measurements([])


def test_readings_at_fractional_pulses_are_interpolated_onto_every_pulse(tmp_path):
    text = "pulse,conductance_uS\n0,10\n1.5,11.5\n4,14\n" + "0,14\n2,12\n4,10\n"
    m = read_measurements([write(tmp_path, "digitised.csv", text)])
    up = m.of("up")[0]
    assert up.interpolated and list(up.pulses) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(up.conductance, [10e-6, 11e-6, 12e-6, 13e-6, 14e-6])
    assert "interpolated onto every pulse" in m.summary()


def test_normalised_units_are_stated_as_au_and_never_mixed_with_siemens(tmp_path):
    norm = write(tmp_path, "n.csv", LONG.replace("# units: uS", "# units: normalised"))
    m = read_measurements([norm])
    assert m.units == "au"
    np.testing.assert_allclose(m.sweeps[0].conductance, [10, 11, 12])
    plain = write(tmp_path, "p.csv", LONG.replace("# units: uS\n", ""))
    assert read_measurements([plain], units="a.u.").units == "au"
    with pytest.raises(MeasurementError, match="cannot be mixed"):
        read_measurements([norm, write(tmp_path, "s.csv", LONG)])
    with pytest.raises(MeasurementError, match="au: normalised"):
        read_measurements([plain], units="volts")
