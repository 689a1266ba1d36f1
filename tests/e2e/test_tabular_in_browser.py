"""A CSV, a TSV, a JSON file and a two-sheet Excel workbook published through the form in Chromium,
built by a real worker, each read in a reader's browser; a CSV that does not parse fails with its line.

One test, so the five builds run back to back in one worker while the browser waits on each build page.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from gallery.models import Build
from gallery.services import moderation

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# Windows-1252 text (not valid UTF-8), a quoted comma, a row one value short (left out, said with its line).
BIRDS = "name,count,weight,notes\nHeron,3,1450.5,\"grey, tall\"\nSwift,12,42.1,screams\nWren,1\nZoë's owl,2,,hoots\n"
RIVERS = "river\tlength_km\tmouth\nDanube\t2850\tBlack Sea\nRhine\t1230\tNorth Sea\n"
STATIONS = [{"id": 1, "name": "North", "elevation": 12.5, "tags": ["coast"]}, {"id": 2, "name": "South", "elevation": 3}]
BROKEN = 'a,b\n1,2\n3,"never closed\n4,5\n'


def _workbook(path: Path) -> Path:
    book = Workbook()
    income = book.active
    income.title = "Income"
    income.append(["month", "amount"])
    income.append([datetime.date(2026, 1, 1), 1200])
    income.append([datetime.date(2026, 2, 1), 980.5])
    spending = book.create_sheet("Spending")
    spending.append(["item", "cost"])
    spending.append(["rent", 700])
    book.save(path)
    return path


def _publish(page: Any, app_url: str, path: Path, *, searchable: bool = False) -> str:
    """Fill and submit /publish/ with ``path``; return the build page's URL."""
    page.goto(f"{app_url}/publish/")
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=title]", f"Tabular {path.name}")
    if searchable:
        page.check("input[name=full_text_search]")
    page.click("#publish-button")
    page.wait_for_url(re.compile(r"/builds/[a-z0-9]{16}/$"), timeout=30_000)
    return page.url


def _made(page: Any) -> str:
    page.wait_for_selector("#made:not([hidden])")
    return page.inner_text("#made")


def _rows(reader: Any, url: str) -> list[dict[str, Any]]:
    return reader.evaluate(f"fetch({url!r}).then(r => r.json())")


def test_tabular_files_published_through_the_form_become_galleries_with_typed_tables(
    page: Any, live_gallery_server: Any, celery_worker: Any, tmp_path: Path, settings: Any
) -> None:
    # Five uploads from one address, queued at once.
    settings.UPLOAD_RATE_LIMIT = settings.BUILD_RATE_LIMIT_PER_ADDRESS = "100/h"
    settings.PUBLISHER_MAX_CONCURRENT_BUILDS = 5
    files = {
        "birds": (tmp_path / "birds.csv", True),
        "rivers": (tmp_path / "rivers.tsv", False),
        "stations": (tmp_path / "stations.json", False),
        "budget": (_workbook(tmp_path / "budget.xlsx"), False),
        "broken": (tmp_path / "broken.csv", False),
    }
    files["birds"][0].write_bytes(BIRDS.encode("cp1252"))
    files["rivers"][0].write_text(RIVERS)
    files["stations"][0].write_text(json.dumps(STATIONS))
    files["broken"][0].write_text(BROKEN)
    build_pages = {name: _publish(page, live_gallery_server.url, path, searchable=fts) for name, (path, fts) in files.items()}

    # --- The CSV that does not parse: the build page says where.
    page.goto(build_pages["broken"])
    page.wait_for_selector("#outcome :text('The build failed.')", timeout=180_000)
    assert "could not be read at line 3" in page.inner_text("#outcome")

    # --- The others: the build page says what was made, with the column types the build found.
    galleries = {}
    for name in ("birds", "rivers", "stations", "budget"):
        page.goto(build_pages[name])
        page.wait_for_selector("#outcome :text('waiting for a moderator')", timeout=180_000)
        build = Build.objects.select_related("gallery").get(pk=build_pages[name].rstrip("/").rsplit("/", 1)[1])
        galleries[name] = build.gallery
        made = _made(page)
        if name == "birds":
            assert "birds: 3 rows; columns: name (text), count (integer), weight (real), notes (text)" in made
            log = page.inner_text("#log")
            assert "read as Windows-1252" in log and "Skipped line 4: 2 values where the header has 4." in log
            assert "1 row was left out" in page.inner_text("#warnings") and "line 4" in page.inner_text("#warnings")
        elif name == "budget":
            assert "Income: 2 rows; columns: month (text), amount (real)" in made
            assert "Spending: 1 row; columns: item (text), cost (integer)" in made
        moderation.approve(build.gallery, build=build.pk)

    # --- A reader opens each gallery: the right rows, with their types, answered in the browser.
    reader = page.context.new_page()
    birds = galleries["birds"].url
    reader.goto(birds + "birds/birds?_search=heron")
    reader.wait_for_selector("table.rows-and-columns", timeout=120_000)
    assert reader.locator("input#_search[type=search]").count() == 1, "full-text search gives the table a search box"
    assert reader.inner_text("h3").strip().startswith("1 row where search matches")
    assert _rows(reader, "/birds/birds.json?_shape=array&_sort=name") == [
        {"rowid": 1, "name": "Heron", "count": 3, "weight": 1450.5, "notes": "grey, tall"},
        {"rowid": 2, "name": "Swift", "count": 12, "weight": 42.1, "notes": "screams"},
        {"rowid": 3, "name": "Zoë's owl", "count": 2, "weight": None, "notes": "hoots"},
    ]

    reader.goto(galleries["rivers"].url + "rivers/rivers")
    reader.wait_for_selector("table.rows-and-columns", timeout=120_000)
    assert reader.inner_text("h3").strip().startswith("2 rows")
    assert reader.locator("input#_search[type=search]").count() == 0, "no search box unless the publisher asked for one"
    assert _rows(reader, "/rivers/rivers.json?_shape=array&_sort=river&_col=length_km&_col=mouth") == [
        {"rowid": 1, "length_km": 2850, "mouth": "Black Sea"}, {"rowid": 2, "length_km": 1230, "mouth": "North Sea"},
    ]  # fmt: skip

    reader.goto(galleries["stations"].url + "stations/stations")
    reader.wait_for_selector("table.rows-and-columns", timeout=120_000)
    assert _rows(reader, "/stations/stations.json?_shape=array&_sort=id") == [
        {"rowid": 1, "id": 1, "name": "North", "elevation": 12.5, "tags": '["coast"]'},
        {"rowid": 2, "id": 2, "name": "South", "elevation": 3.0, "tags": None},
    ]

    reader.goto(galleries["budget"].url + "budget")
    reader.wait_for_selector("a:text-is('Spending')", timeout=120_000)
    reader.click("a:text-is('Income')")
    reader.wait_for_selector("table.rows-and-columns")
    assert reader.inner_text("h3").strip().startswith("2 rows")
    assert _rows(reader, "/budget/Spending.json?_shape=array") == [{"rowid": 1, "item": "rent", "cost": 700}]
    assert _rows(reader, "/budget/Income.json?_shape=array&_sort=month") == [
        {"rowid": 1, "month": "2026-01-01T00:00:00", "amount": 1200.0},
        {"rowid": 2, "month": "2026-02-01T00:00:00", "amount": 980.5},
    ]
