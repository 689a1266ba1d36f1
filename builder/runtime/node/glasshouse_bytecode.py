"""Compile Python sources to bytecode inside Pyodide, for the build. Runs in Pyodide only.

The bytecode must come from the Python that will run it (the magic number and the
bytecode format change with every Python minor version), so the build runs this
module in the same Pyodide as the reader's browser: ``compat_check.mjs`` for
site-packages, ``compile_stdlib.mjs`` for the standard library.

Every ``.pyc`` is unchecked-hash (PEP 552): valid whatever the source files'
timestamps in the reader's browser, and the same source always gives the same
bytes. Archives are zips with fixed timestamps, entries in a fixed order, so the
same input always gives the same archive (its sha256 can name it). Their entries are
stored, not deflated: the content origin's Brotli and gzip copies of the whole zip
(``builder.brotli_copies``) then compress across entries, where deflate compressed each
alone (the compiled standard library: 2.29 MB with Brotli 11 against 3.44 MB deflated).
"""

from __future__ import annotations

import importlib
import importlib.util
import site
import sys
import zipfile

# CPython's own writer of hash-based .pyc files (private, but stable since 3.7): the bytecode must be
# byte for byte what CPython would write, so the runtime validates it as its own.
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]

#: Zip timestamps of every entry (zip's epoch): the archive's bytes do not depend on when it was made.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)

#: Standard-library modules that Datasette 0.65 and 1.0 and their dependencies import while
#: starting and rendering their pages in Pyodide (measured: sys.modules after a Datasette boot
#: that rendered /, a query and /-/versions.json). ``stdlib_zip`` imports these, and
#: compiles every standard-library module that is then in ``sys.modules`` (Pyodide's own
#: start-up imports too); the rest keep their sources and compile on first import, as before.
STDLIB_HOT_MODULES = (
    "asyncio", "base64", "bisect", "bz2", "calendar", "code", "codeop", "collections", "concurrent.futures",
    "configparser", "contextlib", "contextvars", "copy", "csv", "dataclasses", "datetime", "decimal", "dis",
    "email.message", "email.parser", "email.utils", "enum", "fnmatch", "fractions", "functools", "gettext",
    "glob", "hashlib", "heapq", "hmac", "http.client", "http.cookies", "importlib.metadata", "inspect",
    "ipaddress", "json", "linecache", "locale", "logging", "lzma", "mimetypes", "numbers", "pathlib",
    "pickle", "platform", "pprint", "queue", "random", "re", "secrets", "shlex", "shutil", "socket",
    "sqlite3", "ssl", "string", "struct", "tempfile", "textwrap", "threading", "tokenize", "traceback",
    "typing", "urllib.parse", "urllib.request", "uuid", "warnings", "weakref", "zipfile",
)  # fmt: skip


def pyc(source: bytes, filename: str) -> bytes:
    """The unchecked-hash ``.pyc`` bytes of Python ``source``, its code objects naming ``filename``.

    Compiles as the import system does (``exec`` mode, no inherited future flags, the
    interpreter's optimisation level). Raises ``SyntaxError`` if ``source`` does not compile.
    """
    code = compile(source, filename, "exec", dont_inherit=True)
    return _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)


def _add(archive: zipfile.ZipFile, name: str, data: bytes, external_attr: int = 0o644 << 16) -> None:
    entry = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    entry.compress_type = zipfile.ZIP_STORED
    entry.external_attr = external_attr
    archive.writestr(entry, data)


def _loaded_files() -> list[str]:
    # vars(), not getattr(): a module-level __getattr__ (lazy imports) must not run here.
    files = [vars(m).get("__file__") if hasattr(m, "__dict__") else None for m in list(sys.modules.values())]
    return [f for f in files if isinstance(f, str)]


def site_packages_zip(out: str) -> int:
    """Write to ``out`` a zip of the bytecode of every site-packages module imported so far.

    Entries are ``__pycache__/<module>.cpython-3XY.pyc`` paths relative to site-packages
    (``importlib.util.cache_from_source``), so unpacking the zip into site-packages
    makes imports skip compiling. Returns the number of modules. Raises ``SyntaxError``
    for a module that does not compile (it was imported, so it did).
    """
    root = site.getsitepackages()[0] + "/"
    sources = sorted({f for f in _loaded_files() if f.startswith(root) and f.endswith(".py")})
    with zipfile.ZipFile(out, "w") as archive:
        for source in sources:
            with open(source, "rb") as fh:
                data = fh.read()
            _add(archive, importlib.util.cache_from_source(source)[len(root) :], pyc(data, source))
    return len(sources)


def stdlib_zip(out: str, hot_modules: tuple[str, ...] = STDLIB_HOT_MODULES) -> dict:
    """Write to ``out`` a copy of Pyodide's standard-library zip whose hot modules are compiled.

    The source zip is the one on ``sys.path`` (``/lib/python3XY.zip``, written by
    ``loadPyodide`` from ``python_stdlib.zip``). Every module of it in ``sys.modules``
    after importing ``hot_modules`` (those that import at all) is stored as ``<module>.pyc``
    in place of ``<module>.py`` (zipimport's layout: it prefers the ``.pyc``, with no
    ``__pycache__``); its code objects keep the source path, so tracebacks name the same
    files, without their source lines. Every other entry is copied unchanged. The result
    is passed to ``loadPyodide`` as ``stdLibURL``. Returns ``{"compiled": n, "copied": n}``.
    """
    source_zip = next(p for p in sys.path if p.endswith(".zip"))
    for name in hot_modules:
        try:
            importlib.import_module(name)
        except ImportError:  # not in this Pyodide: nothing to compile
            pass
    prefix = source_zip + "/"
    hot = {f[len(prefix) :] for f in _loaded_files() if f.startswith(prefix) and f.endswith(".py")}
    counts = {"compiled": 0, "copied": 0}
    with zipfile.ZipFile(source_zip) as original, zipfile.ZipFile(out, "w") as archive:
        for info in original.infolist():
            data = original.read(info)
            if info.filename in hot:
                _add(archive, info.filename[:-3] + ".pyc", pyc(data, prefix + info.filename), info.external_attr)
                counts["compiled"] += 1
            else:
                _add(archive, info.filename, data, info.external_attr)
                counts["copied"] += 1
    return counts
