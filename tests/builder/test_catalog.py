"""The plugin catalog: its entries, its locks, the checks on a publisher's choice, and each
plugin really working in Pyodide.

The slow tests boot Pyodide in Node (``builder.compat.check_bundle``) with a database
made to exercise every plugin, render the pages where each plugin acts, and check its
output. They are the evidence behind each entry's ``verified_with``. They boot the
bundles the real builder wrote once per session (``prebuilt_bundle``): one per Datasette
version with all its plugins, which the browser checks share, and one of Datasette alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from builder import check_snapshots
from builder.catalog import (
    DATASETTE_VERSIONS,
    DEFAULT_DATASETTE_VERSION,
    UnknownPlugin,
    check_plugins,
    load_catalog,
    load_left_out,
    load_lock,
    plugins_for_version,
)
from builder.compat import CompatError, CompatRequest, PageResult, check_bundle
from builder.stdlib import compiled_stdlib
from tests.support.plugin_data import TIMESTAMP_TEXT, YOUTUBE_VIDEO, group_metadata

CATALOG = load_catalog()


def _static(path: str, marker: str) -> dict:
    return {"path": path, "contains": [marker]}


def _sql(sql: str) -> str:
    """The query string of ``sql`` run as JSON rows (``_shape=array``)."""
    return urlencode({"sql": sql, "_shape": "array"})


#: For each plugin: the pages where it acts and what its output must contain (plugins.db).
PLUGIN_CHECKS: dict[str, list[dict]] = {
    "datasette-cluster-map": [
        {"path": "/plugins/places", "contains": ["datasette-cluster-map.js", 'DATASETTE_CLUSTER_MAP_LATITUDE_COLUMN = "latitude"']},
        _static("/-/static-plugins/datasette-cluster-map/datasette-cluster-map.js", "DATASETTE_CLUSTER_MAP"),
    ],
    "datasette-leaflet-geojson": [
        {"path": "/plugins/places", "contains": ["datasette-leaflet-geojson.js"]},
        _static("/-/static-plugins/datasette-leaflet-geojson/datasette-leaflet-geojson.js", "leaflet"),
    ],
    "datasette-geojson": [
        {"path": "/plugins/places.geojson", "contains": ['"FeatureCollection"', '"London"', "-0.1278"]},
    ],
    "datasette-geojson-map": [
        {"path": "/plugins/places", "contains": ["/-/static-plugins/datasette-geojson-map/map.js", "window.TILE_LAYER = "]},
        _static("/-/static-plugins/datasette-geojson-map/map.js", "geojsonURL"),
    ],
    "datasette-tiles": [
        {"path": "/-/tiles", "contains": ['href="/-/tiles/plugins"']},
        {"path": "/-/tiles/plugins", "contains": ["<h1>Glasshouse tiles</h1>", "/-/tiles/plugins/{z}/{x}/{y}.png"]},
        # The one tile (TMS row 0 is XYZ row 0 at zoom 0): the PNG's header.
        {"path": "/-/tiles/plugins/0/0/0.png", "contains": ["PNG", "IHDR"]},
    ],
    "datasette-basemap": [
        {"path": "/basemap", "contains": ["tiles", "metadata"]},
        {"path": "/basemap/metadata.json", "query": "_shape=array&name=name", "contains": ['"value": "']},
    ],
    "datasette-haversine": [
        {"path": "{query}", "query": "sql=select+round(haversine(51.5074,-0.1278,48.8566,2.3522))+as+km&_shape=array",
         "contains": ['"km": 344.0']},
    ],
    "datasette-vega": [
        {"path": "/plugins/notes", "contains": ["/-/static-plugins/datasette_vega/main."]},
        _static("/-/static-plugins/datasette_vega/main.08f5d3d8.js", "vega"),
    ],
    "datasette-plot": [
        {"path": "/plugins/notes", "contains": ["/-/static-plugins/datasette-plot/main.min.js"]},
        _static("/-/static-plugins/datasette-plot/main.min.js", "function"),
    ],
    "datasette-nteract-data-explorer": [
        {"path": "/plugins/notes", "contains": ["/-/static-plugins/datasette-nteract-data-explorer/index.bfd4b775.js"]},
        _static("/-/static-plugins/datasette-nteract-data-explorer/index.bfd4b775.js", "DatasetteDataExplorer"),
    ],
    "datasette-statistics": [
        {"path": "{query}", "query": "sql=select+statistics_median(n)+as+median+from+notes&_shape=array",
         "contains": ['"median": 5.0']},
    ],
    "datasette-pretty-json": [
        {"path": "/plugins/notes", "contains": ['<pre style="white-space: pre-wrap">{\n    &#34;serves&#34;: 4,']},
    ],
    "datasette-render-markdown": [
        {"path": "/plugins/notes", "contains": ['<div style="white-space: normal"><h2>Tomato soup</h2>', "<em>slowly</em>"]},
    ],
    "datasette-render-images": [
        {"path": "/plugins/images", "contains": ['<img src="data:image/png;base64,iVBORw0KGgo']},
    ],
    "datasette-render-binary": [
        {"path": "/plugins/blobs", "contains": ["Suggestion: gz (application/gzip)"]},
    ],
    "datasette-render-html": [
        {"path": "/plugins/notes", "contains": ["<mark>highlighted</mark>"]},
    ],
    "datasette-json-html": [
        {"path": "/plugins/notes", "contains": ['<a href="https://example.com/soup">Soup recipe</a>']},
    ],
    "datasette-render-timestamps": [
        {"path": "/plugins/notes", "contains": [TIMESTAMP_TEXT]},
    ],
    "datasette-youtube-embed": [
        {"path": "/plugins/media", "contains": [
            f'<lite-youtube videoid="{YOUTUBE_VIDEO}" params="start=30"', "/-/static-plugins/datasette_youtube_embed/lite-yt-embed.js",
        ]},
        _static("/-/static-plugins/datasette_youtube_embed/lite-yt-embed.js", "customElements.define('lite-youtube'"),
    ],
    "datasette-mp3-audio": [
        {"path": "/plugins/media", "contains": [
            '<audio controls src="https://example.com/audio/birdsong.mp3">', "/-/static-plugins/datasette-mp3-audio/datasette-mp3-audio.js",
        ]},
        _static("/-/static-plugins/datasette-mp3-audio/datasette-mp3-audio.js", "MP3s on this page"),
    ],
    "datasette-dateutil": [
        {"path": "{query}", "query": _sql("select dateutil_parse('10 october 2020 3pm') as parsed, dateutil_easter(2026) as easter"),
         "contains": ['"parsed": "2020-10-10T15:00:00"', '"easter": "2026-04-05"']},
    ],
    "datasette-simple-html": [
        {"path": "{query}", "query": _sql("select html_strip_tags('<b>Bold</b> text') as stripped, html_escape('a < b') as escaped"),
         "contains": ['"stripped": "Bold text"', '"escaped": "a &lt; b"']},
    ],
    "datasette-sqlite-url-lite": [
        {"path": "{query}", "query": _sql("select url_host('https://datasette.io/plugins?q=x') as host, url_path('https://datasette.io/plugins?q=x') as path"),
         "contains": ['"host": "datasette.io"', '"path": "/plugins"']},
    ],
    "datasette-explain": [
        # The SQL editor's page carries the script that asks for the plan as the query changes.
        {"path": "/plugins", "contains": ["fetch('/plugins/-/explain?' + params)"]},
        {"path": "/plugins/-/explain", "query": urlencode({"sql": "select title from notes where n > 3"}),
         "contains": ['"ok": true', '"detail": "SCAN notes"', '"name": "notes"']},
    ],
    "datasette-query-links": [
        {"path": "/plugins/media", "contains": [
            '<a href="/plugins?sql=select+title+from+notes+where+n+%3E+3">select title from notes where n &gt; 3</a>',
        ], "lacks": ['<a href="/plugins?sql=not+sql">']},
    ],
    "datasette-search-all": [
        {"path": "/-/search", "query": "q=tomato", "contains": ['data-searchable-url="/plugins/notes"']},
        # What the search page's script fetches for each searchable table:
        {"path": "/plugins/notes.json", "query": "_shape=objects&_search=tomato", "contains": ['"Tomato soup"'],
         "lacks": ['"Bread"']},
    ],
    "datasette-sqlite-fts4": [
        {"path": "{query}", "query": "sql=select+title,+round(rank_bm25(matchinfo(recipes_fts4,+'pcnalx')),+4)+as+rank"
                                      "+from+recipes_fts4+where+recipes_fts4+match+'tomato'+order+by+rank&_shape=array",
         "contains": ['"title": "Tomato soup", "rank": -1.2253', '"title": "Tomato salad", "rank": -1.0049']},
    ],
    "datasette-query-history": [
        {"path": "{query_page}", "query": "sql=select+1",
         "contains": ["/-/static-plugins/datasette_query_history/datasette-query-history.js"]},
        _static("/-/static-plugins/datasette_query_history/datasette-query-history.js", "addQueryToHistory"),
    ],
    "datasette-copyable": [
        {"path": "/plugins/notes.copyable", "contains": ['class="copyable"', "Tomato soup"]},
        {"path": "/plugins/notes.copyable", "query": "_table_format=github&_raw=1", "contains": ["|------|", "| Tomato soup |"]},
    ],
    "datasette-export-notebook": [
        {"path": "/plugins/notes.Notebook", "contains": ["Export 3 rows to a notebook", "pandas.read_json("]},
    ],
    "datasette-yaml": [
        {"path": "/plugins/notes.yaml", "contains": ["- id: 1\n  title: Tomato soup\n", "- id: 3\n  title: Pesto\n"]},
    ],
    "datasette-ics": [
        {"path": "/plugins/events.ics", "contains": ["BEGIN:VCALENDAR", "SUMMARY:Launch party", "DTSTART:20300501T180000Z"]},
    ],
    "datasette-xlsx": [
        # A workbook is a zip: its member names are stored as they are.
        {"path": "/plugins/notes.xlsx", "contains": ["PK", "[Content_Types].xml", "xl/worksheets/sheet1.xml"]},
    ],
    "datasette-dashboards": [
        {"path": "/-/dashboards", "contains": ["Glasshouse overview"]},
        {"path": "/-/dashboards/overview", "contains": ["<h2>Dashboard notes</h2>", "Notes"]},
    ],
    "datasette-block-robots": [
        {"path": "/robots.txt", "contains": ["User-agent: *\nDisallow: /"]},
    ],
}


#: Where each Datasette version answers arbitrary SQL as JSON (1.0 redirects the 0.65 URL there).
QUERY_PATHS = {"0.65.5": "/plugins.json", "1.0a41": "/plugins/-/query.json"}
#: Where each Datasette version shows the SQL query page (the same redirect).
QUERY_PAGES = {"0.65.5": "/plugins", "1.0a41": "/plugins/-/query"}


def pages_for(name: str, version: str) -> list[dict]:
    """``PLUGIN_CHECKS[name]`` with ``{query}`` and ``{query_page}`` replaced by ``version``'s SQL JSON path and page."""
    return [
        {**page, "path": page["path"].replace("{query}", QUERY_PATHS[version]).replace("{query_page}", QUERY_PAGES[version])}
        for page in PLUGIN_CHECKS[name]
    ]


def offered_pairs() -> list[tuple[str, str]]:
    return [(name, version) for name, plugin in CATALOG.items() for version in plugin.verified_with]


# --- the catalog file --------------------------------------------------------------------------


def test_the_catalog_offers_at_least_15_plugins_with_the_default_datasette() -> None:
    assert len(CATALOG) >= 15
    assert len(plugins_for_version(DEFAULT_DATASETTE_VERSION)) >= 15


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_entry_is_complete(name: str) -> None:
    plugin = CATALOG[name]
    assert re.fullmatch(r"datasette-[a-z0-9-]+", name)
    assert plugin.description and "\n" not in plugin.description and plugin.description.endswith(".")
    assert plugin.docs.startswith("https://")
    assert "\n" not in plugin.configuration
    assert plugin.verified_with, "a plugin verified with no Datasette version is offered with none"
    assert set(plugin.verified_with) <= set(DATASETTE_VERSIONS)
    for version, reason in plugin.not_offered:
        assert version in DATASETTE_VERSIONS and version not in plugin.verified_with and reason


def test_the_catalog_covers_the_kinds_of_plugin_publishers_ask_for() -> None:
    wanted = {
        "datasette-cluster-map", "datasette-leaflet-geojson", "datasette-pretty-json", "datasette-render-markdown",
        "datasette-render-images", "datasette-json-html", "datasette-render-timestamps", "datasette-search-all",
        "datasette-copyable", "datasette-export-notebook", "datasette-dashboards", "datasette-block-robots",
    }
    assert wanted <= set(CATALOG)
    assert {"datasette-vega", "datasette-plot"} & set(CATALOG)
    assert {"datasette-atom", "datasette-ics"} & set(CATALOG)


def test_the_left_out_plugins_are_listed_with_a_reason() -> None:
    left_out = load_left_out()
    for name in (
        "datasette-atom", "datasette-graphql", "datasette-jq", "datasette-auth-passwords", "datasette-upload-csvs",
        "datasette-multiline-links",
    ):
        assert len(left_out[name]) > 20
        assert name not in CATALOG


def test_a_plugin_both_offered_and_left_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from builder import catalog

    (tmp_path / "plugins.toml").write_bytes((catalog.CATALOG_DIR / "plugins.toml").read_bytes())
    (tmp_path / "left_out.toml").write_text('[datasette-vega]\nreason = "a reason long enough to be one"\n')
    monkeypatch.setattr(catalog, "CATALOG_DIR", tmp_path)
    catalog.load_catalog.cache_clear()
    catalog.load_left_out.cache_clear()
    try:
        with pytest.raises(ValueError, match="names plugins the catalog offers: datasette-vega"):
            catalog.load_left_out()
        (tmp_path / "left_out.toml").write_text('[datasette-nothing]\nreason = " "\n')
        catalog.load_left_out.cache_clear()
        with pytest.raises(ValueError, match="without a reason: datasette-nothing"):
            catalog.load_left_out()
    finally:
        monkeypatch.undo()
        catalog.load_catalog.cache_clear()
        catalog.load_left_out.cache_clear()


def test_every_plugin_has_a_browser_check() -> None:
    assert set(PLUGIN_CHECKS) == set(CATALOG)
    assert set(QUERY_PATHS) == set(QUERY_PAGES) == set(DATASETTE_VERSIONS)


# --- the locks -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_the_lock_pins_exactly_the_plugins_offered_with_its_version(version: str) -> None:
    lock = load_lock(version)
    assert lock["datasette_version"] == version
    assert set(lock["roots"]) == {"datasette", *plugins_for_version(version)}


@pytest.mark.parametrize(("name", "version"), offered_pairs())
def test_every_offered_plugin_is_pinned_with_sha256(name: str, version: str) -> None:
    lock = load_lock(version)
    assert name in lock["roots"][name]
    assert set(lock["roots"]["datasette"]) <= set(lock["roots"][name])
    for package in lock["roots"][name]:
        entry = lock["packages"][package]
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), package
        assert entry["filename"].endswith(".whl")
        if entry["source"] == "pure-sdist":
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sdist_sha256"]), package


@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_every_closure_in_the_lock_is_complete(version: str) -> None:
    lock = load_lock(version)
    named = {name for names in lock["roots"].values() for name in names}
    assert named == set(lock["packages"]), "every root's names are pinned, and nothing else is"
    assert not {"pip", "setuptools"} & named


@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_only_wheels_pyodide_can_load_are_pinned(version: str) -> None:
    for name, entry in load_lock(version)["packages"].items():
        tags = entry["filename"][:-4].split("-")[-3:]
        assert tags[2] in ("any", "pyemscripten_2026_0_wasm32"), (name, entry["filename"])


# --- checking a publisher's choice ---------------------------------------------------------


def test_an_unknown_plugin_is_refused_with_the_catalog_in_the_message() -> None:
    with pytest.raises(UnknownPlugin) as info:
        check_plugins(["datasette-cluster-map", "datasette-nope"])
    message = info.value.args[0]
    assert message.startswith("Unknown plugin datasette-nope: choose from the catalog (")
    assert "datasette-render-markdown" in message


def test_a_choice_is_deduplicated_and_sorted_with_or_without_a_version() -> None:
    chosen = ["datasette-pretty-json", "datasette-cluster-map", "datasette-pretty-json"]
    assert check_plugins(chosen) == ["datasette-cluster-map", "datasette-pretty-json"]
    assert check_plugins(chosen, DEFAULT_DATASETTE_VERSION) == ["datasette-cluster-map", "datasette-pretty-json"]


def test_a_plugin_not_offered_with_the_chosen_datasette_is_refused_with_the_reason() -> None:
    with pytest.raises(UnknownPlugin) as info:
        check_plugins(["datasette-plot", "datasette-pretty-json"], "0.65.5")
    message = info.value.args[0]
    assert message.startswith("Not offered with Datasette 0.65.5: datasette-plot (it requires Datasette 1.0a6 or later;")
    assert "it works with Datasette 1.0a41" in message
    assert "datasette-pretty-json" not in message


def test_an_unknown_datasette_version_is_refused() -> None:
    with pytest.raises(ValueError, match="Datasette 0.1 is not offered; choose one of 0.65.5, 1.0a41"):
        check_plugins(["datasette-pretty-json"], "0.1")


# --- each plugin in Pyodide (Node) ---------------------------------------------------------
#
# The real builder writes the bundle of every plugin offered with a Datasette version once per
# session (``prebuilt_bundle``; the browser checks open the same build, and when some plugin must
# stand apart there, see ``plugin_data.SEPARATE``, check that plugin on it), and that bundle (its lock file, canonical
# database, metadata and settings) is booted once more in Node, rendering the pages of each of
# its plugins. Each plugin's test reads its own pages of that boot, so each is checked with all
# the others loaded; the control reads every catalog plugin's pages of the boot of the bundle of
# Datasette alone.


@dataclass(frozen=True)
class NodeBoot:
    """One Node boot of a built bundle: its default pages, then those of each plugin in ``rendered`` (``pages_for``).

    ``pages`` holds what rendered (all of them if Datasette started); ``reason``
    is ``CompatError``'s short reason, or ``""`` if every page passed; ``log`` the
    full text of the check.
    """

    plugins: tuple[str, ...]
    version: str
    pages: list[PageResult]
    reason: str
    log: str

    @property
    def rendered(self) -> tuple[str, ...]:
        """The plugins whose pages the boot renders, in order (``rendered_plugins``)."""
        return rendered_plugins(self.plugins)

    @property
    def defaults(self) -> list[PageResult]:
        """``/``, ``/plugins`` and ``/plugins/places``: what every bundle must render."""
        return self.pages[:3]

    def pages_of(self, name: str) -> list[PageResult]:
        """The results of ``pages_for(name, version)``, in order (fewer if the boot stopped early; none
        if ``name`` is not in ``rendered``)."""
        if name not in self.rendered:
            return []
        start = 3 + sum(len(PLUGIN_CHECKS[other]) for other in self.rendered[: self.rendered.index(name)])
        return self.pages[start : start + len(PLUGIN_CHECKS[name])]

    def explain(self, pages: list[PageResult]) -> str:
        """What went wrong on ``pages``, with the boot's reason and the end of its log."""
        failed = [f"{p.path}?{p.query} -> {p.status}: {'; '.join(p.problems)}" for p in pages if p.problems]
        return (
            f"Datasette {self.version} with {', '.join(self.plugins) or 'no plugins'} in Node: "
            f"{self.reason or 'every page passed'}\n" + "\n".join(failed) + f"\n--- log (end):\n{self.log[-3000:]}"
        )


#: Catalog order of the plugins whose pages every boot renders.
CATALOG_ORDER = list(CATALOG)


def rendered_plugins(plugins: tuple[str, ...]) -> tuple[str, ...]:
    """The plugins whose pages a boot of ``plugins`` renders: those, in catalog order, or with none (the control) every catalog plugin."""
    return tuple(name for name in CATALOG_ORDER if name in plugins) if plugins else tuple(CATALOG_ORDER)


@pytest.fixture(scope="module")
def node_boot(prebuilt_bundle: Callable[..., Any], shared_store: Path, plugin_database: Path) -> Callable[..., NodeBoot]:
    """``node_boot(version, plugins) -> NodeBoot``: the session's bundle of ``plugins`` booted in Node, once per module.

    It renders the pages of ``plugins``, or with none (the control) those of every catalog plugin.
    The control boots normally: a check restored from the import snapshot that fails (as the
    control must) runs again without it (``check_bundle``), which would only repeat the failure.
    """
    from django.conf import settings

    boots: dict[tuple[str, tuple[str, ...]], NodeBoot] = {}

    def get(version: str, plugins: tuple[str, ...]) -> NodeBoot:
        if (version, plugins) in boots:
            return boots[version, plugins]
        manifest = prebuilt_bundle(plugin_database, plugins, version, group_metadata(plugins)).manifest
        lock_key = next(f["key"] for f in manifest["files"] if f["url"].endswith("/pyodide-lock.json"))
        runtime_dir, cache_dir = Path(settings.PYODIDE_RUNTIME_DIR), Path(settings.WHEEL_CACHE_DIR)
        # As the build's own check: the same standard library, and the import snapshot that check left.
        stdlib = compiled_stdlib(runtime_dir, cache_dir, settings.PYODIDE_VERSION, log=lambda line: None)
        snapshots = cache_dir / check_snapshots.FOLDER if plugins else None
        try:
            report = check_bundle(
                CompatRequest(
                    runtime_dir=runtime_dir, cache_dir=cache_dir, stdlib=stdlib, import_snapshots=snapshots,
                    lock_file=shared_store / lock_key, packages=("datasette", *manifest["plugins"]),
                    database=shared_store / manifest["database"]["key"], database_name=manifest["database"]["name"],
                    settings=manifest["datasette_settings"], metadata=manifest["metadata"],
                    extra_pages=tuple(page for name in rendered_plugins(plugins) for page in pages_for(name, version)), timeout=240,
                )
            )  # fmt: skip
            boots[version, plugins] = NodeBoot(plugins, version, report.pages, "", report.log)
        except CompatError as exc:
            boots[version, plugins] = NodeBoot(plugins, version, exc.pages, exc.args[0], exc.log)
        return boots[version, plugins]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(("name", "version"), offered_pairs())
def test_each_plugin_works_in_pyodide(name: str, version: str, node_boot: Callable[..., NodeBoot]) -> None:
    boot = node_boot(version, tuple(plugins_for_version(version)))
    mine = boot.pages_of(name)
    assert len(mine) == len(PLUGIN_CHECKS[name]), boot.explain(boot.pages)
    assert all(page.status == 200 and not page.problems for page in boot.defaults + mine), boot.explain(boot.defaults + mine)


@pytest.mark.slow
@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_all_plugins_of_a_version_work_together(version: str, node_boot: Callable[..., NodeBoot]) -> None:
    plugins = plugins_for_version(version)
    boot = node_boot(version, tuple(plugins))
    pages = boot.defaults + [page for name in plugins for page in boot.pages_of(name)]
    assert len(pages) == 3 + sum(len(PLUGIN_CHECKS[name]) for name in plugins), boot.explain(boot.pages)
    assert all(page.status == 200 and not page.problems for page in pages), boot.explain(pages)
    assert boot.reason == "", boot.explain(boot.pages)  # the check passed as a whole, as a build's must


@pytest.mark.slow
@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_no_check_passes_without_its_plugin(version: str, node_boot: Callable[..., NodeBoot]) -> None:
    """The markers are the plugins' own output: Datasette alone fails at least one page of every check."""
    boot = node_boot(version, ())
    assert [r.path for r in boot.defaults] == ["/", "/plugins", "/plugins/places"], boot.explain(boot.pages)
    assert not any(r.problems for r in boot.defaults), boot.explain(boot.defaults)
    for name in CATALOG:
        mine = boot.pages_of(name)
        assert len(mine) == len(PLUGIN_CHECKS[name]), boot.explain(boot.pages)
        assert any(r.problems for r in mine), f"{name}'s check passes without {name}"
