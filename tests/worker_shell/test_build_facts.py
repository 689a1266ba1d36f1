"""``worker_shell.tasks.build_facts``: what the task stores from a build's manifest."""

from __future__ import annotations

import pytest

from worker_shell.tasks import build_facts

TABLES = [{"name": "Album", "rows": 347, "columns": ["AlbumId", "Title", "ArtistId"]}]
SCAN = [{"table": "Customer", "column": "Email", "kind": "email", "count": 59, "sampled": 59,
         "examples": ["l***@e***.br", "l***@s***.de"]}]  # fmt: skip
NOTHING = {"tables": [], "has_card": False, "download_bytes": None, "scan_flags": [], "warnings": []}
WAL_WARNING = "This database was in WAL mode."


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            {
                "tables": TABLES,
                "card": {"key": "builds/b/card.png"},
                "download": {"key": "builds/b/download.zip", "size": 123},
                "scan": SCAN,
                "warnings": [WAL_WARNING],
            },
            {"tables": TABLES, "has_card": True, "download_bytes": 123, "scan_flags": SCAN, "warnings": [WAL_WARNING]},
        ),
        ({"files": []}, NOTHING),
        ({"tables": [], "card": None, "download": {"key": "builds/b/download.zip", "size": "12 MB"}}, NOTHING),
        ({"tables": [], "scan": {"Customer.Email": "email"}}, NOTHING),
        ({"tables": [], "warnings": "WAL"}, NOTHING),
    ],
    ids=["everything-reported", "older-bundle", "bad-size", "bad-scan", "bad-warnings"],
)
def test_it_reads_tables_card_download_size_and_scan_flags_from_the_manifest(manifest: dict, expected: dict) -> None:
    assert build_facts(manifest) == expected
