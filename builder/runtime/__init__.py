"""The browser runtime's files, by audience: what ships to readers apart from the build's Node tools.

``reader/``
    Everything a reader's browser downloads from a gallery origin: the ES modules (``js/``,
    copied into every build at ``builds/<build-id>/js/``), the Python half run in the reader's
    Pyodide (``glasshouse_runtime.py``, and ``glasshouse_report.py``, the built-in Datasette
    plugin of the footer's "Report" link), the bootstrap page (``index.html``) and the
    kill-switch Service Worker (``killswitch.js``, served by ``gallery.content`` itself).
``node/``
    The build-time tools ``builder`` runs in Node, sandboxed (``builder.compat.node_sandbox``):
    the compatibility check (``compat_check.mjs``, which boots the bundle with the reader's own
    ``reader/js/core.mjs``), its preload (``compat_sandbox.mjs``), the standard library's compiler
    (``compile_stdlib.mjs``) and the Python both run in Node's Pyodide to make bytecode
    (``glasshouse_bytecode.py``; its zips ship, the module does not).

The paths below are the only place Python names these files.
"""

from __future__ import annotations

from pathlib import Path

#: The runtime's root folder: the build's Node tools may read all of it (``builder.compat``).
RUNTIME_DIR = Path(__file__).parent

#: What a reader's browser downloads.
READER_DIR = RUNTIME_DIR / "reader"
#: The browser runtime's ES modules, copied into every build (DESIGN.md, "Browser runtime").
READER_MODULES = READER_DIR / "js"
#: The Python half of the runtime, imported by the reader's Pyodide (and by the Node check).
RUNTIME_MODULE = READER_DIR / "glasshouse_runtime.py"
#: Glasshouse's built-in Datasette plugins, in every bundle: module name -> source file.
BUILTIN_PLUGINS = {"glasshouse_report": READER_DIR / "glasshouse_report.py"}
#: The bootstrap page, with ``__TITLE__``, ``__BOOTSTRAP_URL__`` and ``__WEB_APP_MANIFEST__`` (the
#: web app manifest's ``<link>`` and theme colour, or nothing) filled in per build (``builder.bundle``).
BOOTSTRAP_PAGE = READER_DIR / "index.html"
#: The kill-switch Service Worker served at ``/sw.js`` of a gallery taken down (``gallery.content.pages``).
KILLSWITCH = READER_DIR / "killswitch.js"

#: The build-time Node tools.
NODE_DIR = RUNTIME_DIR / "node"
#: The build's compatibility check (``builder.compat``).
COMPAT_SCRIPT = NODE_DIR / "compat_check.mjs"
#: Loaded with ``node --import`` before a Node tool: no network, child processes or signals.
SANDBOX_PRELOAD = NODE_DIR / "compat_sandbox.mjs"
#: Compiles Pyodide's standard library to bytecode (``builder.stdlib``).
STDLIB_SCRIPT = NODE_DIR / "compile_stdlib.mjs"
#: Compiles bytecode in Pyodide (the site-packages zip in the check, the standard library in ``builder.stdlib``).
BYTECODE_MODULE = NODE_DIR / "glasshouse_bytecode.py"
