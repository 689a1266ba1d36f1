"""Waiting for a server process of a test to answer over HTTP."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> None:
    """Return once ``url`` answers (any status); fail the test with ``log`` if ``process`` exits or ``timeout`` s pass (then kill it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode} before answering:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, if only with an error status
        except OSError:
            time.sleep(0.2)
    process.kill()
    pytest.fail(f"{what} did not answer at {url} within {timeout:.0f} s:\n{log.read_text()}")
