"""reference/devices.md: the device catalog, from neurosim/presets/devices/*.yaml.

For every preset: its description, every parameter it sets (value, the meaning from DeviceConfig's
docstrings, the note written beside it in the YAML), the derived step, its sources, and its
pulse-response plot drawn by ``neurosim.hardware.devices.plot_pulse_response`` (the plot of
``neurosim devices show NAME``). A preset that does not load fails the build.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

from common import ROOT, GenError, attribute_docs, cell, default_of, literal, prose, read_yaml, table

DEVICES = ROOT / "neurosim" / "presets" / "devices"


def yaml_notes(text: str) -> dict[str, str]:
    """The comment written after each top-level key of a preset (and its continuation lines)."""
    notes: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):[^#]*?(?:#\s*(.*))?$", line)
        if m:
            key = m.group(1)
            if m.group(2):
                notes[key] = m.group(2).strip()
            continue
        m = re.match(r"^\s+#\s*(.*)$", line)
        if m and key in notes:
            notes[key] += " " + m.group(1).strip()
        elif line and not line[0].isspace():
            key = None
    return notes


def presets() -> list[str]:
    names = sorted(p.stem for p in DEVICES.glob("*.yaml"))
    if not names:
        raise GenError(f"no device presets in {DEVICES}")
    return names


def pulse_png(config) -> bytes:
    from neurosim.hardware.devices import plot_pulse_response

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{config.name}_pulses.png"
        plot_pulse_response(config, path)
        return path.read_bytes()


def render() -> dict[str, str | bytes]:
    from neurosim.hardware.devices import DeviceConfig, device_config

    docs: dict[str, str] = {}
    for cls in reversed(DeviceConfig.__mro__):  # the common fields and each response law's own
        if dataclasses.is_dataclass(cls):
            docs.update(attribute_docs(cls))
    fields = {f.name: f for f in dataclasses.fields(DeviceConfig)}
    out: dict[str, str | bytes] = {}
    summary, sections = [], []
    for name in presets():
        path = DEVICES / f"{name}.yaml"
        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise GenError(f"{path}: a preset is a mapping of DeviceConfig fields")
        unknown = set(raw) - set(fields)
        if unknown:
            raise GenError(f"{path}: unknown keys {sorted(unknown)}")
        config = device_config(name)  # validates, as a run would
        notes = yaml_notes(path.read_text())
        energy = f"{config.energy_per_pulse:.3g} J" if config.energy_per_pulse else "n/a"
        kind = "ideal" if config.ideal else f"{config.response}, {config.mapping}"
        summary.append([f"[`{name}`](#{name})", config.description, kind,
                        "-" if config.ideal else f"{config.step:.4g}", energy])
        rows = []
        for key in raw:
            if key in ("description", "source"):
                continue
            if not docs.get(key):
                raise GenError(f"{path}: parameter {key!r} has no docstring in DeviceConfig")
            rows.append([f"`{key}`", literal(getattr(config, key)), docs[key], notes.get(key, "")])
        if not config.ideal:
            rows.append(["step (derived)", f"`{config.step:.6g}`",
                         "dw_min, or (w_max - w_min) / states when `states` is set (weight units)", ""])
        part = [f"## `{name}` {{#{name}}}\n\n{prose(config.description)}\n\n"]
        header_note = " ".join(l.lstrip("#").strip() for l in path.read_text().splitlines()[:5]
                               if l.startswith("#")) if path.read_text().startswith("#") else ""
        if header_note:
            part.append(f"{prose(header_note)}\n\n")
        if rows:
            part.append(table(["parameter", "value", "meaning", "note in the preset"], rows))
        part.append(f"\n**Sources.** {prose(' '.join(config.source.split()))}\n\n")
        if not config.ideal:
            out[f"reference/devices/{name}_pulses.png"] = pulse_png(config)
            part.append(f"![{name} pulse response](devices/{name}_pulses.png)\n\n"
                        f"*Pulse response of 5 devices (`neurosim devices show {name}`): from w_min, as many "
                        "up pulses as the range holds, then as many down pulses.*\n\n")
        sections.append("".join(part))
    params = [[f"`{n}`", literal(default_of(f)), docs.get(n, "")] for n, f in fields.items()]
    for row in params:
        if not row[2]:
            raise GenError(f"DeviceConfig.{row[0]} has no docstring")
    page = [
        "# Device catalog\n\n",
        "Generated at build time from `neurosim/presets/devices/*.yaml` (every preset, every parameter it sets, its sources) "
        "and `neurosim/hardware/` (the meaning of each parameter: `records.py` and each law's module in `responses/`; the pulse-response plots). "
        "On the command line: `neurosim devices` lists the presets, `neurosim devices show NAME` prints one "
        "and draws its plot. A config selects one with `synapses.device: NAME` and overrides its parameters "
        "with `synapses.params` ([config keys](config.md#synapses)).\n\n",
        "Weights are in weight units: every preset maps its conductance range onto [w_min, w_max].\n\n",
        table(["preset", "what", "response, mapping", "step (weight units)", "energy per pulse"], summary),
        "\n",
        *sections,
        "## Parameters {#parameters}\n\nEvery parameter a preset or `synapses.params` can set, with its default "
        "(from `DeviceConfig`):\n\n",
        table(["parameter", "default", "meaning"], params),
    ]
    out["reference/devices.md"] = "".join(page)
    return out
