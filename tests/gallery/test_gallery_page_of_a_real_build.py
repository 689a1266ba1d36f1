"""The gallery page of a gallery the real builder built shows every fact it promises.

The other gallery page tests (test_gallery_page.py) write the facts onto the build row
themselves, so they pass whether or not a build records them: the zip's size once went
missing for every real build that way. Here the galleries come from the session's real
builds (``published_gallery``, which records a build's facts as the worker does), and
each fact on the page is checked against its source: the SQLite file for the tables and
their row counts, the request for the plugins and the Datasette version, the stored zip
and card for the download and the share card. No new build: both combinations are ones
the browser tests and the catalog's checks build anyway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import escape

from builder.catalog import DEFAULT_DATASETTE_VERSION
from builder.download import download_key
from builder.storage import LocalStorage
from builder.tables import quote_identifier, user_tables
from gallery.models import Gallery
from tests.support.plugin_data import group_metadata, group_of


def row_counts(database: Path) -> dict[str, int]:
    """``{table: rows}`` of every table the gallery page lists (``builder.tables.user_tables``), counted here."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {
            name: conn.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()[0]
            for name, _columns in user_tables(conn)
        }
    finally:
        conn.close()


def chinook(shared_data: Path, plugin_database: Path) -> tuple[Path, tuple[str, ...], dict[str, Any]]:
    """The Chinook sample, no plugins: what most browser tests open."""
    return shared_data / "chinook.sqlite", (), {}


def plugin_checks(shared_data: Path, plugin_database: Path) -> tuple[Path, tuple[str, ...], dict[str, Any]]:
    """The plugin checks' gallery of the default Datasette (every plugin but the separate ones)."""
    group = group_of("datasette-cluster-map", DEFAULT_DATASETTE_VERSION)
    return plugin_database, group, group_metadata(group)


@pytest.mark.parametrize("combination", [chinook, plugin_checks], ids=["chinook", "plugin-checks"])
def test_a_real_build_fills_every_fact_the_gallery_page_shows(
    client: Any,
    published_gallery: Callable[..., Gallery],
    shared_store: Path,
    shared_data: Path,
    plugin_database: Path,
    combination: Callable[..., tuple[Path, tuple[str, ...], dict[str, Any]]],
) -> None:
    database, plugins, metadata = combination(shared_data, plugin_database)
    gallery = published_gallery(database, plugins, DEFAULT_DATASETTE_VERSION, metadata, title="A real build")
    build = gallery.live_build
    assert build is not None
    response = client.get(reverse("gallery:detail", args=[gallery.id]))
    assert response.status_code == 200
    page = response.content.decode()

    assert "<h1>A real build</h1>" in page
    counts = row_counts(database)
    assert counts, f"{database.name} has no table to show"
    for name, rows in counts.items():
        assert f"<td>{escape(name)}</td><td>{rows:,}</td>" in page, f"table {name} with {rows:,} rows"
    for plugin in plugins:
        assert f'<li><a href="{reverse("gallery:plugins")}#{plugin}">{plugin}</a></li>' in page, plugin
    if not plugins:
        assert "No plugins: plain Datasette." in page
    assert f"Datasette {DEFAULT_DATASETTE_VERSION}" in page
    built = build.finished_at or build.created_at
    assert f"built {built:%Y-%m-%d %H:%M} UTC" in page

    store = LocalStorage(shared_store)
    zip_size = store.size(download_key(build.id))
    assert f'id="download-link" href="{gallery.url.rstrip("/")}{build.download_path}"' in page
    assert f"Download the whole gallery (.zip, {filesizeformat(zip_size)})" in page, "the zip's size"
    card = f"builds/{build.id}/card.png"
    assert store.exists(card), "the build stored a share card"
    card_url = gallery.url.rstrip("/") + build.card_path
    assert f'<img class="card-image" src="{card_url}"' in page, "the share card"
    assert f'<meta property="og:image" content="{card_url}">' in page
    assert gallery.pinned_url(build.id) in page
