"""The gallery origin's URL map, read for Python from the one file the browser runtime imports.

``builder/runtime/reader/js/url-map.mjs`` is the map's home: which paths of a gallery origin
the server answers (``/sw.js``, ``/robots.txt``, ``/_report``, ``/_download/``, ``/manifest.webmanifest``), which are the
bundle's immutable stores (``/_runtime/``, ``/_wheels/``, ``/_build/``), Datasette's static files
(``/-/static/``, ``/-/static-plugins/``), embed mode (``/-/embed/``) and the runtime's own query
parameters (``_glasshouse_*``). The browser runtime imports it as an ES module; this module parses
the same object (``export default <strict JSON>;``) into a typed ``UrlMap``, read by the content
origin's routes (``gallery.content.paths``), the bundle's layout (``builder.bundle``), embed URLs
(``gallery.embed``) and the build's check (``builder.compat``). A path ending in ``/`` is a
prefix, any other an exact path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

from builder.runtime import READER_MODULES

#: The map's one home, imported by the browser runtime.
URL_MAP_MODULE = READER_MODULES / "url-map.mjs"
#: The module's one statement: ``export default {...};`` at the start of a line, to the end of the file.
_EXPORT = re.compile(r"^export default (?P<object>\{.*\});?\s*\Z", re.MULTILINE | re.DOTALL)


class InvalidUrlMap(ValueError):
    """``url-map.mjs`` is not ``export default <strict JSON object>;`` of the expected shape; ``args[0]`` says what to fix."""


@dataclass(frozen=True)
class ServerPaths:
    """Paths only the server answers, never the runtime: ``/sw.js``, ``/robots.txt``, ``/_report``, ``/_download/``,
    and the web app manifest ``/manifest.webmanifest`` (``builder.web_app_manifest``)."""

    service_worker: str
    robots: str
    report: str
    download: str
    web_app_manifest: str


@dataclass(frozen=True)
class StorePrefixes:
    """Prefixes of the bundle's immutable files: the shared Pyodide runtime, wheels, a build's own files."""

    runtime: str
    wheels: str
    build: str


@dataclass(frozen=True)
class RuntimeParams:
    """The runtime's own query parameters: every one starting with ``prefix`` is stripped before Datasette."""

    prefix: str
    chrome: str
    mode: str


@dataclass(frozen=True)
class UrlMap:
    """The gallery origin's URL map (``URL_MAP_MODULE``); ``static`` holds Datasette's static-file prefixes."""

    server: ServerPaths
    store: StorePrefixes
    static: tuple[str, ...]
    embed: str
    params: RuntimeParams


def _snake(name: str) -> str:
    """``serviceWorker`` -> ``service_worker``: the map's JavaScript names as Python field names."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _group[G: (ServerPaths, StorePrefixes, RuntimeParams)](cls: type[G], value: object, where: str) -> G:
    """``value`` (a JSON object of string values) as the dataclass ``cls``; ``InvalidUrlMap`` if its keys differ."""
    if not isinstance(value, dict):
        raise InvalidUrlMap(f"{where} must be an object, not {value!r}")
    given = {_snake(key): item for key, item in value.items()}
    wanted = {field.name for field in fields(cls)}
    if set(given) != wanted or not all(isinstance(item, str) and item for item in given.values()):
        raise InvalidUrlMap(
            f"{where} must map exactly {sorted(wanted)} (camelCase in JavaScript) to strings, not {value!r}"
        )
    return cls(**given)


def parse_url_map(text: str, source: str = "url-map.mjs") -> UrlMap:
    """The ``UrlMap`` in ``text``, the source of ``url-map.mjs`` (comment lines, then ``export default {...};``).

    Raises ``InvalidUrlMap`` naming ``source`` if the exported object is not strict JSON or not
    the map's shape (keys ``server``, ``store``, ``static``, ``embed``, ``params``).
    """
    match = _EXPORT.search(text)
    if match is None:
        raise InvalidUrlMap(f"{source}: the map must be the file's last statement, `export default {{...}};`")
    try:
        data = json.loads(match["object"])
    except ValueError as exc:
        raise InvalidUrlMap(f"{source}: the object after `export default` must be strict JSON ({exc})") from exc
    expected = {"server", "store", "static", "embed", "params"}
    if not isinstance(data, dict) or set(data) != expected:
        raise InvalidUrlMap(f"{source}: the map's keys must be {sorted(expected)}")
    static = data["static"]
    if not isinstance(static, list) or not all(isinstance(prefix, str) and prefix.endswith("/") for prefix in static):
        raise InvalidUrlMap(f"{source}: static must be a list of path prefixes ending in '/', not {static!r}")
    if not isinstance(data["embed"], str) or not data["embed"].endswith("/"):
        raise InvalidUrlMap(f"{source}: embed must be a path prefix ending in '/', not {data['embed']!r}")
    return UrlMap(
        server=_group(ServerPaths, data["server"], f"{source}: server"),
        store=_group(StorePrefixes, data["store"], f"{source}: store"),
        static=tuple(static),
        embed=data["embed"],
        params=_group(RuntimeParams, data["params"], f"{source}: params"),
    )


def read_url_map(path: Path = URL_MAP_MODULE) -> UrlMap:
    """The ``UrlMap`` of the file at ``path``; ``OSError`` if it cannot be read, ``InvalidUrlMap`` if it is malformed."""
    return parse_url_map(path.read_text(encoding="utf-8"), str(path))


#: The URL map every Python module reads.
URL_MAP = read_url_map()
