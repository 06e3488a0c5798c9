"""Measured pulse responses: the files a hardware designer brings, read into sweeps.

A measurement is a set of sweeps: one device, one cycle, one direction (up: potentiation, down:
depression), the conductance before the first pulse and after each pulse. Two file forms are
read, CSV or TSV (the delimiter is detected):

- the long form, one row per reading, with columns for device, cycle, direction, pulse number
  and conductance (header names are matched loosely: ``G``, ``conductance_uS``,
  ``conductance (uS)``, ``LTP``/``LTD`` or ``set``/``reset`` as directions, ...). Several cycles and
  several devices are the normal case;
- the two-column form (pulse number or time, conductance) with one file per direction, as
  NeuroSim's nonlinearity-fitting tools take; a pulse number that stops increasing starts a new
  cycle, and the direction is that of the file's trend unless given.

The conductance unit is stated in the header (``conductance_uS``, ``G (nS)``), in a comment line
``# units: uS``, or by the caller; the fit maps conductance onto weights, so the unit only
matters for the report, but an unstated one is refused rather than guessed. Normalised data
(no physical scale) says so with the unit ``au``. Errors name the file and the line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from neurosim.errors import MeasurementError

UNITS = {"S": 1.0, "mS": 1e-3, "uS": 1e-6, "nS": 1e-9, "pS": 1e-12, "au": 1.0}
"""Conductance units and their value in siemens. ``au`` is for normalised or arbitrary-unit data
(as many papers and tools publish it): held as if in siemens, reported as ``au``, never turned
into a physical conductance (no on/off ratio, no siemens in the fit record)."""
PHYSICAL_UNITS = tuple(u for u in UNITS if u != "au")
UNIT_ALIASES = {"a.u.": "au", "a.u": "au", "arb": "au", "arb.": "au", "normalised": "au", "normalized": "au",
                "us": "uS", "ns": "nS", "ms": "mS", "ps": "pS", "s": "S"}
MIN_POINTS = 5
"""Fewest readings a direction needs (over all its sweeps) to be fitted."""
DIRECTIONS = {"up": "up", "down": "down", "ltp": "up", "ltd": "down", "potentiation": "up", "depression": "down",
              "pot": "up", "dep": "down", "set": "up", "reset": "down", "+": "up", "-": "down", "+1": "up",
              "1": "up", "-1": "down", "increase": "up", "decrease": "down", "p": "up", "d": "down"}
COLUMNS = {
    "device": ("device", "dev", "device_id", "sample", "cell"),
    "cycle": ("cycle", "cyc", "cycle_id", "sweep", "repeat", "epoch"),
    "direction": ("direction", "dir", "polarity", "type", "phase", "mode"),
    "pulse": ("pulse", "pulses", "pulse_number", "pulse_no", "pulse_num", "n", "p", "index", "step", "time", "t"),
    "conductance": ("conductance", "g", "cond", "weight"),
}
"""Accepted header names per column (case-insensitive, unit suffixes stripped)."""


@dataclass
class Sweep:
    """One device's conductance over one sweep of pulses of one direction."""

    device: str
    cycle: str
    direction: str
    pulses: np.ndarray
    conductance: np.ndarray
    """In siemens."""
    file: str
    lines: np.ndarray
    """The line of the file each reading comes from (for errors)."""
    interpolated: bool = False
    """Read at skipped or fractional pulse numbers and interpolated onto every pulse."""

    @property
    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(conductance before, conductance after) of each single pulse of the sweep."""
        return self.conductance[:-1], self.conductance[1:]


@dataclass
class Measurements:
    """Everything read from one or more files."""

    sweeps: list[Sweep]
    units: str
    """The unit the files used (values are held in siemens)."""
    files: list[str]
    checksums: dict[str, str] = field(default_factory=dict)
    """sha256 of each file, for the preset's source."""

    @property
    def devices(self) -> list[str]:
        return sorted({s.device for s in self.sweeps}, key=_natural)

    def of(self, direction: str | None = None, device: str | None = None) -> list[Sweep]:
        return [s for s in self.sweeps if (direction is None or s.direction == direction)
                and (device is None or s.device == device)]

    def summary(self) -> str:
        up, down = self.of("up"), self.of("down")
        cycles = len({(s.device, s.cycle) for s in self.sweeps})
        interpolated = sum(s.interpolated for s in self.sweeps)
        return (f"{len(self.devices)} device(s), {cycles} cycle(s): {len(up)} up sweep(s) "
                f"({sum(len(s.pulses) - 1 for s in up)} pulses), {len(down)} down sweep(s) "
                f"({sum(len(s.pulses) - 1 for s in down)} pulses)"
                + (f"; {interpolated} sweep(s) read at skipped or fractional pulses, interpolated onto every pulse"
                   if interpolated else ""))


def read_measurements(paths: Sequence[str | Path], units: str | None = None,
                      directions: Sequence[str] | None = None, device: str | None = None) -> Measurements:
    """Read measurement files (long or two-column form) into sweeps.

    ``units`` states the conductance unit where the files do not (a file's own statement wins if
    they agree; a conflict is an error). ``directions`` gives the direction of each two-column
    file (default: its trend). ``device`` labels two-column files (default ``d0``: all one device).
    """
    if not paths:
        raise MeasurementError("(no files)", "give at least one measurement file")
    if units is not None:
        units = UNIT_ALIASES.get(units.strip().lower(), units.strip())
        if units not in UNITS:
            raise MeasurementError("units", f"unknown conductance unit {units!r}; expected one of {', '.join(UNITS)}"
                                            " (au: normalised, no physical scale)")
    if directions is not None and len(directions) != len(paths):
        raise MeasurementError("directions", f"{len(directions)} direction(s) for {len(paths)} file(s)")
    sweeps: list[Sweep] = []
    seen_units: set[str] = set()
    checksums: dict[str, str] = {}
    for i, path in enumerate(paths):
        path = Path(path)
        if not path.is_file():
            raise MeasurementError(path, "no such file")
        raw = path.read_bytes()
        checksums[str(path)] = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MeasurementError(path, f"not a text file ({exc.reason} at byte {exc.start})") from None
        file_units, file_sweeps = _read_file(path, text, directions[i] if directions else None, device)
        resolved = file_units or units
        if file_units and units and file_units != units:
            raise MeasurementError(path, f"the file states conductance in {file_units}, but units={units!r} was given")
        if resolved is None:
            raise MeasurementError(path, "the conductance unit is not stated: name it in the header (e.g. "
                                         "conductance_uS), in a line '# units: uS', or pass units")
        seen_units.add(resolved)
        if "au" in seen_units and len(seen_units) > 1:
            raise MeasurementError(path, f"conductance in {resolved}, but other files are in "
                                         f"{', '.join(sorted(seen_units - {resolved}))}: normalised (au) and physical units cannot be mixed")
        scale = UNITS[resolved]
        for s in file_sweeps:
            s.conductance = s.conductance * scale
        sweeps += file_sweeps
    measurements = Measurements(sweeps, sorted(seen_units)[0] if len(seen_units) == 1 else "S",
                                [str(p) for p in paths], checksums)
    check(measurements)
    return measurements


def check(m: Measurements) -> None:
    """Refuse what cannot be fitted: a direction with too few readings, a device that never moves."""
    for direction in ("up", "down"):
        sweeps = m.of(direction)
        points = sum(len(s.pulses) for s in sweeps)
        if points < MIN_POINTS:
            where = sweeps[0].file if sweeps else ", ".join(m.files)
            raise MeasurementError(where, f"{points} reading(s) of direction {direction!r}; need at least "
                                          f"{MIN_POINTS} (potentiation and depression sweeps both)")
    for s in m.sweeps:
        if np.ptp(s.conductance) == 0:
            raise MeasurementError(s.file, f"the conductance of device {s.device} never moves in cycle {s.cycle} "
                                           f"({s.direction}, {len(s.pulses)} readings)", int(s.lines[0]))
    for direction, sign in (("up", 1), ("down", -1)):
        net = sum(float(s.conductance[-1] - s.conductance[0]) for s in m.of(direction))
        if sign * net <= 0:
            s = m.of(direction)[0]
            raise MeasurementError(s.file, f"the {direction} sweeps {'lower' if sign > 0 else 'raise'} the "
                                           f"conductance on the whole: are the directions swapped?", int(s.lines[0]))


def _read_file(path: Path, text: str, direction: str | None, device: str | None
               ) -> tuple[str | None, list[Sweep]]:
    units = None
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(("#", "%", "//")):
            found = re.match(r"^[#%/\s]*units?\s*[:=]\s*(\S+)", stripped, re.IGNORECASE)
            if found:
                units = _unit(found[1], path, number)
            continue
        rows.append((number, line))
    if not rows:
        raise MeasurementError(path, "no readings (the file is empty or only comments)")
    table = list(zip((n for n, _ in rows), _split(path, [line for _, line in rows])))
    first_line, first = table[0]
    header = None if all(_is_number(c) for c in first if c) else first
    body = table[1:] if header else table
    if not body:
        raise MeasurementError(path, "a header but no readings", first_line)
    width = len(header) if header else len(first)
    for n, cells in body:
        if len(cells) != width:
            raise MeasurementError(path, f"{len(cells)} column(s), expected {width} as in the "
                                         f"{'header' if header else 'first line'}", n)
    if header:
        columns, header_units = _columns(header, path, first_line)
        if header_units:
            if units and header_units != units:
                raise MeasurementError(path, f"the header says {header_units} but a comment says {units}", first_line)
            units = header_units
    elif width == 2:
        columns = {"pulse": 0, "conductance": 1}
    else:
        raise MeasurementError(path, f"{width} columns without a header: give a header naming device, cycle, "
                                     "direction, pulse and conductance, or use two columns (pulse, conductance)",
                               first_line)
    if "conductance" not in columns:
        raise MeasurementError(path, "no conductance column in the header " + repr(header), first_line)
    long_form = "direction" in columns
    readings = []
    for n, cells in body:
        g = _number(cells[columns["conductance"]], path, n, "conductance")
        p = _number(cells[columns["pulse"]], path, n, "pulse") if "pulse" in columns else float(len(readings))
        d = None
        if long_form:
            d = DIRECTIONS.get(cells[columns["direction"]].lower())
            if d is None:
                raise MeasurementError(path, f"direction {cells[columns['direction']]!r}: expected up or down "
                                             "(or LTP/LTD, potentiation/depression, set/reset)", n)
        dev = cells[columns["device"]] if "device" in columns else (device or "d0")
        cyc = cells[columns["cycle"]] if "cycle" in columns else None
        readings.append((n, dev, cyc, d, p, g))
    return units, _sweeps(path, readings, direction)


def _sweeps(path: Path, readings: list, direction: str | None) -> list[Sweep]:
    """Group readings into sweeps: by (device, cycle, direction) where the file says them, else a
    new cycle wherever the pulse number stops increasing."""
    groups: dict[tuple, list] = {}
    auto_cycle, last = 0, {}
    for n, dev, cyc, d, p, g in readings:
        if cyc is None:
            key0 = (dev, d)
            if key0 in last and p <= last[key0]:
                auto_cycle += 1
            last[key0] = p
            cyc = str(auto_cycle)
        groups.setdefault((dev, cyc, d), []).append((n, p, g))
    sweeps = []
    for (dev, cyc, d), items in groups.items():
        items.sort(key=lambda item: item[1])
        lines = np.array([i[0] for i in items])
        pulses = np.array([i[1] for i in items], dtype=np.float64)
        g = np.array([i[2] for i in items], dtype=np.float64)
        if len(np.unique(pulses)) != len(pulses):
            dup = int(lines[np.flatnonzero(np.diff(pulses) == 0)[0] + 1])
            raise MeasurementError(path, f"pulse {pulses[np.flatnonzero(np.diff(pulses) == 0)[0]]:g} of device "
                                         f"{dev}, cycle {cyc} appears twice", dup)
        if d is None:
            if direction is not None:
                d = DIRECTIONS.get(direction.lower())
                if d is None:
                    raise MeasurementError(path, f"direction {direction!r}: expected up or down")
            else:
                trend = g[-1] - g[0]
                if trend == 0:
                    raise MeasurementError(path, f"cannot tell the direction of cycle {cyc}: its conductance ends "
                                                 "where it starts (give the direction of each file)", int(lines[0]))
                d = "up" if trend > 0 else "down"
        sweep = Sweep(dev, cyc, d, pulses, g, str(path), lines)
        if len(pulses) > 1 and not np.allclose(np.diff(pulses), 1.0):
            sweep = _on_every_pulse(sweep)
        sweeps.append(sweep)
    return sweeps


def _on_every_pulse(s: Sweep) -> Sweep:
    """A sweep read at skipped or fractional pulse numbers (digitised curves, sparse logging),
    interpolated linearly onto every whole pulse in its span: the fit reads one step per pulse.
    Interpolated readings carry no noise of their own, so a fit's c2c from them is a lower bound."""
    grid = np.arange(math.ceil(s.pulses[0] - 1e-9), math.floor(s.pulses[-1] + 1e-9) + 1, dtype=np.float64)
    if len(grid) < 2:
        return s
    lines = s.lines[np.clip(np.searchsorted(s.pulses, grid), 0, len(s.lines) - 1)]
    return Sweep(s.device, s.cycle, s.direction, grid, np.interp(grid, s.pulses, s.conductance), s.file, lines,
                 interpolated=True)


def _split(path: Path, lines: list[str]) -> list[list[str]]:
    """Cells of each line: tab-separated for .tsv, else the delimiter every line of the head has
    (comma, tab, semicolon), else runs of whitespace (NeuroSim's .txt data)."""
    head = lines[:20]
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else next(
        (d for d in (",", "\t", ";") if all(d in line for line in head)), None)
    if delimiter is None:
        return [line.split() for line in lines]
    return [[cell.strip() for cell in cells] for cells in csv.reader(io.StringIO("\n".join(lines)),
                                                                      delimiter=delimiter)]


def _columns(header: list[str], path: Path, line: int) -> tuple[dict[str, int], str | None]:
    columns: dict[str, int] = {}
    units = None
    for i, name in enumerate(header):
        base, unit = _split_unit(name)
        if unit:
            units_here = _unit(unit, path, line)
            if base in COLUMNS["conductance"]:
                units = units_here
        for key, aliases in COLUMNS.items():
            if base in aliases:
                if key in columns:
                    raise MeasurementError(path, f"two {key} columns in the header ({header[columns[key]]!r} "
                                                 f"and {name!r})", line)
                columns[key] = i
                break
    return columns, units


def _split_unit(name: str) -> tuple[str, str | None]:
    """'conductance_uS' -> ('conductance', 'uS'); 'G (nS)' -> ('g', 'nS'); 'pulse' -> ('pulse', None)."""
    name = name.strip()
    found = re.match(r"^(.*?)\s*[\(\[]\s*([^\)\]]+)\s*[\)\]]$", name)
    if found:
        return found[1].strip().lower().replace(" ", "_"), found[2].strip()
    found = re.match(r"^(.*?)[_ ]((?:[munpµ]?S))$", name)
    if found and found[1]:
        return found[1].strip().lower().replace(" ", "_"), found[2]
    return name.lower().replace(" ", "_"), None


def _unit(text: str, path: Path, line: int) -> str:
    unit = text.strip().replace("µ", "u").replace("micro", "u")
    unit = UNIT_ALIASES.get(unit.lower(), unit)
    if unit not in UNITS:
        raise MeasurementError(path, f"unknown conductance unit {text!r}; expected one of {', '.join(UNITS)}"
                                     " (au: normalised, no physical scale)", line)
    return unit


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _number(cell: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise MeasurementError(path, f"{what} {cell!r} is not a number", line) from None
    if not math.isfinite(value):
        raise MeasurementError(path, f"{what} is {cell} (not a finite number)", line)
    return value


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]
