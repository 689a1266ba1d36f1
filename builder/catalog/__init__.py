"""The plugin catalog and its locks, and what a catalog entry may add to a gallery's policy.

``plugins.toml`` lists the Datasette plugins a publisher may choose; each
``lock-datasette-<version>.json`` pins Datasette, every catalog plugin and their
whole dependency closure (file names and sha256) for Pyodide. Both files live in
this package and are read at import time of the functions below, never fetched.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_DIR = Path(__file__).parent

#: Datasette versions a publisher may choose; the first is the default. 1.0a41 is an
#: alpha; it is offered with the plugins verified against it (``verified_with``).
DATASETTE_VERSIONS: tuple[str, ...] = ("0.65.5", "1.0a41")
DEFAULT_DATASETTE_VERSION = DATASETTE_VERSIONS[0]

class UnknownPlugin(ValueError):
    """A plugin not in the catalog, or not offered with the chosen Datasette. ``args[0]`` is the user-facing message."""


@dataclass(frozen=True)
class Plugin:
    """One catalog entry: ``name`` is the PyPI project name, ``docs`` a URL.

    ``verified_with`` lists the Datasette versions the plugin was verified with
    (resolved for Pyodide and checked in Node, ``builder.compat``); it is offered
    with exactly those. ``not_offered`` gives ``(version, reason)`` pairs for the
    offered Datasette versions it does not work with. ``requirement`` gives
    ``(version, pip requirement)`` pairs where the lock must not simply take the
    newest release (e.g. a pre-release that supports Datasette 1.0a). ``csp`` gives
    ``(directive, (source, ...))`` pairs the gallery's Content-Security-Policy adds for
    the plugin (``builder.csp.gallery_policy``), e.g. its map tiles.
    """

    name: str
    description: str
    docs: str
    configuration: str
    verified_with: tuple[str, ...]
    not_offered: tuple[tuple[str, str], ...] = ()
    requirement: tuple[tuple[str, str], ...] = ()
    csp: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def offered_with(self, datasette_version: str) -> bool:
        """Whether a publisher may choose this plugin with ``datasette_version``."""
        return datasette_version in self.verified_with

    def requirement_for(self, datasette_version: str) -> str:
        """The pip requirement the lock for ``datasette_version`` resolves (the name, unless overridden)."""
        return dict(self.requirement).get(datasette_version, self.name)


# --- What an entry's ``csp`` may add to the gallery policy (builder.csp) -----------------------

#: Directives a catalog plugin may add sources to (fetch directives only: never frame-ancestors,
#: base-uri, form-action or object-src). ``frame-src`` and ``media-src`` are not in the base
#: policy: a plugin that adds one starts it from ``default-src`` (``builder.csp.policy_directives``).
PLUGIN_DIRECTIVES = frozenset({"script-src", "style-src", "img-src", "font-src", "connect-src", "frame-src", "media-src"})
#: A source expression a plugin may list: an https host source (wildcard subdomain allowed)
#: or ``'unsafe-eval'`` (Vega compiles its expressions with ``Function``).
_SOURCE_RE = re.compile(r"https://(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?|'unsafe-eval'")
#: Directives that may also list the scheme source ``https:`` (any https host): audio and video
#: named by the publisher's data (datasette-mp3-audio) live on hosts no catalog entry can know.
#: A media element cannot run script; what a gallery with it gives up is that readers' browsers
#: fetch from hosts the data names, and that markup injected there could send data to another
#: origin through an ``<audio>`` element.
ANY_HTTPS_DIRECTIVES = frozenset({"media-src"})


class InvalidPolicySource(ValueError):
    """A catalog entry's ``csp`` names a directive or source the gallery policy does not allow plugins to add."""


def check_plugin_sources(plugin: str, sources: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Return ``sources`` (``{directive: [source, ...]}``) as tuples, or raise ``InvalidPolicySource``.

    Only ``PLUGIN_DIRECTIVES`` may be extended, and only with https host sources or
    ``'unsafe-eval'`` (and ``https:`` in ``ANY_HTTPS_DIRECTIVES``): a catalog typo such as
    ``*`` or ``'unsafe-hashes'`` fails loudly instead of widening every gallery that uses the plugin.
    """
    checked: dict[str, tuple[str, ...]] = {}
    for directive, values in sources.items():
        if directive not in PLUGIN_DIRECTIVES:
            raise InvalidPolicySource(
                f"{plugin}: csp directive {directive!r} may not be extended; use one of {sorted(PLUGIN_DIRECTIVES)}"
            )
        values = tuple(values)
        for value in values:
            if value == "https:" and directive in ANY_HTTPS_DIRECTIVES:
                continue
            if not _SOURCE_RE.fullmatch(value):
                raise InvalidPolicySource(
                    f"{plugin}: csp source {value!r} for {directive} is not an https host source or 'unsafe-eval'"
                    + (" (https: alone is allowed only in " + ", ".join(sorted(ANY_HTTPS_DIRECTIVES)) + ")" if value == "https:" else "")
                )
        checked[directive] = values
    return checked


@cache
def load_catalog() -> dict[str, Plugin]:
    """Return the catalog as ``{name: Plugin}``, in the file's order.

    Raises ``InvalidPolicySource`` if an entry's ``csp`` names a directive or source plugins
    may not add (``check_plugin_sources``).
    """
    with (CATALOG_DIR / "plugins.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    return {
        name: Plugin(
            name=name,
            description=entry["description"],
            docs=entry["docs"],
            configuration=entry.get("configuration", ""),
            verified_with=tuple(entry.get("verified_with", ())),
            not_offered=tuple(sorted(entry.get("not_offered", {}).items())),
            requirement=tuple(sorted(entry.get("requirement", {}).items())),
            csp=tuple(sorted(check_plugin_sources(name, entry.get("csp", {})).items())),
        )
        for name, entry in raw.items()
    }


@cache
def load_left_out() -> dict[str, str]:
    """Plugins considered and not offered, ``{name: reason}`` in ``left_out.toml``'s order (shown on /plugins/).

    Raises ``ValueError`` if a name is also in the catalog, or an entry has no ``reason``.
    """
    with (CATALOG_DIR / "left_out.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    offered = set(load_catalog()) & set(raw)
    if offered:
        raise ValueError(f"left_out.toml names plugins the catalog offers: {', '.join(sorted(offered))}")
    missing = [name for name, entry in raw.items() if not str(entry.get("reason", "")).strip()]
    if missing:
        raise ValueError(f"left_out.toml entries without a reason: {', '.join(missing)}")
    return {name: entry["reason"].strip() for name, entry in raw.items()}


def plugins_for_version(datasette_version: str) -> list[str]:
    """Names of the catalog plugins offered with ``datasette_version``, in the catalog's order."""
    return [p.name for p in load_catalog().values() if p.offered_with(datasette_version)]


def check_plugins(names: list[str], datasette_version: str | None = None) -> list[str]:
    """Return ``names`` de-duplicated and sorted, or raise ``UnknownPlugin``.

    Any name not in the catalog is refused; with ``datasette_version``, so is a
    plugin not offered with that version (the message says why and which
    versions it works with). An unknown ``datasette_version`` raises
    ``ValueError``.
    """
    catalog = load_catalog()
    unknown = sorted({n for n in names if n not in catalog})
    if unknown:
        raise UnknownPlugin(
            f"Unknown plugin {', '.join(unknown)}: choose from the catalog ({', '.join(catalog)})."
        )
    if datasette_version is not None:
        if datasette_version not in DATASETTE_VERSIONS:
            raise ValueError(f"Datasette {datasette_version} is not offered; choose one of {', '.join(DATASETTE_VERSIONS)}.")
        refused = sorted({n for n in names if not catalog[n].offered_with(datasette_version)})
        if refused:
            reasons = []
            for name in refused:
                plugin = catalog[name]
                why = dict(plugin.not_offered).get(datasette_version, "it was not verified with that version")
                works = ", ".join(plugin.verified_with) or "no offered version"
                reasons.append(f"{name} ({why}; it works with Datasette {works})")
            raise UnknownPlugin(
                f"Not offered with Datasette {datasette_version}: {'; '.join(reasons)}. "
                "Choose another Datasette version or leave the plugin out."
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
    "sdist_sha256"?}}}``; roots are ``datasette`` and each catalog plugin
    offered with that version (``plugins_for_version``). Raises
    ``FileNotFoundError`` if no lock was generated for that version.
    """
    if datasette_version not in DATASETTE_VERSIONS:
        raise ValueError(f"Datasette {datasette_version} is not offered; choose one of {DATASETTE_VERSIONS}")
    return json.loads(lock_path(datasette_version).read_text())
