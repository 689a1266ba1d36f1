"""``builder.card.render_card``: the 1200×630 share card."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from builder.card import CARD_HEIGHT, CARD_WIDTH, render_card

CHINOOK_TABLES = [
    {"name": "Album", "rows": 347, "columns": ["AlbumId"]},
    {"name": "Track", "rows": 3503, "columns": ["TrackId"]},
    {"name": "Genre", "rows": 25, "columns": ["GenreId"]},
]


@pytest.mark.parametrize(
    ("title", "tables"),
    [
        ("Chinook", CHINOOK_TABLES),
        ("Données « ouvertes » — 音楽のデータベース 🎵 " * 12, CHINOOK_TABLES * 4),
        ("Supercalifragilistic" * 30, [{"name": "x" * 500, "rows": 10**12}]),
        ("", []),
    ],
    ids=["short", "long-unicode", "unbreakable", "empty"],
)
def test_it_writes_a_1200_by_630_png(tmp_path: Path, title: str, tables: list[dict]) -> None:
    out = render_card(title, tables, tmp_path / "card.png")
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (CARD_WIDTH, CARD_HEIGHT) == (1200, 630)


def test_cards_differ_by_title(tmp_path: Path) -> None:
    first = render_card("Chinook", CHINOOK_TABLES, tmp_path / "a.png").read_bytes()
    second = render_card("Northwind", CHINOOK_TABLES, tmp_path / "b.png").read_bytes()
    assert first != second
