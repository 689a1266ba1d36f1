"""``worker_shell.tasks.build_facts``: what the task stores from a build's manifest.

A manifest whose fields are of the wrong type never gets here: ``builder.manifest`` refuses it
(tests/builder/test_manifest.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder.manifest import Manifest
from builder.pyodide import PYODIDE_VERSION
from worker_shell.tasks import build_facts

TABLES = [{"name": "Album", "rows": 347, "columns": ["AlbumId", "Title", "ArtistId"]}]
SCAN = [{"table": "Customer", "column": "Email", "kind": "email", "count": 59, "sampled": 59,
         "examples": ["l***@e***.br", "l***@s***.de"]}]  # fmt: skip
NOTHING = {"tables": [], "has_card": False, "download_bytes": None, "scan_flags": [], "warnings": []}
WAL_WARNING = "This database was in WAL mode."
#: What every manifest holds; the facts come from the fields builds added later.
OLDER: dict[str, Any] = {
    "build_id": "b", "pyodide_version": PYODIDE_VERSION, "datasette_version": "0.65.5", "plugins": [],
    "database": {"name": "chinook", "key": "builds/b/data/chinook.db", "tables": ["Album"], "views": []},
    "source_sha256": "0" * 64, "datasette_settings": {}, "metadata": {}, "files": [], "first_visit_bytes": 0,
}  # fmt: skip


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            {
                **OLDER,
                "tables": TABLES,
                "card": {"key": "builds/b/card.png", "url": "/_build/b/card.png"},
                "download": {"key": "builds/b/download.zip", "size": 123},
                "scan": SCAN,
                "warnings": [WAL_WARNING],
            },
            {"tables": TABLES, "has_card": True, "download_bytes": 123, "scan_flags": SCAN, "warnings": [WAL_WARNING]},
        ),
        (OLDER, NOTHING),
        ({**OLDER, "tables": [], "card": None, "download": None}, NOTHING),
    ],
    ids=["everything-reported", "older-bundle", "nothing-reported"],
)
def test_it_reads_tables_card_download_size_and_scan_flags_from_the_manifest(manifest: dict, expected: dict) -> None:
    assert build_facts(Manifest.from_json(json.dumps(manifest))) == expected
