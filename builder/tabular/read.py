"""Reading the tabular files a publisher may upload instead of a SQLite database: CSV, TSV, JSON (an
array of objects), newline-delimited JSON and Excel ``.xlsx``.

Each reader yields ``Sheet`` objects: one per file, or one per worksheet of a workbook, with the
rows as dicts keyed by column name. Rows that cannot become a table row are skipped and said
(``Skipped``: the line or row number and what was wrong); text that does not parse at all raises
``InvalidTabularFile`` with the line number. Text is read as UTF-8 (a BOM is dropped), then as
UTF-16 when a UTF-16 BOM says so, else as Windows-1252, and the chosen encoding is reported.

Runs in the conversion's child process (``builder.tabular.child``), under its memory and CPU limits.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Upload suffixes and the format each means.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".xlsx": "xlsx",
}
#: The largest CSV field, in characters (Python's default is 131,072; a long text cell may exceed it).
MAX_FIELD_CHARS = 16 * 1024 * 1024
#: Skipped rows listed one by one in the report; more are only counted.
LISTED_SKIPS = 20


class InvalidTabularFile(ValueError):
    """The file cannot become tables; ``args[0]`` says what is wrong (with the line number) and what to do."""


@dataclass
class Skipped:
    """A row left out: ``where`` (``"line 17"``, ``"row 9 of sheet Prices"``) and ``why``."""

    where: str
    why: str


@dataclass
class Sheet:
    """One table to make: ``name``, ``columns`` in order, and ``rows`` (dicts keyed by column), read lazily.

    ``skipped`` fills as ``rows`` is read; ``typed`` says the values carry their own types (Excel)
    rather than text whose type is to be detected (CSV).
    """

    name: str
    columns: list[str]
    rows: Iterator[dict[str, Any]]
    typed: bool = False
    skipped: list[Skipped] = field(default_factory=list)


def format_of(filename: str) -> str | None:
    """The tabular format of a file name (``FORMATS``, any case), or ``None`` if it names none."""
    return FORMATS.get(Path(filename).suffix.lower())


def detect_encoding(path: Path) -> str:
    """The encoding to read the text file at ``path`` with: ``"utf-8-sig"``, ``"utf-16"`` or ``"cp1252"``.

    UTF-8 (with or without a BOM) when every byte decodes as UTF-8; UTF-16 when the file starts
    with a UTF-16 byte-order mark; otherwise Windows-1252, the encoding of text that spreadsheet
    programs on Windows export (its five undefined bytes are refused when read).
    """
    with path.open("rb") as fh:
        start = fh.read(4)
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8-sig"


def _text(path: Path, encoding: str) -> io.TextIOWrapper:
    return open(path, encoding=encoding, newline="")


def read_sheets(path: Path, fmt: str, *, table_name: str) -> tuple[list[Sheet], str]:
    """The tables in the file at ``path`` of format ``fmt`` (``FORMATS``); return ``(sheets, encoding)``.

    ``table_name`` names the one table of a CSV, TSV or JSON file; a workbook's tables are named
    after its sheets. ``encoding`` is ``detect_encoding``'s answer, or ``""`` for a workbook.
    Raises ``InvalidTabularFile``. The rows are read lazily: iterate each sheet's ``rows`` while
    the file is still there.
    """
    if fmt == "xlsx":
        return read_workbook(path), ""
    encoding = detect_encoding(path)
    if fmt in ("csv", "tsv"):
        return [read_delimited(path, encoding, "\t" if fmt == "tsv" else ",", table_name)], encoding
    if fmt == "json":
        return [read_json_array(path, encoding, table_name)], encoding
    if fmt == "ndjson":
        return [read_ndjson(path, encoding, table_name)], encoding
    raise InvalidTabularFile(f"Files of format {fmt!r} cannot be published.")


def unique_columns(names: list[Any]) -> list[str]:
    """Header cells as column names: stripped, blanks named ``column_<n>`` (1-based), repeats ``<name>_2``..."""
    columns: list[str] = []
    for index, raw in enumerate(names, start=1):
        name = str(raw).strip() if raw is not None else ""
        name = name or f"column_{index}"
        base, n = name, 2
        while name in columns:
            name, n = f"{base}_{n}", n + 1
        columns.append(name)
    return columns


def read_delimited(path: Path, encoding: str, delimiter: str, table_name: str) -> Sheet:
    """A CSV (``delimiter`` ``","``) or TSV (``"\\t"``) file as one sheet; its first non-blank line is the header.

    Empty cells become NULL. A line with a different number of values than the header is
    skipped and said; blank lines are passed over. Text that does not parse (a quote left open,
    a NUL byte, a field over ``MAX_FIELD_CHARS``) raises ``InvalidTabularFile`` with its line.
    """
    kind = "TSV" if delimiter == "\t" else "CSV"
    csv.field_size_limit(MAX_FIELD_CHARS)
    fh = _text(path, encoding)
    reader = csv.reader(fh, delimiter=delimiter, strict=True)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except (csv.Error, UnicodeDecodeError) as exc:
        fh.close()
        raise _unreadable(kind, reader.line_num, exc) from exc
    if header is None:
        fh.close()
        raise InvalidTabularFile(f"The {kind} file has no header line: put the column names on its first line.")
    columns = unique_columns(header)
    sheet = Sheet(name=table_name, columns=columns, rows=iter(()))

    def rows() -> Iterator[dict[str, Any]]:
        with fh:
            while True:
                started = reader.line_num + 1  # a quoted value may run over several lines
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise _unreadable(kind, started, exc) from exc
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    sheet.skipped.append(
                        Skipped(f"line {reader.line_num}", f"{len(row)} values where the header has {len(columns)}")
                    )
                    continue
                yield {column: (value if value != "" else None) for column, value in zip(columns, row, strict=True)}

    sheet.rows = rows()
    return sheet


def _unreadable(kind: str, line: int, exc: Exception) -> InvalidTabularFile:
    reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
    return InvalidTabularFile(
        f"The {kind} file could not be read at line {line}: {reason}. Fix that line (for example a quote "
        "that is opened but never closed) and upload the file again."
    )


def _object_rows(items: Iterator[tuple[str, Any]], sheet: Sheet) -> Iterator[dict[str, Any]]:
    """Rows from ``(where, item)`` pairs: objects become rows (new keys become columns), anything else is skipped."""
    for where, item in items:
        if not isinstance(item, dict):
            sheet.skipped.append(Skipped(where, f"{_json_kind(item)}, not an object"))
            continue
        for key in item:
            if str(key) not in sheet.columns:
                sheet.columns.append(str(key))
        yield {str(key): value for key, value in item.items()}


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "true or false", type(None): "null"}.get(
        type(value), "a number"
    )


def read_json_array(path: Path, encoding: str, table_name: str) -> Sheet:
    """A JSON file holding an array of objects (``[{"column": value}, ...]``) as one sheet.

    Nested arrays and objects are stored as JSON text. Items that are not objects are skipped
    and said. Raises ``InvalidTabularFile`` for text that is not JSON (with its line) or JSON
    that is not an array.
    """
    with _text(path, encoding) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise InvalidTabularFile(
                f"The JSON file could not be read at line {exc.lineno}, column {exc.colno}: {exc.msg}. "
                "Fix it and upload the file again."
            ) from exc
        except UnicodeDecodeError as exc:
            raise InvalidTabularFile(f"The JSON file is not text in a known encoding ({exc.reason}).") from exc
    if not isinstance(data, list):
        raise InvalidTabularFile(
            f"The JSON file holds {_json_kind(data) if not isinstance(data, dict) else 'an object'}: it must be an "
            'array of objects, one a row: [{"name": "Ada", "born": 1815}, ...].'
        )
    sheet = Sheet(name=table_name, columns=[], rows=iter(()))
    sheet.rows = _object_rows(((f"item {n}", item) for n, item in enumerate(data, start=1)), sheet)
    return sheet


def read_ndjson(path: Path, encoding: str, table_name: str) -> Sheet:
    """A newline-delimited JSON file (one object a line) as one sheet; blank lines are passed over.

    A line that is not JSON raises ``InvalidTabularFile`` with its number; a line that is JSON
    but not an object is skipped and said.
    """
    fh = _text(path, encoding)
    sheet = Sheet(name=table_name, columns=[], rows=iter(()))

    def items() -> Iterator[tuple[str, Any]]:
        with fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield f"line {number}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidTabularFile(
                        f"Line {number} of the newline-delimited JSON file is not JSON ({exc.msg}, column "
                        f"{exc.colno}). Fix that line and upload the file again."
                    ) from exc

    sheet.rows = _object_rows(items(), sheet)
    return sheet


def read_workbook(path: Path) -> list[Sheet]:
    """An Excel ``.xlsx`` workbook's worksheets as sheets, each named after its tab; the first
    non-blank row of each is its header. Cells keep their types (numbers, dates, text); formulas
    give their last computed values. Empty worksheets are left out.

    Raises ``InvalidTabularFile`` when the file is not an ``.xlsx`` workbook.
    """
    from openpyxl import load_workbook  # heavy: only conversions of workbooks import it

    if not zipfile.is_zipfile(path):
        raise InvalidTabularFile(
            "The file is not an Excel workbook (.xlsx files are zip archives). Save it from Excel, LibreOffice "
            "or Google Sheets as .xlsx (not .xls) and upload it again."
        )
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise InvalidTabularFile(
            f"The workbook could not be opened ({exc}). Save it again as .xlsx from your spreadsheet program "
            "and upload it again."
        ) from exc
    sheets = []
    for worksheet in book.worksheets:
        rows = worksheet.iter_rows(values_only=True)
        numbered = ((number, row) for number, row in enumerate(rows, start=1))
        header = next((row for _, row in numbered if any(v is not None for v in row)), None)
        if header is None:
            continue
        sheet = Sheet(name=worksheet.title, columns=unique_columns(list(header)), rows=iter(()), typed=True)
        sheet.rows = _sheet_rows(numbered, sheet)
        sheets.append(sheet)
    if not sheets:
        raise InvalidTabularFile("The workbook's sheets are all empty: there is nothing to publish.")
    return sheets


def _sheet_rows(numbered: Iterator[tuple[int, tuple[Any, ...]]], sheet: Sheet) -> Iterator[dict[str, Any]]:
    """A worksheet's rows after its header: blank rows passed over, values past the header given columns of their own."""
    for _, row in numbered:
        if all(value is None or (isinstance(value, str) and not value.strip()) for value in row):
            continue
        used = max(i for i, value in enumerate(row) if value is not None) + 1
        while len(sheet.columns) < used:
            sheet.columns.append(f"column_{len(sheet.columns) + 1}")
        yield {column: row[i] if i < len(row) else None for i, column in enumerate(sheet.columns)}
