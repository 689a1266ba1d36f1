"""The bundle's layout: every file a build stores, its storage key and its URL, and the generated files.

Layout written (DESIGN.md, "Bundle"; ``builder.director`` writes it)::

    runtime/pyodide-<version>/<file>       shared, written once
    runtime/pyodide-<version>/stdlib/<sha256>/python_stdlib.zip   compiled standard library (builder.stdlib), shared
    wheels/<sha256>/<file>.whl             shared, written once
    builds/<build-id>/data/<name>.db       canonical copy of the upload
    builds/<build-id>/data/<name>.blocks.sha256   a lazy database's block hashes (builder.lazy_database)
    builds/<build-id>/pyodide-lock.json    this build's wheels with sha256
    builds/<build-id>/glasshouse_runtime.py
    builds/<build-id>/plugins/<name>.py    Glasshouse's built-in Datasette plugins (the footer's "Report" link)
    builds/<build-id>/bytecode.zip
    builds/<build-id>/js/*.mjs             the browser runtime (builder/runtime/reader/js/), served at /_build/<id>/js/
    builds/<build-id>/config.mjs           generated: this build's values for the runtime
    builds/<build-id>/pyodide.mjs          generated: re-exports this Pyodide version's loader
    builds/<build-id>/-/static/...         Datasette's static files, served at /-/static/...
    builds/<build-id>/-/static-plugins/... the plugins' static files, served at /-/static-plugins/...
    builds/<build-id>/card.png             the share card (builder.card), for pages about the gallery
    builds/<build-id>/icon-<size>.png      the app icons, 192 and 512 px (builder.card.render_icon)
    builds/<build-id>/manifest.webmanifest the web app manifest (builder.web_app_manifest), served at /manifest.webmanifest
    <key>.gz                               gzip copy of a text, wasm or database file above (builder.gzip_copies)
    <key>.br                               Brotli copy of one, where smaller than the gzip copy (builder.brotli_copies)
    builds/<build-id>/download.zip         the self-host zip of the files above (builder.download)
    builds/<build-id>/manifest.json        builder.manifest
    builds/<build-id>/sw.js                generated, written last but one
    builds/<build-id>/index.html           written last

The same build id always writes the same keys, so a retried build overwrites itself harmlessly.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.card import THEME_COLOR
from builder.csp import security_headers
from builder.lazy_database import BLOCK_BYTES, block_hashes_name
from builder.runtime import BOOTSTRAP_PAGE, BUILTIN_PLUGINS, READER_MODULES
from builder.stdlib import STDLIB_NAME
from builder.url_map import URL_MAP
from builder.web_app_manifest import (
    WEB_APP_MANIFEST_NAME,
    WEB_APP_MANIFEST_URL,
    WebAppIcon,
    head_tags,
    icon_name,
    web_app_manifest,
)
from builder.wheels import sha256_file

#: Files of the Pyodide npm package that a bundle needs, in the order the browser wants them.
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
#: Datasette settings of every bundle: SQL runs on Pyodide's event loop, 1 s per query (a runaway
#: query ends with Datasette's time-limit error), at most 1,000 rows per page or query answer.
#: ``trusted_schema=OFF`` on every connection comes from glasshouse_runtime.py.
DATASETTE_SETTINGS = {"num_sql_threads": 0, "sql_time_limit_ms": 1000, "max_returned_rows": 1000}
#: What a lazy database's readers get on top (``builder.lazy_database``): no suggested facets, whose
#: queries read every row a table page's filter matches, scattered through the file, on every view
#: of the page (Datasette's documentation suggests turning them off for large tables).
LAZY_DATASETTE_SETTINGS = {**DATASETTE_SETTINGS, "suggest_facets": False}


@dataclass(frozen=True)
class BundleEntry:
    """One file of a bundle: storage ``key``, local ``path`` of its bytes, ``url`` on the content origin.

    ``url`` is ``""`` for files no reader fetches by URL (gzip and Brotli copies, the zip, the manifest).
    """

    key: str
    path: Path
    url: str


@dataclass(frozen=True)
class BundleLayout:
    """Where the files of build ``build_id`` on Pyodide ``pyodide_version`` are stored and served.

    The URLs follow the gallery origin's URL map (``builder.url_map``), which the content origin
    routes by and the browser runtime reads too.
    """

    build_id: str
    pyodide_version: str

    @property
    def build_prefix(self) -> str:
        """``builds/<build-id>/``: the build's own keys."""
        return f"builds/{self.build_id}/"

    @property
    def build_url(self) -> str:
        """``/_build/<build-id>/``: where the build's own files are served."""
        return f"{URL_MAP.store.build}{self.build_id}/"

    @property
    def runtime_url(self) -> str:
        """``/_runtime/pyodide-<version>/``: where the shared runtime files are served."""
        return f"{URL_MAP.store.runtime}pyodide-{self.pyodide_version}/"

    def build_file(self, name: str, path: Path) -> BundleEntry:
        """The build's own file ``name`` (e.g. ``data/chinook.db``), served at ``/_build/<build-id>/<name>``."""
        return BundleEntry(f"{self.build_prefix}{name}", path, f"{self.build_url}{name}")

    def runtime_file(self, name: str, path: Path) -> BundleEntry:
        """A file of the shared Pyodide runtime, stored once under ``runtime/pyodide-<version>/``."""
        return BundleEntry(f"runtime/pyodide-{self.pyodide_version}/{name}", path, f"{self.runtime_url}{name}")

    def wheel(self, path: Path) -> BundleEntry:
        """A wheel of the cache (``<cache>/<sha256>/<file>.whl``), stored once under ``wheels/<sha256>/``."""
        wheel = f"{path.parent.name}/{path.name}"
        return BundleEntry(f"wheels/{wheel}", path, f"{URL_MAP.store.wheels}{wheel}")

    def service_worker(self, path: Path) -> BundleEntry:
        """``sw.js``, the Service Worker entry point, served at ``/sw.js``."""
        return BundleEntry(f"{self.build_prefix}sw.js", path, URL_MAP.server.service_worker)

    def web_app_manifest(self, path: Path) -> BundleEntry:
        """``manifest.webmanifest``, the web app manifest, served at the origin's ``/manifest.webmanifest``."""
        return BundleEntry(f"{self.build_prefix}{WEB_APP_MANIFEST_NAME}", path, WEB_APP_MANIFEST_URL)

    def bootstrap_page(self, path: Path) -> BundleEntry:
        """``index.html``, the bootstrap page the content origin answers every app path with."""
        return BundleEntry(f"{self.build_prefix}index.html", path, "/index.html")


def sri(sha256_hex: str) -> str:
    """Return the Subresource Integrity string (``sha256-<base64>``) for a hex sha256 digest."""
    return "sha256-" + base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element or a JS module (no ``</script>``, no U+2028)."""
    return (
        json.dumps(value, sort_keys=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _render(template: Path, replacements: dict[str, str]) -> str:
    text = template.read_text()
    for placeholder, value in replacements.items():
        if placeholder not in text:
            raise AssertionError(f"{template.name} lacks {placeholder}")
        text = text.replace(placeholder, value)
    return text


def missing_runtime_files(runtime_dir: Path) -> list[str]:
    """The ``PYODIDE_FILES`` that ``runtime_dir`` lacks (``make setup`` unpacks them)."""
    return [name for name in PYODIDE_FILES if not (runtime_dir / name).is_file()]


def runtime_files(layout: BundleLayout, runtime_dir: Path, stdlib: Path | None) -> list[BundleEntry]:
    """The shared runtime files a reader downloads, in ``PYODIDE_FILES`` order, the standard library last.

    With ``stdlib`` (``builder.stdlib.compiled_stdlib``), the compiled copy, content-addressed
    (``stdlib/<sha256>/python_stdlib.zip``): a recompiled one gets a new key, never overwrites one.
    """
    entries = [layout.runtime_file(name, runtime_dir / name) for name in PYODIDE_FILES if name != STDLIB_NAME]
    if stdlib is None:
        return [*entries, layout.runtime_file(STDLIB_NAME, runtime_dir / STDLIB_NAME)]
    return [*entries, layout.runtime_file(f"stdlib/{sha256_file(stdlib)}/{STDLIB_NAME}", stdlib)]


def build_files(
    layout: BundleLayout, *, lock_file: Path, runtime_module: Path, bytecode: Path, database: Path, block_hashes: Path | None = None
) -> list[BundleEntry]:
    """The build's own files a reader downloads: its lock, the runtime module, the built-in plugins,
    the bytecode, the database (``data/<name>.db``), for a lazy database its block hash list
    (``data/<stem>.blocks.sha256``, ``builder.lazy_database``) and the browser runtime's modules."""
    hashes = [(f"data/{block_hashes_name(database)}", block_hashes)] if block_hashes else []
    return [
        layout.build_file(name, path)
        for name, path in (
            ("pyodide-lock.json", lock_file),
            ("glasshouse_runtime.py", runtime_module),
            *((f"plugins/{name}.py", source) for name, source in BUILTIN_PLUGINS.items()),
            ("bytecode.zip", bytecode),
            (f"data/{database.name}", database),
            *hashes,
            *((f"js/{module.name}", module) for module in sorted(READER_MODULES.glob("*.mjs"))),
        )
    ]


def static_files(layout: BundleLayout, urls: Iterable[str], folder: Path) -> list[BundleEntry]:
    """Datasette's and the plugins' static files, written by the Node check into ``folder`` at their ``urls``.

    Real files at Datasette's own URLs, the same bytes in both modes. Precached like the rest, so
    Service Worker mode works offline and downloads nothing later.
    """
    return [BundleEntry(f"{layout.build_prefix}{url.removeprefix('/')}", folder / url.removeprefix("/"), url) for url in urls]


def write_web_app_manifest(
    layout: BundleLayout, folder: Path, *, title: str, description: str, icons: dict[int, Path]
) -> list[BundleEntry]:
    """The gallery's app icons and its web app manifest, written into ``folder``: ``[icons..., manifest]``.

    ``icons`` maps a size in px to the icon drawn at it (``builder.card.render_icon``); each is a
    build file (``/_build/<build-id>/icon-<size>.png``), listed in the manifest with that URL. No
    icons (they could not be drawn): no manifest either, ``[]``, since a browser installs no app
    without an icon. ``title`` and ``description`` are bounded by ``builder.web_app_manifest``.
    """
    if not icons:
        return []
    entries = [layout.build_file(icon_name(size), path) for size, path in sorted(icons.items())]
    manifest = web_app_manifest(
        title, description, [WebAppIcon(entry.url, size) for size, entry in zip(sorted(icons), entries, strict=True)]
    )
    path = folder / WEB_APP_MANIFEST_NAME
    path.write_text(manifest.to_json(), encoding="utf-8")
    return [*entries, layout.web_app_manifest(path)]


def precache_list(files: Sequence[BundleEntry], digests: dict[Path, str]) -> list[dict[str, Any]]:
    """What a reader's worker downloads first: ``[{"url", "size" (bytes), "integrity" (SRI)}]``.

    ``digests`` maps each file's local path to its hex sha256 (hashed once per build: the
    database may be 1 GB).
    """
    return [{"url": f.url, "size": f.path.stat().st_size, "integrity": sri(digests[f.path])} for f in files]


def runtime_config(
    layout: BundleLayout,
    *,
    files: Sequence[BundleEntry],
    precache: list[dict[str, Any]],
    packages: Sequence[str],
    database: Path,
    database_sha256: str,
    metadata: dict,
    policy: str,
    installable: bool = False,
    lazy_blocks: int | None = None,
    table_counts: dict[str, int | None] | None = None,
) -> dict[str, object]:
    """This build's values for the browser runtime (``config.mjs``).

    ``files`` are the reader's files (``runtime_files`` first: the standard library's URL is
    taken from them); ``packages`` are loaded by name (``datasette`` and the plugins);
    ``database`` is the canonical copy, ``database_sha256`` its hex digest; ``lazy_blocks``, for a
    lazy database (``builder.lazy_database``), the number of blocks in its hash list: ``config.database``
    is then ``{url, path, size, integrity, lazy: {blockBytes, blocks, hashesURL}, tableCounts}`` (``lazy``
    null for a database read whole) and the caller leaves the database out of ``precache``;
    ``table_counts`` (``builder.tables.table_counts``, ``{}`` if not given) is every table's row
    count, which the reader's Datasette takes as its inspect data;
    ``policy`` the build's ``builder.csp.gallery_policy``;
    ``installable``: the build has a web app manifest (``write_web_app_manifest``), which every
    page the Service Worker answers then links (``webAppManifest``: ``{url, themeColor}``, else null).
    """
    build = layout.build_url
    return {
        "buildId": layout.build_id,
        "runtimeURL": layout.runtime_url,
        "stdLibURL": next(f.url for f in files if f.url.endswith(f"/{STDLIB_NAME}")),
        "wheelsURL": URL_MAP.store.wheels,
        "lockFileURL": f"{build}pyodide-lock.json",
        "runtimeModuleURL": f"{build}glasshouse_runtime.py",
        "pluginModules": [{"name": name, "url": f"{build}plugins/{name}.py"} for name in BUILTIN_PLUGINS],
        "bytecodeURL": f"{build}bytecode.zip",
        "packages": list(packages),
        "database": {
            "url": f"{build}data/{database.name}",
            "path": f"/data/{database.name}",
            "size": database.stat().st_size,
            "integrity": sri(database_sha256),
            "lazy": None
            if lazy_blocks is None
            else {"blockBytes": BLOCK_BYTES, "blocks": lazy_blocks, "hashesURL": f"{build}data/{block_hashes_name(database)}"},
            "tableCounts": table_counts or {},
        },
        "precache": precache,
        "totalBytes": sum(item["size"] for item in precache),
        "settings": DATASETTE_SETTINGS if lazy_blocks is None else LAZY_DATASETTE_SETTINGS,
        "metadata": metadata,
        "embedClientURL": f"{build}js/embed-client.mjs",
        # Stamped on every response the Service Worker or the Worker builds (security-headers.mjs). The
        # gallery's visibility may change after a reader's worker is installed, so these
        # answers always take the unlisted gallery's stricter Referrer-Policy (no-referrer).
        "securityHeaders": [list(header) for header in security_headers(policy, unlisted=True)],
        "webAppManifest": {"url": WEB_APP_MANIFEST_URL, "themeColor": THEME_COLOR} if installable else None,
    }


def write_generated_files(
    layout: BundleLayout, folder: Path, config: dict[str, object], title: str, *, installable: bool = False
) -> tuple[list[BundleEntry], BundleEntry]:
    """Write the files that carry this build's values into ``folder``: ``(generated, index.html)``.

    ``generated`` is ``config.mjs`` (exports ``config``), ``pyodide.mjs`` (re-exports this
    Pyodide version's loader: module Service Workers may only import statically) and ``sw.js``
    (the Service Worker entry point at ``/sw.js``), in that order; ``index.html`` is the
    bootstrap page, ``title`` escaped, linking the web app manifest when ``installable``.
    """
    sources = {
        "config.mjs": (
            f"// Generated by builder/bundle.py for build {layout.build_id}.\nexport default {_script_json(config)};\n"
        ),
        "pyodide.mjs": (
            f'export {{ loadPyodide }} from "{layout.runtime_url}pyodide.mjs";\n'
            f'export {{ default as createPyodideModule }} from "{layout.runtime_url}pyodide.asm.mjs";\n'
        ),
        "sw.js": (
            f"// Glasshouse gallery Service Worker of build {layout.build_id}.\n"
            f'import "{layout.build_url}js/sw-main.mjs";\n'
        ),
    }
    generated = []
    for name, text in sources.items():
        (folder / name).write_text(text)
        generated.append(layout.service_worker(folder / name) if name == "sw.js" else layout.build_file(name, folder / name))
    index = folder / "index.html"
    bootstrap = f"{layout.build_url}js/bootstrap.mjs"
    index.write_text(
        _render(
            BOOTSTRAP_PAGE,
            {
                "__TITLE__": html.escape(title),
                "__BOOTSTRAP_URL__": bootstrap,
                "__WEB_APP_MANIFEST__": head_tags() if installable else "",
            },
        )
    )
    return generated, layout.bootstrap_page(index)
