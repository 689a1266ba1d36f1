"""Datasette metadata and plugin configuration given by a publisher, as YAML or JSON.

``parse_metadata`` turns the text from the upload form into a dict that the
bundle hands to Datasette (``Datasette(metadata=...)``), after checking that it
can work in a public, read-only gallery that runs in the reader's browser:

- top-level keys are Datasette's metadata keys (title, description, license,
  source, about and their ``_url``/``_html`` forms), ``databases`` and ``plugins``;
- ``databases`` may only describe the gallery's own database;
- canned queries must be read-only (``write: true`` cannot run: there is no server);
- no permission blocks (``allow``...): every gallery is public;
- no ``$env``/``$file`` secrets: everything in a bundle is readable by readers;
- ``plugins`` may only configure plugins chosen for the gallery.

Before any of that, the text itself is bounded, so a small text cannot cost minutes of
work or megabytes of storage: at most ``MAX_METADATA_BYTES`` of text, no YAML anchors or
aliases (``yaml.safe_load`` shares an aliased node, and every later walk or serialisation
expands it: nine aliases of nine levels are half a kilobyte of text and 9**9 values), at
most ``MAX_METADATA_DEPTH`` nested mappings and lists (checked while parsing, for YAML and
JSON alike, so a deeply nested text never reaches Python's recursion limit), and at most
``MAX_METADATA_JSON_BYTES`` once serialised as JSON, as the gallery stores it.

Errors raise ``InvalidMetadata`` whose ``args[0]`` tells the publisher what to fix.
Source: https://docs.datasette.io/en/0.65.x/metadata.html
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

#: Largest metadata text accepted, in bytes.
MAX_METADATA_BYTES = 64 * 1024
#: Deepest nesting of mappings and lists accepted, the top-level mapping counting 1. The deepest
#: real metadata is a plugin's settings inside a table's metadata (databases > db > tables >
#: table > plugins > plugin: 7 levels) or a datasette-dashboards chart's Vega-Lite spec (about
#: 15); 32 leaves room for both and stays far below Python's recursion limit, which the YAML
#: composer, the JSON decoder and the checks below all recurse towards.
MAX_METADATA_DEPTH = 32
#: Largest metadata accepted once serialised as JSON (bytes, UTF-8), as the gallery stores it and
#: the bundle ships it: twice ``MAX_METADATA_BYTES``, so YAML that is compact in text still fits
#: and only values that grow when written out (escapes) reach it.
MAX_METADATA_JSON_BYTES = 2 * MAX_METADATA_BYTES

_DESCRIPTIVE = {
    "title", "description", "description_html", "license", "license_url",
    "source", "source_url", "about", "about_url",
}  # fmt: skip
TOP_LEVEL_KEYS = _DESCRIPTIVE | {"databases", "plugins"}
DATABASE_KEYS = _DESCRIPTIVE | {"tables", "queries", "plugins"}
TABLE_KEYS = _DESCRIPTIVE | {
    "sort", "sort_desc", "size", "sortable_columns", "label_column", "facets",
    "fts_table", "fts_pk", "searchmode", "hidden", "columns", "units", "plugins",
}  # fmt: skip
QUERY_KEYS = _DESCRIPTIVE | {"sql", "params", "fragment", "hide_sql", "write", "on_success_message",
                             "on_success_redirect", "on_error_message", "on_error_redirect"}
PERMISSION_KEYS = {"allow", "allow_sql", "allow_down"}


class InvalidMetadata(ValueError):
    """The metadata cannot be used; ``args[0]`` says what to fix."""


def _too_deep(line: int, column: int) -> InvalidMetadata:
    return InvalidMetadata(
        f"The metadata nests mappings and lists more than {MAX_METADATA_DEPTH} levels deep "
        f"(at line {line}, column {column}); Datasette metadata never needs that many: flatten it."
    )


class _MetadataLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases and nesting deeper than ``MAX_METADATA_DEPTH``.

    Both are refused while the document is composed, before any value is built, so an alias
    bomb is never expanded and deep nesting never reaches the recursion limit.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            used = f"alias *{event.anchor}" if isinstance(event, yaml.AliasEvent) else f"anchor &{event.anchor}"
            raise InvalidMetadata(
                f"The metadata uses the YAML {used} (line {mark.line + 1}, column {mark.column + 1}): "
                "YAML anchors and aliases are not accepted; write the values out in full."
            )
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_METADATA_DEPTH:
            raise _too_deep(mark.line + 1, mark.column + 1)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


#: A JSON string (escapes included; unterminated at worst) or a bracket: strings are matched
#: whole so brackets inside them do not count.
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|[\[\]{}]')


def _check_json_depth(text: str) -> None:
    """Raise ``InvalidMetadata`` if JSON ``text`` nests deeper than ``MAX_METADATA_DEPTH``.

    Counted over the text before ``json.loads``, whose decoder recurses once per level and
    raises ``RecursionError`` around a thousand. Exact for valid JSON; invalid JSON is then
    refused by ``json.loads`` with its own message.
    """
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_METADATA_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                raise _too_deep(line, token.start() - text.rfind("\n", 0, token.start()))
        elif bracket in ("]", "}"):
            depth -= 1


def _load(text: str) -> Any:
    if len(text.encode("utf-8")) > MAX_METADATA_BYTES:
        raise InvalidMetadata(f"The metadata is larger than {MAX_METADATA_BYTES // 1024} KB.")
    try:
        # JSON when it looks like it: json.loads reads it faster than the YAML parser would.
        if text.lstrip().startswith("{"):
            _check_json_depth(text)
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidMetadata(
                    f"The metadata is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
                ) from exc
        try:
            return yaml.load(text, Loader=_MetadataLoader)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            problem = getattr(exc, "problem", None) or "it could not be parsed"
            raise InvalidMetadata(f"The metadata is not valid YAML or JSON: {problem}{at}.") from exc
    except InvalidMetadata:
        raise
    except ValueError as exc:
        # A value the parser cannot build: an integer of thousands of digits (Python's
        # int_max_str_digits), a date such as 2024-13-45.
        raise InvalidMetadata(
            f"The metadata has a value that cannot be read ({exc}): quote it to keep it as text."
        ) from exc


def _check_json_size(data: Any) -> None:
    """Raise ``InvalidMetadata`` unless ``data`` serialises to JSON within ``MAX_METADATA_JSON_BYTES``.

    Safe to run on anything ``_load`` returns: it holds no shared nodes, so the serialisation
    is about as long as the text.
    """
    try:
        serialised = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMetadata(
            "The metadata has a value JSON cannot hold (YAML reads some unquoted values as a date, "
            f"binary data, a set, NaN or infinity: {exc}); quote it to keep it as text."
        ) from exc
    size = len(serialised.encode("utf-8"))
    if size > MAX_METADATA_JSON_BYTES:
        raise InvalidMetadata(
            f"The metadata is {size // 1024} KB once written out as JSON, over the limit of "
            f"{MAX_METADATA_JSON_BYTES // 1024} KB: shorten it."
        )


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidMetadata(f"{where} must be a mapping of keys to values.")
    return value


def _check_keys(value: Any, allowed: set[str], where: str) -> dict:
    _mapping(value, where)
    forbidden = PERMISSION_KEYS & set(value)
    if forbidden:
        raise InvalidMetadata(
            f"{where} has {', '.join(sorted(forbidden))}: permissions do not apply, every gallery is public and read-only."
        )
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise InvalidMetadata(f"{where} has unknown key {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.")
    for key in _DESCRIPTIVE & set(value):
        if not isinstance(value[key], str):
            raise InvalidMetadata(f"{where}: {key} must be text.")
    return value


def _check_no_secrets(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key in ("$env", "$file"):
            if key in value:
                raise InvalidMetadata(
                    f"{where} uses {key}: a gallery has no server and its whole bundle is public, so it cannot hold secrets."
                )
        for key, item in value.items():
            _check_no_secrets(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_no_secrets(item, f"{where}[{index}]")


def _check_plugins(value: Any, plugins: list[str], where: str) -> None:
    if not isinstance(value, dict):
        raise InvalidMetadata(f"{where} must map plugin names to their settings.")
    for name, config in value.items():
        if name not in plugins:
            chosen = ", ".join(plugins) or "none"
            raise InvalidMetadata(f"{where} configures {name}, which is not chosen for this gallery (chosen: {chosen}).")
        if not isinstance(config, dict):
            raise InvalidMetadata(f"{where}.{name} must be a mapping of settings.")


def parse_metadata(text: str, *, database_name: str, plugins: list[str]) -> dict[str, Any]:
    """Parse and check publisher metadata (YAML, or JSON when it starts with ``{``).

    ``database_name`` is the gallery's database as named in Datasette URLs;
    ``plugins`` the chosen plugin names. Returns the metadata dict (``{}`` for
    blank text). Raises ``InvalidMetadata`` with a message for the publisher, first of
    all for text over ``MAX_METADATA_BYTES``, YAML anchors or aliases, nesting deeper than
    ``MAX_METADATA_DEPTH``, values JSON cannot hold, or JSON over ``MAX_METADATA_JSON_BYTES``.
    """
    if not text.strip():
        return {}
    data = _load(text)
    if data is None:
        return {}
    _check_json_size(data)
    _check_keys(data, TOP_LEVEL_KEYS, "The metadata")
    _check_no_secrets(data, "metadata")
    if "plugins" in data:
        _check_plugins(data["plugins"], plugins, "plugins")
    for name, database in _mapping(data.get("databases", {}), "databases").items():
        if name != database_name:
            raise InvalidMetadata(
                f"databases names {name!r}, but this gallery's database is called {database_name!r} (from the file name)."
            )
        _check_keys(database, DATABASE_KEYS, f"databases.{name}")
        if "plugins" in database:
            _check_plugins(database["plugins"], plugins, f"databases.{name}.plugins")
        for table, table_meta in _mapping(database.get("tables", {}), f"databases.{name}.tables").items():
            _check_keys(table_meta, TABLE_KEYS, f"databases.{name}.tables.{table}")
            if "plugins" in table_meta:
                _check_plugins(table_meta["plugins"], plugins, f"databases.{name}.tables.{table}.plugins")
        for query_name, query in _mapping(database.get("queries", {}), f"databases.{name}.queries").items():
            where = f"databases.{name}.queries.{query_name}"
            if isinstance(query, str):
                continue
            _check_keys(query, QUERY_KEYS, where)
            if not isinstance(query.get("sql"), str) or not query["sql"].strip():
                raise InvalidMetadata(f"{where} needs an sql text.")
            if query.get("write"):
                raise InvalidMetadata(f"{where} is a writable query: galleries are read-only, so it cannot run.")
    return data
