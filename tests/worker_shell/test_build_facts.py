"""``worker_shell.tasks.build_facts``: what the task stores from a build's manifest."""

from __future__ import annotations

import pytest

from worker_shell.tasks import build_facts

TABLES = [{"name": "Album", "rows": 347, "columns": ["AlbumId", "Title", "ArtistId"]}]


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            {"tables": TABLES, "card": {"key": "builds/b/card.png"}, "download_bytes": 123},
            {"tables": TABLES, "has_card": True, "download_bytes": 123},
        ),
        ({"files": []}, {"tables": [], "has_card": False, "download_bytes": None}),
        ({"tables": [], "card": None, "download_bytes": "12 MB"}, {"tables": [], "has_card": False, "download_bytes": None}),
    ],
    ids=["everything-reported", "older-bundle", "bad-size"],
)
def test_it_reads_tables_card_and_download_size_from_the_manifest(manifest: dict, expected: dict) -> None:
    assert build_facts(manifest) == expected
