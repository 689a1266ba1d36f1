"""The gallery origin's URL map: one file that Python and the browser runtime both read, and agree on.

``builder/runtime/reader/js/url-map.mjs`` is imported by the runtime's ES modules and parsed by
``builder.url_map``; the node side (what the runtime derives from it) is in
``tests/runtime/url_map.test.mjs``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from builder.bundle import BundleLayout
from builder.compat import REPORT_PATH as CHECKED_REPORT_PATH
from builder.pyodide import PYODIDE_VERSION
from builder.runtime import BUILTIN_PLUGINS, READER_MODULES
from builder.url_map import URL_MAP, URL_MAP_MODULE, InvalidUrlMap, parse_url_map
from gallery.content import paths
from gallery.embed import CHROME_PARAM, EMBED_PREFIX, RUNTIME_PARAM_PREFIX
from gallery.models import Build

#: What the runtime's modules export, printed as JSON by Node: the map itself and what they derive from it.
RUNTIME_EXPORTS = """
const js = process.argv[1];
const { default: map } = await import(`${js}/url-map.mjs`);
const kinds = await import(`${js}/request-kind.mjs`);
const rewrite = await import(`${js}/url-rewrite.mjs`);
console.log(JSON.stringify({
  map,
  store: kinds.STORE_PREFIXES, serverPaths: kinds.SERVER_PATHS, serverPrefixes: kinds.SERVER_PREFIXES,
  static: kinds.STATIC_PREFIXES, embed: rewrite.EMBED_PREFIX,
  params: [rewrite.PARAM_PREFIX, rewrite.CHROME_PARAM, rewrite.MODE_PARAM],
}));
"""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _as_javascript(value: object) -> object:
    """``value`` (``asdict`` of the map) with the JavaScript side's camelCase keys and lists."""
    if isinstance(value, dict):
        return {_camel(key): _as_javascript(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_as_javascript(item) for item in value]
    return value


@pytest.fixture(scope="module")
def runtime_exports() -> dict:
    """The runtime's view of the map, as Node imports the reader's modules."""
    node = shutil.which("node")
    assert node, "Node.js is not on PATH: run `make runtime` (deploy/install-node.sh)"
    proc = subprocess.run(
        [node, "--input-type=module", "--eval", RUNTIME_EXPORTS, str(READER_MODULES)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_python_reads_the_same_map_the_browser_runtime_imports(runtime_exports: dict) -> None:
    assert runtime_exports["map"] == _as_javascript(asdict(URL_MAP))


def test_the_runtime_sorts_requests_by_the_maps_paths(runtime_exports: dict) -> None:
    server = asdict(URL_MAP.server).values()
    assert runtime_exports["store"] == list(asdict(URL_MAP.store).values())
    assert runtime_exports["serverPaths"] == [path for path in server if not path.endswith("/")]
    assert runtime_exports["serverPrefixes"] == [path for path in server if path.endswith("/")]
    assert runtime_exports["static"] == list(URL_MAP.static)
    assert runtime_exports["embed"] == URL_MAP.embed
    assert runtime_exports["params"] == [URL_MAP.params.prefix, URL_MAP.params.chrome, URL_MAP.params.mode]


def test_the_content_origin_routes_by_the_map() -> None:
    assert (
        paths.SERVICE_WORKER_PATH, paths.ROBOTS_PATH, paths.REPORT_PATH, paths.DOWNLOAD_PREFIX, paths.WEB_APP_MANIFEST_PATH
    ) == tuple(asdict(URL_MAP.server).values())  # fmt: skip
    assert (paths.RUNTIME_PREFIX, paths.WHEELS_PREFIX, paths.BUILD_PREFIX) == tuple(asdict(URL_MAP.store).values())
    assert paths.STATIC_PREFIXES == URL_MAP.static
    assert (EMBED_PREFIX, CHROME_PARAM, RUNTIME_PARAM_PREFIX) == (URL_MAP.embed, URL_MAP.params.chrome, URL_MAP.params.prefix)
    build = Build(id="b0000000000000001")
    assert build.card_path == f"{URL_MAP.store.build}b0000000000000001/card.png"
    assert build.download_path == f"{URL_MAP.server.download}b0000000000000001.zip"


def test_the_bundle_is_laid_out_by_the_map(tmp_path: Path) -> None:
    layout = BundleLayout("b0000000000000001", PYODIDE_VERSION)
    wheel = tmp_path / ("ab" * 32) / "datasette-0.65.5-py3-none-any.whl"
    assert layout.build_file("data/chinook.db", tmp_path).url == f"{URL_MAP.store.build}b0000000000000001/data/chinook.db"
    assert layout.runtime_file("pyodide.mjs", tmp_path).url == f"{URL_MAP.store.runtime}pyodide-{PYODIDE_VERSION}/pyodide.mjs"
    assert layout.wheel(wheel).url == f"{URL_MAP.store.wheels}{'ab' * 32}/{wheel.name}"
    assert layout.service_worker(tmp_path).url == URL_MAP.server.service_worker
    assert layout.web_app_manifest(tmp_path).url == URL_MAP.server.web_app_manifest


def test_the_report_link_the_check_expects_and_the_bundles_plugin_writes_is_the_maps() -> None:
    # The plugin runs in the reader's Pyodide, where this file is not: it keeps a copy, checked here.
    plugin = ast.parse(BUILTIN_PLUGINS["glasshouse_report"].read_text())
    copies = [
        node.value.value
        for node in plugin.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["REPORT_PATH"]
        and isinstance(node.value, ast.Constant)
    ]  # fmt: skip
    assert copies == [URL_MAP.server.report]
    assert CHECKED_REPORT_PATH == URL_MAP.server.report


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("export default { server: {} };", "must be strict JSON"),
        ('const map = {"server": {}};', "export default {...};"),
        ('export default {"server": {}};', "the map's keys must be"),
        (URL_MAP_MODULE.read_text().replace('"robots"', '"robot"'), "server must map exactly"),
        (URL_MAP_MODULE.read_text().replace('"/-/static/"', '"/-/static"'), "static must be a list of path prefixes"),
    ],
    ids=["not-json", "no-default-export", "missing-keys", "misspelt-key", "static-not-a-prefix"],
)
def test_a_malformed_map_is_refused_with_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(InvalidUrlMap, match="^url-map.mjs: ") as info:
        parse_url_map(text, "url-map.mjs")
    assert message in str(info.value)
