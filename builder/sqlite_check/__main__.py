"""``python -m builder.sqlite_check``: the database check's child process."""

from __future__ import annotations

import sys

from builder.sqlite_check import _child_main

sys.exit(_child_main())
