"""Benchmark: gzip and Brotli copies of bundle files, size against the time a build spends making them.

For each file given (default: this checkout's ``pyodide.asm.wasm``, the compiled standard library
from the wheel cache, and the Chinook database), compresses it whole with gzip at levels 6 and 9
(``builder.gzip_copies.gzip_copy``'s settings: mtime 0) and with Brotli (the ``brotli`` package)
at each ``--qualities`` value, with Brotli's default window (``lgwin`` 22) and the largest (24),
and prints one line per setting: bytes, the fraction of the file, and the seconds taken, both
wall clock and the thread's CPU time (the CPU figure is the one to read on a busy machine). It
also checks that each copy decompresses to the file. Prints figures; asserts nothing.

    .venv/bin/python bench/make_database.py /tmp/db50.db --rows 460000   # about 50 MB
    .venv/bin/python bench/compression.py [FILE ...] [--qualities 4,5,6,9,11] [--max-q11-mb 20]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
import zlib
from pathlib import Path

import brotli

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builder.pyodide import PYODIDE_VERSION

RUNTIME = REPO / "var" / "runtime" / f"pyodide-{PYODIDE_VERSION}"
CHINOOK = REPO.parent / "shared" / "data" / "chinook.sqlite"


def default_files() -> list[Path]:
    """The wasm, the compiled standard library (newest in the wheel cache, else npm's) and Chinook."""
    compiled = sorted((REPO / "var" / "cache" / "wheels" / "stdlib").glob(f"pyodide-{PYODIDE_VERSION}-*/python_stdlib.zip"))
    stdlib = compiled[-1] if compiled else RUNTIME / "python_stdlib.zip"
    return [RUNTIME / "pyodide.asm.wasm", stdlib, CHINOOK]


def timed(make: object, data: bytes) -> tuple[bytes, float, float]:
    """``(copy, wall seconds, CPU seconds of this thread)`` of ``make(data)``."""
    wall, cpu = time.monotonic(), time.thread_time()
    out = make(data)  # type: ignore[operator]
    return out, time.monotonic() - wall, time.thread_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--qualities", default="4,5,6,9,11", help="Brotli qualities, comma-separated")
    parser.add_argument("--max-q11-mb", type=float, default=20.0,
                        help="skip Brotli 10 and 11 for files larger than this (MB): minutes each")  # fmt: skip
    args = parser.parse_args()
    qualities = [int(q) for q in args.qualities.split(",")]
    print(f"{'file':<28} {'setting':<22} {'bytes':>12} {'of file':>8} {'wall s':>8} {'CPU s':>8}")
    for path in args.files or default_files():
        data = path.read_bytes()
        name = f"{path.name} ({len(data) / 1e6:.1f} MB)"
        settings: list[tuple[str, object, object]] = [
            (f"gzip -{level}", lambda d, level=level: gzip.compress(d, compresslevel=level, mtime=0), gzip.decompress)
            for level in (6, 9)
        ]
        for quality in qualities:
            if quality >= 10 and len(data) > args.max_q11_mb * 1e6:
                continue
            for lgwin in (22, 24):
                settings.append((f"brotli q{quality} lgwin {lgwin}",
                                 lambda d, q=quality, w=lgwin: brotli.compress(d, quality=q, lgwin=w), brotli.decompress))  # fmt: skip
        for label, make, unmake in settings:
            copy, wall, cpu = timed(make, data)
            intact = "" if unmake(copy) == data else "  DOES NOT DECOMPRESS TO THE FILE"  # type: ignore[operator]
            print(f"{name:<28} {label:<22} {len(copy):>12,} {len(copy) / len(data):>8.3f} {wall:>8.2f} {cpu:>8.2f}{intact}",
                  flush=True)  # fmt: skip
        print(f"{'':<28} (zlib {zlib.ZLIB_VERSION}, brotli {brotli.__version__})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
