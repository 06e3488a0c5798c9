"""``python -m neurosim``: the command line, as the ``neurosim`` script runs it."""

from neurosim.cli import main

raise SystemExit(main())
