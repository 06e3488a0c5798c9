"""reference/cli.md: the help of every `neurosim` subcommand, from the argparse parser in neurosim/cli.py."""

from __future__ import annotations

import argparse
import os

from common import GenError


def render() -> dict[str, str]:
    from neurosim.cli import _parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width: fix it for a stable page
    parser = _parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if len(actions) != 1:
        raise GenError("neurosim.cli._parser() has no single set of subcommands")
    sub = actions[0]
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    parts = ["# Command line\n\n",
             "Generated at build time from the argparse parser of `neurosim/cli.py`: the `--help` of "
             "`neurosim` and of every subcommand. The [user guide](../guide/cli.md) explains them with "
             "examples.\n\n",
             "| command | what it does |\n|---|---|\n"]
    for name in sub.choices:
        parts.append(f"| [`neurosim {name}`](#neurosim-{name}) | {helps.get(name, '').replace('|', '/')} |\n")
    parts.append("\n```text\n" + parser.format_help().rstrip() + "\n```\n")
    for name, subparser in sub.choices.items():
        parts.append(f"\n## `neurosim {name}` {{#neurosim-{name}}}\n\n```text\n{subparser.format_help().rstrip()}\n```\n")
    return {"reference/cli.md": "".join(parts)}
