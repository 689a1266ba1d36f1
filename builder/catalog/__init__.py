"""The plugin catalog and its locks.

``plugins.toml`` lists the Datasette plugins a publisher may choose; each
``lock-datasette-<version>.json`` pins Datasette, every catalog plugin and their
whole dependency closure (file names and sha256) for Pyodide. Both files live in
this package and are read at import time of the functions below, never fetched.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_DIR = Path(__file__).parent

#: Datasette versions a publisher may choose; the first is the default.
DATASETTE_VERSIONS: tuple[str, ...] = ("0.65.5",)
DEFAULT_DATASETTE_VERSION = DATASETTE_VERSIONS[0]


class UnknownPlugin(ValueError):
    """A plugin name that is not in the catalog. ``args[0]`` is the user-facing message."""


@dataclass(frozen=True)
class Plugin:
    """One catalog entry: ``name`` is the PyPI project name, ``docs`` a URL."""

    name: str
    description: str
    docs: str
    configuration: str
    verified_with: tuple[str, ...]


@cache
def load_catalog() -> dict[str, Plugin]:
    """Return the catalog as ``{name: Plugin}``, in the file's order."""
    with (CATALOG_DIR / "plugins.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    return {
        name: Plugin(
            name=name,
            description=entry["description"],
            docs=entry["docs"],
            configuration=entry.get("configuration", ""),
            verified_with=tuple(entry.get("verified_with", ())),
        )
        for name, entry in raw.items()
    }


def check_plugins(names: list[str]) -> list[str]:
    """Return ``names`` de-duplicated and sorted; raise ``UnknownPlugin`` for any name not in the catalog."""
    catalog = load_catalog()
    unknown = sorted({n for n in names if n not in catalog})
    if unknown:
        raise UnknownPlugin(
            f"Unknown plugin {', '.join(unknown)}: choose from the catalog ({', '.join(catalog)})."
        )
    return sorted(set(names))


def lock_path(datasette_version: str) -> Path:
    """Return the path of the lock for ``datasette_version`` (it may not exist yet)."""
    return CATALOG_DIR / f"lock-datasette-{datasette_version}.json"


@cache
def load_lock(datasette_version: str) -> dict:
    """Return the parsed lock for ``datasette_version``.

    Shape: ``{"datasette_version": str, "python": "3.14", "roots": {root:
    [names of its closure]}, "packages": {name: {"version", "filename",
    "sha256", "source": "wheel" | "pure-sdist", "sdist_filename"?,
    "sdist_sha256"?}}}``; roots are ``datasette`` and each catalog plugin. Raises
    ``FileNotFoundError`` if no lock was generated for that version.
    """
    if datasette_version not in DATASETTE_VERSIONS:
        raise ValueError(f"Datasette {datasette_version} is not offered; choose one of {DATASETTE_VERSIONS}")
    return json.loads(lock_path(datasette_version).read_text())
