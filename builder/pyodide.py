"""The Pyodide release every bundle ships, written once: its version and its npm tarball's integrity.

Read by the settings (``PYODIDE_VERSION``, the default ``PYODIDE_RUNTIME_DIR``), by
``builder.bundle``, and as text by ``deploy/fetch-pyodide.sh`` (run by ``make runtime`` and
``deploy/Dockerfile``), which takes each value from its ``NAME = "value"`` line below: keep
both on one line each, in that form. ``tests/builder/test_pyodide_pin.py`` checks that no other
tracked file spells the version.

To move to another release: set both values (``npm view pyodide@<version> dist.integrity``
prints the integrity), update ``builder.lock.PYODIDE_MARKER_ENVIRONMENT`` to its Python and
Emscripten versions, then run ``make runtime`` and ``make lock``.
"""

from __future__ import annotations

#: Pyodide's version, as published on the npm registry (``pyodide@<version>``).
PYODIDE_VERSION = "314.0.7"
#: npm's integrity of that version's tarball: ``sha512-`` and the base64 of its SHA-512 digest.
PYODIDE_INTEGRITY = "sha512-0YvXxEhfEdpLfb/XkM2BFAeMROq0iMUX2bzzH9pOttyMcWkwq+HbE5uyuGD82LN7y2q+SNvi/6V5JEsOlD2R1A=="
