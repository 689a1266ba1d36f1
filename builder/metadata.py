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

Errors raise ``InvalidMetadata`` whose ``args[0]`` tells the publisher what to fix.
Source: https://docs.datasette.io/en/0.65.x/metadata.html
"""

from __future__ import annotations

import json
from typing import Any

import yaml

#: Largest metadata text accepted, in bytes.
MAX_METADATA_BYTES = 64 * 1024

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


def _load(text: str) -> Any:
    if len(text.encode("utf-8")) > MAX_METADATA_BYTES:
        raise InvalidMetadata(f"The metadata is larger than {MAX_METADATA_BYTES // 1024} KB.")
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidMetadata(f"The metadata is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or "it could not be parsed"
        raise InvalidMetadata(f"The metadata is not valid YAML or JSON: {problem}{at}.") from exc


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
    blank text). Raises ``InvalidMetadata`` with a message for the publisher.
    """
    if not text.strip():
        return {}
    data = _load(text)
    if data is None:
        return {}
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
