"""``python -m builder.sqlite_check``: the database check's child process (``builder.sqlite_check.child``)."""

from __future__ import annotations

import sys

from builder.sqlite_check.child import main

sys.exit(main())
