from __future__ import annotations

import json
import re

import pytest

from builder.metadata import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_JSON_BYTES,
    InvalidMetadata,
    parse_metadata,
)
from tests.support.hostile_metadata import alias_bomb, deep_json

PLUGINS = ["datasette-cluster-map"]


def nested_yaml(depth: int) -> str:
    """Block YAML whose mappings nest ``depth`` levels, the top-level mapping included (under a plugin's settings)."""
    lines = ["plugins:", "  datasette-cluster-map:"]
    lines += [f"{'  ' * level}level{level}:" for level in range(2, depth)]
    return "\n".join(lines) + " deepest\n"


def nested_json(depth: int) -> str:
    """JSON whose objects and arrays nest ``depth`` levels, the top-level object included."""
    return deep_json(depth - 3)  # the top level, plugins and the plugin's settings


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


# --- Input that would cost far more than its size ------------------------------------------------


def test_an_alias_bomb_is_refused_before_it_is_expanded() -> None:
    text = alias_bomb(9)
    assert len(text) < 600, "half a kilobyte that would stand for 9**9 strings"
    with pytest.raises(InvalidMetadata) as refused:
        parse_metadata(text, database_name="chinook", plugins=PLUGINS)
    assert refused.value.args[0] == (
        "The metadata uses the YAML anchor &l0 (line 3, column 9): "
        "YAML anchors and aliases are not accepted; write the values out in full."
    )


@pytest.mark.parametrize(
    ("text", "used"),
    [
        pytest.param("title: &name Music store\ndescription: plain", "anchor &name", id="anchor only"),
        pytest.param("plugins:\n  datasette-cluster-map:\n    <<: *defaults\n", "alias *defaults", id="merge key"),
        pytest.param("plugins: {datasette-cluster-map: {a: &x [1], b: *x}}", "anchor &x", id="flow style"),
    ],
)
def test_any_yaml_anchor_or_alias_is_refused_with_the_way_out(text: str, used: str) -> None:
    with pytest.raises(
        InvalidMetadata, match=f"uses the YAML {re.escape(used)} .*not accepted; write the values out in full"
    ):
        parse_metadata(text, database_name="chinook", plugins=PLUGINS)


@pytest.mark.parametrize("nested", [nested_yaml, nested_json], ids=["yaml", "json"])
def test_nesting_up_to_the_limit_is_accepted(nested) -> None:
    metadata = parse_metadata(nested(MAX_METADATA_DEPTH), database_name="chinook", plugins=PLUGINS)
    assert metadata["plugins"]["datasette-cluster-map"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(nested_yaml(MAX_METADATA_DEPTH + 1), id="yaml one level too deep"),
        pytest.param(nested_json(MAX_METADATA_DEPTH + 1), id="json one level too deep"),
        pytest.param(deep_json(), id="json 30000 deep"),
        pytest.param('{"title": "Deep", "plugins": ' + "[" * 30_000, id="json 30000 deep, unclosed"),
        pytest.param("title: Deep\nplugins: " + "[" * 30_000, id="yaml flow 30000 deep"),
        pytest.param("plugins:\n" + "".join(f"{' ' * n}- \n" for n in range(1, 200)), id="yaml block 200 deep"),
    ],
)
def test_nesting_deeper_than_the_limit_is_refused_with_the_limit(text: str) -> None:
    with pytest.raises(InvalidMetadata, match=f"nests mappings and lists more than {MAX_METADATA_DEPTH} levels deep"):
        parse_metadata(text, database_name="chinook", plugins=PLUGINS)


def test_brackets_inside_json_strings_do_not_count_as_nesting() -> None:
    brackets = "[{" * MAX_METADATA_DEPTH + '\\"]'
    text = json.dumps({"title": "Brackets", "description": brackets})
    assert parse_metadata(text, database_name="chinook", plugins=PLUGINS)["description"] == brackets


def test_metadata_too_large_once_written_as_json_is_refused_with_its_size_and_the_limit() -> None:
    # Two bytes an item in YAML flow style, five in JSON ('"a", '): under the text limit, over the JSON one.
    items = 30_000
    text = "plugins: {datasette-cluster-map: {columns: [" + ",".join(["a"] * items) + "]}}"
    assert len(text) < MAX_METADATA_BYTES
    with pytest.raises(InvalidMetadata) as refused:
        parse_metadata(text, database_name="chinook", plugins=PLUGINS)
    assert refused.value.args[0] == (
        f"The metadata is {len(json.dumps({'plugins': {'datasette-cluster-map': {'columns': ['a'] * items}}})) // 1024} KB "
        f"once written out as JSON, over the limit of {MAX_METADATA_JSON_BYTES // 1024} KB: shorten it."
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-01-31", "has a value JSON cannot hold"),
        (".nan", "has a value JSON cannot hold"),
        ("!!binary aGVsbG8=", "has a value JSON cannot hold"),
        ("2024-13-45", "has a value that cannot be read"),
        ("1" * 5000, "has a value that cannot be read"),
    ],
)
def test_yaml_values_json_cannot_hold_are_refused_with_a_message(value: str, message: str) -> None:
    text = f"plugins:\n  datasette-cluster-map:\n    setting: {value}\n"
    with pytest.raises(InvalidMetadata, match=f"{message}.*quote it to keep it as text"):
        parse_metadata(text, database_name="chinook", plugins=PLUGINS)
    quoted = parse_metadata(
        f"plugins:\n  datasette-cluster-map:\n    setting: '{value}'\n", database_name="chinook", plugins=PLUGINS
    )
    assert quoted["plugins"]["datasette-cluster-map"]["setting"] == value


def test_a_dashboard_with_a_vega_lite_chart_in_a_tables_metadata_is_within_every_limit() -> None:
    """The deepest metadata the catalog's plugins take: datasette-dashboards charts, here also configured per table."""
    spec = {
        "layer": [
            {
                "mark": {"type": "line", "point": True},
                "encoding": {
                    "x": {"field": "month", "type": "temporal", "axis": {"format": "%b", "labelAngle": -45}},
                    "y": {"field": "total", "type": "quantitative", "scale": {"domain": [0, 100]}},
                    "color": {"condition": {"param": "hover", "field": "genre", "legend": {"orient": "bottom"}}},
                },
            }
        ]
    }
    dashboards = {
        "sales": {
            "title": "Sales",
            "charts": {"by-month": {"library": "vega-lite", "query": "select 1", "display": spec}},
        }
    }
    metadata = {"databases": {"chinook": {"tables": {"Invoice": {"plugins": {"datasette-dashboards": dashboards}}}}}}
    assert parse_metadata(json.dumps(metadata), database_name="chinook", plugins=["datasette-dashboards"]) == metadata
