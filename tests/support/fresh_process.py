"""Run Python in a fresh interpreter with only the environment a test gives, as a process starts.

Settings are read once per process at import, so tests of start-up (settings, logging, error
reporting, health of a process whose servers are missing) run a new interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT


def run_python(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` in the repository with only ``env``, ``PATH``, ``DJANGO_SETTINGS_MODULE``
    and a data folder in ``tmp_path/data``; return the finished process (text output, 60 s at most)."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "gallery.project.settings",
        "GLASSHOUSE_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
    )
