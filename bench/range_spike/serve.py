"""Spike server: static files with HTTP Range support (the dev content origin has none; nginx does).

Serves ``/pyodide/`` from the Pyodide runtime, ``/db/<name>`` from ``--db-dir`` and this folder at
``/``. Each ranged GET is answered ``206 Partial Content`` for one ``bytes=a-b`` range.

    .venv/bin/python bench/range_spike/serve.py --port 8765 --db-dir /tmp/bigdb
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository, for builder.pyodide

from builder.pyodide import PYODIDE_VERSION

RUNTIME = HERE.parent.parent / "var" / "runtime" / f"pyodide-{PYODIDE_VERSION}"


class RangeHandler(SimpleHTTPRequestHandler):
    db_dir = Path("/tmp")
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path.startswith("/pyodide/"):
            return str(RUNTIME / path.removeprefix("/pyodide/"))
        if path.startswith("/runtime-js/"):
            return str(HERE.parent.parent / "builder" / "runtime" / "reader" / "js" / path.removeprefix("/runtime-js/"))
        if path.startswith("/db/"):
            return str(self.db_dir / Path(path).name)
        return str(HERE / path.lstrip("/"))

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not match or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start, end = int(match[1]), min(int(match[2] or size - 1), size - 1)
        fh = open(path, "rb")  # noqa: SIM115  (copyfile reads it, http.server closes it)
        fh.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.range_left = end - start + 1
        return fh

    def copyfile(self, source, outputfile) -> None:
        left = getattr(self, "range_left", None)
        if left is None:
            return super().copyfile(source, outputfile)
        while left > 0:
            chunk = source.read(min(left, 1 << 16))
            if not chunk:
                break
            outputfile.write(chunk)
            left -= len(chunk)
        return None

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db-dir", type=Path, default=Path("/tmp/bigdb"))
    args = parser.parse_args()
    RangeHandler.db_dir = args.db_dir
    ThreadingHTTPServer(("127.0.0.1", args.port), functools.partial(RangeHandler)).serve_forever()


if __name__ == "__main__":
    main()
