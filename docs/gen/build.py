"""Entry point of the mkdocs-gen-files plugin: runs every generator of docs/gen and writes its pages.

Any exception fails `mkdocs build`: malformed inputs stop the build, nothing is skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cli_ref  # noqa: E402
import common  # noqa: E402
import config_ref  # noqa: E402
import devices_ref  # noqa: E402
import layers_ref  # noqa: E402
import results  # noqa: E402

for module in (config_ref, devices_ref, cli_ref, layers_ref, results):
    common.write_all(module.render())
