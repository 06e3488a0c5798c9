"""The response laws, by name: what ``response:`` in a preset selects.

Each law is one module of this package holding a ``LAW`` (a ``ResponseLaw``: its parameters and
their checks, its torch closed form, its Brian2 code; see ``base``). A new law is a module here,
its line in ``LAWS`` and its tests (tests/hardware/test_responses.py holds every law to the same
contract); ``DeviceConfig`` picks up its parameters from ``params``.
"""

from __future__ import annotations

from neurosim.errors import ConfigError
from neurosim.hardware.responses import constant, exp_step, linear_step, measured, nonlinear, soft_bounds
from neurosim.hardware.responses.base import Brian2Function, ResponseLaw

LAWS: dict[str, ResponseLaw] = {m.LAW.name: m.LAW for m in (constant, soft_bounds, linear_step, exp_step, nonlinear,
                                                          measured)}
"""Response name -> law, in the order the docs list them."""


def names() -> tuple[str, ...]:
    return tuple(LAWS)


def law(name: str, key: str = "synapses.response") -> ResponseLaw:
    """The law called ``name``; an unknown name is a ConfigError at ``key`` listing the known laws."""
    try:
        return LAWS[name]
    except (KeyError, TypeError):
        raise ConfigError(key, name, "one of " + ", ".join(LAWS)) from None


def parameter_classes() -> list[type]:
    """The laws' parameter dataclasses, in registry order (DeviceConfig's bases)."""
    seen: list[type] = []
    for item in LAWS.values():
        if item.params is not None and item.params not in seen:
            seen.append(item.params)
    return seen


__all__ = ["Brian2Function", "LAWS", "ResponseLaw", "law", "names", "parameter_classes"]
