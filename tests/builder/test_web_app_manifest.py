"""A gallery's web app manifest (``builder.web_app_manifest``) and the files ``builder.bundle`` writes for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from builder.bundle import BundleLayout, runtime_config, write_generated_files, write_web_app_manifest
from builder.card import BACKGROUND_COLOR, THEME_COLOR, render_icon, title_initials
from builder.pyodide import PYODIDE_VERSION
from builder.storage import compressible, content_type_for
from builder.web_app_manifest import (
    DESCRIPTION_MAX,
    ICON_SIZES,
    NAME_MAX,
    SHORT_NAME_MAX,
    WEB_APP_MANIFEST_URL,
    WebAppIcon,
    bounded,
    short_name,
    web_app_manifest,
)

BUILD = "b0000000000000001"
ICONS = [WebAppIcon(f"/_build/{BUILD}/icon-{size}.png", size) for size in ICON_SIZES]


def test_the_manifest_makes_the_gallery_origin_an_installable_standalone_app() -> None:
    manifest = json.loads(web_app_manifest("Chinook music store", "A record shop's sales", ICONS).to_json())
    assert manifest == {
        "id": "/",
        "name": "Chinook music store",
        "short_name": "Chinook",
        "description": "A record shop's sales",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {"src": f"/_build/{BUILD}/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": f"/_build/{BUILD}/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
        ],
    }
    # The share card's accent and paper, as CSS colours.
    assert (THEME_COLOR, BACKGROUND_COLOR) == ("#2358c9", "#fbfcfe")


def test_a_hostile_title_and_description_are_bounded_one_line_text_in_the_json() -> None:
    title = 'Chinook </script><script>alert(1)</script>"\u0000\u202e\n\t' + "Supercalifragilistic " * 2000
    manifest = web_app_manifest(title, "line one\r\nline two " + "x" * 100_000, ICONS)
    assert len(manifest.name) <= NAME_MAX and manifest.name.endswith("…")
    assert len(manifest.short_name) <= SHORT_NAME_MAX
    assert len(manifest.description) <= DESCRIPTION_MAX and manifest.description.startswith("line one line two ")
    for text in (manifest.name, manifest.short_name, manifest.description):
        assert not any(c in text for c in "\u0000\u202e\n\r\t"), repr(text)
    # JSON keeps the markup as text; the parsed manifest says exactly what the dataclass does.
    parsed = json.loads(manifest.to_json())
    assert parsed["name"] == manifest.name
    assert parsed["name"].startswith('Chinook </script><script>alert(1)</script>" Supercalifragilistic')
    assert len(manifest.to_json().encode()) < 2048


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Chinook", "Chinook"),
        ("Shared chinook.sqlite", "Shared"),
        ("Exactly 12 c", "Exactly 12 c"),
        ("Supercalifragilistic", "Supercalifr…"),
        ("  ", "Untitled"),
        ("音楽のデータベースと売上の記録です", "音楽のデータベースと売…"),
    ],
)
def test_the_short_name_is_whole_words_that_fit_a_launcher(title: str, expected: str) -> None:
    assert short_name(title) == expected
    assert len(expected) <= SHORT_NAME_MAX


def test_bounded_cuts_at_a_word_when_one_ends_late_enough() -> None:
    assert bounded("alpha beta gamma delta", 15) == "alpha beta…"
    assert bounded("alphabetagammadelta epsilon", 15) == "alphabetagamma…"
    assert bounded("  short\n", 15) == "short"


def test_an_empty_title_still_names_the_app() -> None:
    manifest = web_app_manifest("", "", ICONS)
    assert (manifest.name, manifest.short_name, manifest.description) == ("Untitled gallery", "Untitled", "")


@pytest.mark.parametrize(
    ("title", "initials"),
    [("Chinook music store", "CM"), ("chinook", "C"), ("«Données» ouvertes", "DO"), ("音楽のデータ", "音"), ("!!!", "!"), ("", "G")],
)
def test_the_icon_shows_the_titles_initials(title: str, initials: str) -> None:
    assert title_initials(title) == initials


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icons_are_square_pngs_in_the_cards_colours(tmp_path: Path, size: int) -> None:
    out = render_icon("Chinook music store " * 50, size, tmp_path / f"icon-{size}.png")
    with Image.open(out) as image:
        assert (image.format, image.size) == ("PNG", (size, size))
        rgb = image.convert("RGB")
        assert rgb.getpixel((size // 2, 1)) == (0x23, 0x58, 0xC9), "the card's accent band along the top"
        assert rgb.getpixel((1, size - 2)) == (0xFB, 0xFC, 0xFE), "the card's paper"
        assert len(rgb.getcolors(size * size) or []) > 2, "initials drawn on it"


def test_the_bundle_writes_the_icons_and_the_manifest_served_at_the_origins_root(tmp_path: Path) -> None:
    layout = BundleLayout(BUILD, PYODIDE_VERSION)
    icons = {size: render_icon("Chinook", size, tmp_path / f"icon-{size}.png") for size in ICON_SIZES}
    entries = write_web_app_manifest(layout, tmp_path, title="Chinook", description="Music", icons=icons)
    assert [(entry.key, entry.url) for entry in entries] == [
        (f"builds/{BUILD}/icon-192.png", f"/_build/{BUILD}/icon-192.png"),
        (f"builds/{BUILD}/icon-512.png", f"/_build/{BUILD}/icon-512.png"),
        (f"builds/{BUILD}/manifest.webmanifest", "/manifest.webmanifest"),
    ]
    assert [content_type_for(entry.key) for entry in entries] == ["image/png", "image/png", "application/manifest+json"]
    assert compressible(entries[-1].key) and not compressible(entries[0].key)
    manifest = json.loads(entries[-1].path.read_text(encoding="utf-8"))
    assert [icon["src"] for icon in manifest["icons"]] == [entry.url for entry in entries[:2]]
    assert WEB_APP_MANIFEST_URL == "/manifest.webmanifest"


def test_without_icons_there_is_no_manifest_and_no_page_links_one(tmp_path: Path) -> None:
    layout = BundleLayout(BUILD, PYODIDE_VERSION)
    assert write_web_app_manifest(layout, tmp_path, title="Chinook", description="", icons={}) == []
    _, index = write_generated_files(layout, tmp_path, {}, "Chinook", installable=False)
    assert 'rel="manifest"' not in index.path.read_text()


def test_the_bootstrap_page_and_the_runtime_config_link_the_manifest(tmp_path: Path) -> None:
    layout = BundleLayout(BUILD, PYODIDE_VERSION)
    database = tmp_path / "chinook.db"
    database.write_bytes(b"x")
    stdlib = layout.runtime_file("python_stdlib.zip", tmp_path / "python_stdlib.zip")
    precache = [{"url": f"{layout.build_url}data/chinook.db", "size": 1, "integrity": "sha256-x"}]
    config = runtime_config(
        layout, files=[stdlib], precache=precache, packages=("datasette",), database=database, database_sha256="00" * 32,
        metadata={}, policy="default-src 'self'", installable=True,
    )  # fmt: skip
    assert config["webAppManifest"] == {"url": "/manifest.webmanifest", "themeColor": THEME_COLOR}
    _, index = write_generated_files(layout, tmp_path, config, "Chinook", installable=True)
    page = index.path.read_text()
    head = page[page.index("<head>") : page.index("</head>")]
    assert '<link rel="manifest" href="/manifest.webmanifest">' in head
    assert f'<meta name="theme-color" content="{THEME_COLOR}">' in head
    assert "__WEB_APP_MANIFEST__" not in page
    assert runtime_config(
        layout, files=[stdlib], precache=precache, packages=("datasette",), database=database, database_sha256="00" * 32,
        metadata={}, policy="",
    )["webAppManifest"] is None  # fmt: skip
