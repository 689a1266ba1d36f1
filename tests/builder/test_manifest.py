"""``builder.manifest``: a build's manifest.json written and read in one place, malformed ones refused.

A real build's manifest is checked in test_bundle.py; its readers in test_download.py,
tests/worker_shell/test_build_facts.py and the gallery's tests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder.manifest import (
    BrotliCopy,
    DownloadZip,
    GzipCopy,
    InvalidManifest,
    Manifest,
    ManifestDatabase,
    ManifestFile,
    StoredImage,
)
from builder.pyodide import PYODIDE_VERSION

BUILD = "b0000000000000007"

#: A manifest as the first builds that listed URLs wrote it: none of the later fields.
OLDEST: dict[str, Any] = {
    "build_id": BUILD,
    "pyodide_version": PYODIDE_VERSION,
    "datasette_version": "0.65.5",
    "plugins": ["datasette-vega"],
    "database": {"name": "chinook", "key": f"builds/{BUILD}/data/chinook.db", "tables": ["Album"], "views": []},
    "source_sha256": "0" * 64,
    "datasette_settings": {"num_sql_threads": 0},
    "metadata": {"title": "Chinook"},
    "files": [{"key": f"builds/{BUILD}/index.html", "url": "/index.html", "size": 10, "sha256": "1" * 64}],
    "first_visit_bytes": 10,
}

EVERYTHING = Manifest(
    build_id=BUILD,
    pyodide_version=PYODIDE_VERSION,
    datasette_version="0.65.5",
    plugins=("datasette-pretty-json",),
    database=ManifestDatabase(name="chinook", key=f"builds/{BUILD}/data/chinook.db", tables=("Album",), views=("v",)),
    source_sha256="0" * 64,
    datasette_settings={"num_sql_threads": 0, "sql_time_limit_ms": 1000},
    content_security_policy="default-src 'self'",
    metadata={"title": "Chinook", "license": "CC BY 4.0"},
    tables=({"name": "Album", "rows": 347, "columns": ["AlbumId", "Title", "ArtistId"]},),
    scan=({"table": "Customer", "column": "Email", "kind": "email", "count": 59, "sampled": 59,
           "examples": ["l***@e***.br"]},),
    card=StoredImage(key=f"builds/{BUILD}/card.png", url=f"/_build/{BUILD}/card.png"),
    files=(
        ManifestFile(key=f"builds/{BUILD}/index.html", url="/index.html", size=10, sha256="1" * 64,
                     gzip=GzipCopy(key=f"builds/{BUILD}/index.html.gz", size=8),
                     brotli=BrotliCopy(key=f"builds/{BUILD}/index.html.br", size=6)),
        ManifestFile(key="wheels/ab/x-1-py3-none-any.whl", url="/_wheels/ab/x-1-py3-none-any.whl", size=5,
                     sha256="ab"),
    ),
    first_visit_bytes=15,
    warnings=("This database was in WAL mode.",),
    download=DownloadZip(key=f"builds/{BUILD}/download.zip", size=123),
)  # fmt: skip


def test_a_manifest_reads_back_as_it_was_written() -> None:
    text = EVERYTHING.to_json()
    assert Manifest.from_json(text) == EVERYTHING
    assert Manifest.from_json(text.encode()) == EVERYTHING
    assert json.loads(text) == EVERYTHING.to_dict()
    assert Manifest.from_dict(EVERYTHING.to_dict()) == EVERYTHING


def test_the_json_keeps_the_field_order_and_lists_the_copies_only_where_there_are_some() -> None:
    data = json.loads(EVERYTHING.to_json())
    assert list(data) == [
        "build_id", "pyodide_version", "datasette_version", "plugins", "database", "source_sha256",
        "datasette_settings", "content_security_policy", "metadata", "tables", "scan", "card", "files",
        "first_visit_bytes", "warnings", "download",
    ]  # fmt: skip
    assert data["files"][0]["gzip"] == {"key": f"builds/{BUILD}/index.html.gz", "size": 8}
    assert data["files"][0]["brotli"] == {"key": f"builds/{BUILD}/index.html.br", "size": 6}
    assert "gzip" not in data["files"][1] and "brotli" not in data["files"][1]
    assert data["card"] == {"key": f"builds/{BUILD}/card.png", "url": f"/_build/{BUILD}/card.png"}


def test_an_older_manifest_reads_with_the_defaults_of_the_fields_it_lacks() -> None:
    manifest = Manifest.from_json(json.dumps(OLDEST))
    assert (manifest.content_security_policy, manifest.card, manifest.download) == (None, None, None)
    assert (manifest.tables, manifest.scan, manifest.warnings) == ((), (), ())
    assert manifest.files == (ManifestFile(key=f"builds/{BUILD}/index.html", url="/index.html", size=10, sha256="1" * 64),)
    assert manifest.plugins == ("datasette-vega",)
    # null is read as missing: the card of a build that drew none.
    assert Manifest.from_json(json.dumps({**OLDEST, "card": None, "download": None})).card is None


def without(name: str) -> dict[str, Any]:
    return {key: value for key, value in OLDEST.items() if key != name}


def with_file(**entry: object) -> dict[str, Any]:
    return {**OLDEST, "files": [*OLDEST["files"], entry]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"{not json", "manifest.json is not JSON"),
        (b"\xff\xfe", "manifest.json is not JSON"),
        (b"[]", "is not a bundle manifest: not a JSON object"),
        (json.dumps(without("files")), "has no files"),
        (json.dumps(without("build_id")), "has no build_id"),
        (json.dumps({**OLDEST, "metadata": ["title"]}), "metadata that is not an object"),
        (json.dumps({**OLDEST, "plugins": "datasette-vega"}), "plugins that is not a list"),
        (json.dumps({**OLDEST, "plugins": [1]}), "plugins that is not a list of strings"),
        (json.dumps({**OLDEST, "database": {"name": "chinook"}}), "has no key"),
        (json.dumps(with_file(key=f"builds/{BUILD}/x.js", size=1, sha256="0")), "without key, url and size"),
        (json.dumps(with_file(key=f"builds/{BUILD}/x.js", url="/x.js", size="1", sha256="0")), "size that is not a whole"),
        (json.dumps(with_file(key=f"builds/{BUILD}/x.js", url="/x.js", size=True, sha256="0")), "size that is not a whole"),
        (json.dumps({**OLDEST, "download": {"key": "builds/b/download.zip", "size": "12 MB"}}), "size that is not a"),
        (json.dumps({**OLDEST, "scan": {"Customer.Email": "email"}}), "scan that is not a list"),
        (json.dumps({**OLDEST, "tables": ["Album"]}), "tables that is not a list of objects"),
        (json.dumps({**OLDEST, "warnings": "WAL"}), "warnings that is not a list"),
        (json.dumps({**OLDEST, "card": "card.png"}), "card that is not an object"),
        (json.dumps(with_file(key="a.js", url="/a.js", size=1, sha256="0", brotli="a.js.br")), "brotli that is not an object"),
        (json.dumps(with_file(key="a.js", url="/a.js", size=1, sha256="0", brotli={"key": "a.js.br"})), "has no size"),
    ],
    ids=["not-json", "not-utf8", "not-an-object", "no-files", "no-build-id", "bad-metadata", "bad-plugins",
         "bad-plugin-name", "database-without-key", "file-without-url", "size-as-text", "size-as-boolean",
         "download-size-as-text", "bad-scan", "bad-tables", "bad-warnings", "bad-card", "brotli-as-text",
         "brotli-without-size"],
)  # fmt: skip
def test_a_malformed_manifest_is_refused_with_one_error_saying_what_is_wrong(text: str | bytes, message: str) -> None:
    with pytest.raises(InvalidManifest, match=message):
        Manifest.from_json(text)


def test_the_error_names_the_manifest_it_read_and_is_a_value_error() -> None:
    with pytest.raises(InvalidManifest, match=f"^builds/{BUILD}/manifest.json has no files$") as refused:
        Manifest.from_json(json.dumps(without("files")), f"builds/{BUILD}/manifest.json")
    assert isinstance(refused.value, ValueError), "gallery.services.garbage and gallery.content catch ValueError"
