from __future__ import annotations

import pytest

from builder.metadata import MAX_METADATA_BYTES, InvalidMetadata, parse_metadata

PLUGINS = ["datasette-cluster-map"]


@pytest.mark.parametrize(
    "text",
    [
        "title: Music store\nlicense: CC BY 4.0\nlicense_url: https://creativecommons.org/licenses/by/4.0/\nsource: Chinook",
        '{"title": "Music store", "databases": {"chinook": {"queries": {"albums": "select * from Album"}}}}',
        "databases:\n  chinook:\n    tables:\n      Album:\n        sort: Title\n        label_column: Title\n",
        "plugins:\n  datasette-cluster-map:\n    latitude_column: lat\n",
        "databases:\n  chinook:\n    queries:\n      by_artist:\n        sql: select * from Album where ArtistId = :id\n        title: Albums by artist\n",
    ],
)
def test_it_accepts_datasette_metadata(text: str) -> None:
    assert isinstance(parse_metadata(text, database_name="chinook", plugins=PLUGINS), dict)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_blank_metadata_is_an_empty_mapping(text: str) -> None:
    assert parse_metadata(text, database_name="chinook", plugins=PLUGINS) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: [unclosed", "not valid YAML or JSON"),
        ('{"title": "x",}', "not valid JSON"),
        ("- a list\n- not a mapping", "must be a mapping"),
        ("colour: blue", "unknown key colour"),
        ("title: 3", "title must be text"),
        ("databases:\n  other: {}", "this gallery's database is called 'chinook'"),
        ("plugins:\n  datasette-vega: {}", "not chosen for this gallery"),
        ("databases:\n  chinook:\n    queries:\n      add:\n        sql: insert into t values (1)\n        write: true", "read-only"),
        ("databases:\n  chinook:\n    queries:\n      empty:\n        title: x", "needs an sql text"),
        ("allow:\n  id: root", "every gallery is public"),
        ("plugins:\n  datasette-cluster-map:\n    token:\n      $env: MAPBOX_TOKEN", "cannot hold secrets"),
    ],
)
def test_it_explains_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidMetadata, match=message):
        parse_metadata(text, database_name="chinook", plugins=PLUGINS)


def test_it_refuses_oversized_metadata() -> None:
    with pytest.raises(InvalidMetadata, match="larger than"):
        parse_metadata("title: " + "x" * MAX_METADATA_BYTES, database_name="chinook", plugins=PLUGINS)
