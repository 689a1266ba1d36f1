"""The browser runtime's pure logic (builder/runtime/reader/js/), unit-tested with Node's own runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NODE_TESTS = Path(__file__).resolve().parent.parent / "runtime"


def test_the_runtime_modules_pass_their_node_unit_tests() -> None:
    node = shutil.which("node")
    assert node, "Node.js is not on PATH: run `make runtime` (deploy/install-node.sh)"
    tests = sorted(str(path) for path in NODE_TESTS.glob("*.test.mjs"))
    assert tests, f"no *.test.mjs files in {NODE_TESTS}"
    proc = subprocess.run([node, "--test", *tests], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"node --test failed:\n{proc.stdout}\n{proc.stderr}"
