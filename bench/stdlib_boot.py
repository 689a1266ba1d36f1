"""Benchmark: ``loadPyodide`` in Chromium from npm's source-only stdlib against the compiled one.

Serves this checkout's Pyodide runtime and its compiled standard library
(``builder.stdlib.compiled_stdlib``, made first if not cached) from a local HTTP server,
and in headless Chromium (Debian's, through Playwright) times, for each variant:

- ``loadPyodide``: from the call to Python being ready (it imports about 145 modules);
- ``imports``: then importing the standard-library modules Datasette imports
  (``STDLIB_HOT_MODULES``);

alternating the variants, each run in a fresh browser context, and prints the medians
and the sizes of both zips (as stored and gzipped). Prints figures; asserts nothing.

    .venv/bin/python bench/stdlib_boot.py [--runs 5]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builder.pyodide import PYODIDE_VERSION
from builder.runtime.node.glasshouse_bytecode import STDLIB_HOT_MODULES
from builder.stdlib import STDLIB_NAME, compiled_stdlib
from tests.support.chromium import CHROMIUM_ARGS

PAGE = """<!doctype html><meta charset="utf-8"><script type="module">
import { loadPyodide } from "/pyodide.mjs";
const variant = new URL(location.href).searchParams.get("stdlib");
const started = performance.now();
const pyodide = await loadPyodide({ indexURL: "/", stdLibURL: variant === "compiled" ? "/compiled.zip" : undefined });
const loaded = performance.now();
pyodide.runPython(`import importlib\\nfor name in ${JSON.stringify(MODULES)}:\\n    importlib.import_module(name)`);
window.result = { load_ms: loaded - started, imports_ms: performance.now() - loaded };
</script>"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm"}  # fmt: skip

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    runtime = Path(os.environ.get("PYODIDE_RUNTIME_DIR", REPO / "var" / "runtime" / f"pyodide-{PYODIDE_VERSION}"))
    cache = Path(os.environ.get("WHEEL_CACHE_DIR", REPO / "var" / "cache" / "wheels"))
    compiled = compiled_stdlib(runtime, cache, PYODIDE_VERSION, log=print)
    if compiled is None:
        raise SystemExit("the compiled standard library could not be made (see above)")
    with tempfile.TemporaryDirectory(prefix="glasshouse-stdlib-boot-") as tmp:
        root = Path(tmp)
        for name in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "pyodide-lock.json", STDLIB_NAME):
            shutil.copy(runtime / name, root / name)
        shutil.copy(compiled, root / "compiled.zip")
        (root / "index.html").write_text(PAGE.replace("MODULES", json.dumps(list(STDLIB_HOT_MODULES))))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://localhost:{server.server_address[1]}/index.html"
        results: dict[str, list[dict]] = {"source": [], "compiled": []}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            for _ in range(args.runs):
                for variant, figures in results.items():
                    context = browser.new_context()
                    page = context.new_page()
                    page.goto(f"{url}?stdlib={variant}")
                    page.wait_for_function("window.result", timeout=120_000)
                    figures.append(page.evaluate("window.result"))
                    context.close()
            browser.close()
        server.shutdown()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'stdlib':>9} {'zip bytes':>10} {'gzip bytes':>11} {'loadPyodide ms':>15} {'imports ms':>11}  (medians of {args.runs})")
    for variant, path in (("source", runtime / STDLIB_NAME), ("compiled", compiled)):
        data = path.read_bytes()
        load = statistics.median(r["load_ms"] for r in results[variant])
        imports = statistics.median(r["imports_ms"] for r in results[variant])
        print(f"{variant:>9} {len(data):>10,} {len(gzip.compress(data, 9)):>11,} {load:>15.0f} {imports:>11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
