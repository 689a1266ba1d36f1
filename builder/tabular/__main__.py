"""``python -m builder.tabular``: the conversion's child process (``builder.tabular.child``)."""

from __future__ import annotations

import sys

from builder.tabular.child import main

sys.exit(main())
