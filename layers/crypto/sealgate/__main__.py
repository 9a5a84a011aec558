"""``python -m sealgate``: the command line (see :mod:`sealgate.cli`)."""

from __future__ import annotations

from sealgate.cli import main

raise SystemExit(main())
