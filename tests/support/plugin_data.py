"""A SQLite database that gives every catalog plugin something to act on, the settings it needs,
and the groups of plugins that share one gallery in the checks.

Shared by the Node checks of the catalog (``tests/builder/test_catalog.py``) and the
browser checks (``tests/e2e/test_plugins_in_browser.py``), which import it as
``tests.support.plugin_data``. Both ask ``prebuilt_bundle`` for ``(plugin_database, plugins,
version, group_metadata(plugins))``, so each plugin set is built once per session.
"""

from __future__ import annotations

import datetime
import gzip
import json
import sqlite3
import struct
import time
import zlib
from pathlib import Path

from builder.catalog import plugins_for_version
from builder.metadata import parse_metadata

#: The database's name in the gallery's URLs (the file is ``plugins.db``).
DATABASE = "plugins"

#: Plugin settings the checks need (in a build they come from the publisher's metadata).
PLUGIN_SETTINGS = {
    "datasette-render-html": {"columns": ["html"]},
    "datasette-dashboards": {
        "overview": {
            "title": "Glasshouse overview",
            "description": "Notes and places",
            "charts": {
                "intro": {
                    "title": "About",
                    "library": "markdown",
                    "display": "## Dashboard notes\n\nSome *emphasis*.",
                },
                "note-count": {
                    "title": "Notes",
                    "db": "plugins",
                    "query": "select count(*) as count from notes",
                    "library": "metric",
                    "display": {"field": "count", "prefix": "", "suffix": " notes"},
                },
            },
        }
    },
}

#: Plugins whose browser check does not share the gallery of the version's other plugins, each with
#: the reason (its output would disturb other plugins' checks). Every other plugin of a version
#: shares one gallery: each one's own output is still there. A plugin listed here is checked on the
#: gallery of *every* plugin of its version instead: the build the Node checks boot, so no extra
#: build, and its own check (a table page, where every plugin renders) is not disturbed by the others.
#: The Node checks boot all the plugins of a version together, where pages are rendered and no script runs.
SEPARATE: dict[str, str] = {
    "datasette-plot": (
        "its script runs on every page, fetches the page's URL + .json?_size=max and reads rows[0]: "
        "on pages that are not tables (home, /-/search, .copyable, .Notebook) it throws an uncaught "
        "TypeError, which fails the checks of the plugins that own those pages"
    ),
}


def plugin_groups(version: str) -> list[tuple[str, ...]]:
    """The plugin sets whose galleries the browser checks of Datasette ``version`` use, in catalog order.

    One set of every plugin offered with ``version`` except those in ``SEPARATE``, then,
    if some offered plugin is in ``SEPARATE``, the set of every plugin offered with
    ``version`` (where those are checked); none for a version the catalog does not offer.
    """
    offered = tuple(plugins_for_version(version))
    shared = tuple(name for name in offered if name not in SEPARATE)
    return ([shared] if shared else []) + ([offered] if shared != offered else [])


def group_of(name: str, version: str) -> tuple[str, ...]:
    """The plugin set (``plugin_groups(version)``) whose gallery checks ``name``; ``KeyError`` if not offered.

    The first set that holds it: the shared one, or for a plugin in ``SEPARATE`` the set of all.
    """
    for group in plugin_groups(version):
        if name in group:
            return group
    raise KeyError(f"{name} is not offered with Datasette {version}")


def group_metadata(plugins: tuple[str, ...]) -> dict:
    """The metadata a publisher would type for ``plugins``: their ``PLUGIN_SETTINGS``, checked as the form does."""
    chosen = {name: PLUGIN_SETTINGS[name] for name in plugins if name in PLUGIN_SETTINGS}
    if not chosen:
        return {}
    return parse_metadata(json.dumps({"plugins": chosen}), database_name=DATABASE, plugins=list(plugins))


#: A table whose name, column and value are HTML and script (``hostile``, last in the database):
#: a gallery must show them as text and run none of them.
HOSTILE_TABLE = "<img src=x onerror=alert('table')>"
HOSTILE_COLUMN = "<script>alert('column')</script>"
HOSTILE_VALUE = "<svg onload=alert('value')>\"'><b>bold?</b>"

#: A timestamp about a day ago: datasette-render-timestamps only renders values within five years of now.
TIMESTAMP = int(time.time()) - 86400
TIMESTAMP_TEXT = datetime.datetime.fromtimestamp(TIMESTAMP, datetime.UTC).strftime("%B %d, %Y - %H:%M:%S UTC")


#: The video id of ``media`` row 1 (YouTube's own sample clip).
YOUTUBE_VIDEO = "aqz-KE-bpKQ"


#: The GeoJSON geometry of ``areas`` row 1: a rectangle over central London.
AREA_POLYGON = {
    "type": "Polygon",
    "coordinates": [[[-0.2, 51.45], [0.0, 51.45], [0.0, 51.55], [-0.2, 51.55], [-0.2, 51.45]]],
}


#: Rows of ``media``: (id, title, video, audio, query): YouTube watch URLs, MP3 URLs, and SQL a
#: reader may run. No host here is reached: these machines have no internet.
MEDIA_ROWS = [
    (
        1, "Garden tour", f"https://www.youtube.com/watch?v={YOUTUBE_VIDEO}&start=30",
        "https://example.com/audio/birdsong.mp3", "select title from notes where n > 3",
    ),
    (2, "Rain", "https://www.youtube.com/watch?v=M7lc1UVf-VE", "https://example.com/audio/rain.mp3", "not sql"),
]


#: The size in pixels of the one map tile in the database's MBTiles tables (``tiles``), and its colour.
TILE_SIZE = 256
TILE_RGB = (46, 139, 87)


def _png(size: int = 2, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A real ``size`` x ``size`` PNG of one colour (by default 2x2 red)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def make_plugin_database(path: Path) -> Path:
    """Write a SQLite database with something for every catalog plugin to act on.

    Tables: ``places`` (latitude/longitude and GeoJSON points, full-text indexed),
    ``areas`` (a GeoJSON polygon, full-text indexed), ``notes`` (Markdown, JSON, HTML,
    Unix timestamps, numbers; full-text indexed), ``events`` (iCalendar columns),
    ``images`` (a PNG), ``blobs`` (gzip bytes), ``media`` (``MEDIA_ROWS``: YouTube and
    MP3 URLs, SQL), ``recipes_fts4`` (an FTS4 index of its own) and MBTiles tables (``metadata``,
    ``tiles``: one ``TILE_SIZE`` tile of ``TILE_RGB``). Views for the security checks
    (``tests/e2e/test_gallery_security_in_browser.py``): ``runaway`` (a recursive CTE
    that never ends: valid SQL, stopped by Datasette's time limit) and ``place_names``
    (reads a full-text table, which ``trusted_schema=OFF`` refuses inside a view). Last,
    ``HOSTILE_TABLE`` with ``HOSTILE_COLUMN`` holding ``HOSTILE_VALUE``.
    """
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        create table places (id integer primary key, name text, latitude real, longitude real, geometry text);
        create virtual table places_fts using fts5(name, content="places", content_rowid="id");
        create table areas (id integer primary key, name text, geometry text);
        create virtual table areas_fts using fts5(name, content="areas", content_rowid="id");
        create table notes (
            id integer primary key, title text, body_markdown text, payload text, link text,
            html text, created integer, n integer
        );
        create virtual table notes_fts using fts5(title, body_markdown, content="notes", content_rowid="id");
        create table events (id integer primary key, event_name text, event_dtstart text, event_dtend text);
        create table images (id integer primary key, image blob);
        create table blobs (id integer primary key, data blob);
        create table media (id integer primary key, title text, video text, audio text, query text);
        create view runaway as
            with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c;
        create view place_names as select name from places_fts;
        """
    )
    conn.executemany(
        "insert into places values (?, ?, ?, ?, ?)",
        [
            (1, "London", 51.5074, -0.1278, json.dumps({"type": "Point", "coordinates": [-0.1278, 51.5074]})),
            (2, "Paris", 48.8566, 2.3522, json.dumps({"type": "Point", "coordinates": [2.3522, 48.8566]})),
        ],
    )
    conn.execute("insert into places_fts (rowid, name) select id, name from places")
    # A polygon, so that map plugins draw a shape (points are drawn as marker icons).
    conn.execute("insert into areas values (1, 'Central London', ?)", (json.dumps(AREA_POLYGON),))
    conn.execute("insert into areas_fts (rowid, name) select id, name from areas")
    conn.executemany(
        "insert into notes values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                1, "Tomato soup", "## Tomato soup\n\nSimmer *slowly*.",
                json.dumps({"serves": 4, "ingredients": ["tomato", "basil"]}),
                json.dumps({"href": "https://example.com/soup", "label": "Soup recipe"}),
                "<mark>highlighted</mark>", TIMESTAMP, 3,
            ),
            (2, "Bread", "Knead **well**.", json.dumps({"serves": 8}), None, "<em>plain</em>", TIMESTAMP, 5),
            (3, "Pesto", "Basil and pine nuts.", None, None, None, TIMESTAMP, 10),
        ],
    )
    conn.execute("insert into notes_fts (rowid, title, body_markdown) select id, title, body_markdown from notes")
    conn.execute("insert into events values (1, 'Launch party', '2030-05-01T18:00:00', '2030-05-01T21:00:00')")
    conn.execute("insert into images values (1, ?)", (_png(),))
    conn.execute("insert into blobs values (1, ?)", (gzip.compress(b"hello glasshouse", mtime=0),))
    conn.executemany("insert into media values (?, ?, ?, ?, ?)", MEDIA_ROWS)
    # An FTS4 index of its own (Datasette 0.65 hides it from datasette-search-all; 1.0a41 searches it too).
    conn.execute("create virtual table recipes_fts4 using fts4(title, body)")
    conn.executemany(
        "insert into recipes_fts4 (title, body) values (?, ?)",
        [("Tomato soup", "tomato tomato basil"), ("Tomato salad", "tomato and onion"), ("Bread", "flour"),
         ("Pesto", "basil and pine nuts"), ("Porridge", "oats"), ("Pancakes", "flour and eggs")],
    )
    # MBTiles (https://github.com/mapbox/mbtiles-spec): one tile covering the world at zoom 0.
    conn.executescript(
        """
        create table metadata (name text, value text);
        create table tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
        """
    )
    conn.executemany(
        "insert into metadata values (?, ?)",
        [("name", "Glasshouse tiles"), ("format", "png"), ("minzoom", "0"), ("maxzoom", "0"), ("center", "0,0,0")],
    )
    conn.execute("insert into tiles values (0, 0, 0, ?)", (_png(TILE_SIZE, TILE_RGB),))
    table, column = (name.replace('"', '""') for name in (HOSTILE_TABLE, HOSTILE_COLUMN))
    conn.execute(f'create table "{table}" ("{column}" text)')
    conn.execute(f'insert into "{table}" values (?)', (HOSTILE_VALUE,))
    conn.commit()
    conn.close()
    return path
