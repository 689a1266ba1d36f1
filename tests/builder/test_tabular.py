"""``builder.tabular``: CSV, TSV, JSON, newline-delimited JSON and Excel files become SQLite tables, in the
conversion's real child process; rows that cannot become rows are said, text that does not parse is refused
with its line."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest
from openpyxl import Workbook

from builder.sqlite_check import CheckLimits
from builder.tabular import InvalidTabularFile, convert_file, format_of, sniff

BIRDS_CSV = (
    "id,name,weight,seen\n"
    '1,Robin,18.5,2024-01-02\n'
    '2,"Wren, Eurasian",9.1,\n'
    "3,Blue tit,11\n"  # one value short: left out, and said
    "\n"  # a blank line: passed over
    "4,Owl,,2024-02-01\n"
)


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def column_types(path: Path, table: str) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return {name: kind.lower() for _, name, kind, *_ in conn.execute(f'PRAGMA table_info("{table}")')}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "converted.db"


def test_a_csv_becomes_one_table_with_detected_types_and_its_bad_rows_said(tmp_path: Path, out: Path) -> None:
    source = tmp_path / "birds.csv"
    source.write_text(BIRDS_CSV)
    made = convert_file(source, "csv", output=out, table_name="birds")
    assert column_types(out, "birds") == {"id": "integer", "name": "text", "weight": "real", "seen": "text"}
    assert rows(out, "select id, name, weight, seen from birds order by id") == [
        (1, "Robin", 18.5, "2024-01-02"), (2, "Wren, Eurasian", 9.1, None), (4, "Owl", None, "2024-02-01"),
    ]  # fmt: skip
    assert [(t.name, t.rows) for t in made.tables] == [("birds", 3)]
    assert made.skipped == (("line 4", "3 values where the header has 4"),) and made.skipped_count == 1
    log = made.log_lines("birds.csv")
    assert log[0] == "Converted birds.csv, read as UTF-8."
    assert "Table birds: 3 rows; columns: id integer, name text, weight real, seen text." in log
    assert "Skipped line 4: 3 values where the header has 4." in log
    assert "1 row was left out" in made.warnings()[0] and "line 4" in made.warnings()[0]


def test_a_tsv_with_a_bom_and_a_windows_1252_csv_are_read_and_their_encoding_said(tmp_path: Path, out: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_bytes("\ufeffa\tb\n1\tx\n".encode())
    assert convert_file(tsv, "tsv", output=out, table_name="t").encoding == "utf-8-sig"
    assert rows(out, "select a, b from t") == [(1, "x")]  # the BOM is not part of the first column's name
    latin = tmp_path / "places.csv"
    latin.write_bytes("name,place\nJos\xe9,M\xfcnchen\n".encode("cp1252"))
    made = convert_file(latin, "csv", output=tmp_path / "places.db", table_name="places")
    assert made.encoding == "cp1252" and "read as Windows-1252" in made.log_lines("places.csv")[0]
    assert rows(tmp_path / "places.db", "select name, place from places") == [("José", "München")]


@pytest.mark.parametrize(
    ("text", "line"),
    [("a,b\n1,2\n3,\"never closed\n4,5\n", 3), ('a,b\n1,2\n3,"quoted"then more\n', 3)],
    ids=["open-quote", "text-after-a-closing-quote"],
)
def test_a_csv_that_does_not_parse_is_refused_with_its_line(tmp_path: Path, out: Path, text: str, line: int) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(text)
    with pytest.raises(InvalidTabularFile, match=rf"could not be read at line {line}: .*upload the file again"):
        convert_file(source, "csv", output=out, table_name="bad")


def test_json_objects_become_rows_and_anything_else_is_said(tmp_path: Path, out: Path) -> None:
    source = tmp_path / "people.json"
    source.write_text('[{"name": "Ada", "born": 1815, "tags": ["math"]}, {"name": "Grace", "born": 1906}, 3]')
    made = convert_file(source, "json", output=out, table_name="people")
    assert column_types(out, "people") == {"name": "text", "born": "integer", "tags": "text"}
    assert rows(out, "select name, born, tags from people order by born") == [
        ("Ada", 1815, '["math"]'), ("Grace", 1906, None),
    ]  # fmt: skip
    assert made.skipped == (("item 3", "a number, not an object"),)


@pytest.mark.parametrize(
    ("fmt", "text", "message"),
    [
        ("json", '{"name": "Ada"}', "it must be an array of objects"),
        ("json", '[{"name": "Ada"},\n {"name": }]', "could not be read at line 2"),
        ("ndjson", '{"x": 1}\n{"x": \n', "Line 2 of the newline-delimited JSON file is not JSON"),
    ],
)
def test_json_that_is_not_rows_is_refused_with_where(tmp_path: Path, out: Path, fmt: str, text: str, message: str) -> None:
    source = tmp_path / f"data.{fmt}"
    source.write_text(text)
    with pytest.raises(InvalidTabularFile, match=message):
        convert_file(source, fmt, output=out, table_name="data")


def test_newline_delimited_json_with_new_keys_grows_columns(tmp_path: Path, out: Path) -> None:
    source = tmp_path / "events.ndjson"
    source.write_text('{"x": 1}\n\n{"x": 2, "y": "z"}\n')
    convert_file(source, "ndjson", output=out, table_name="events")
    assert rows(out, "select x, y from events order by x") == [(1, None), (2, "z")]


def test_each_sheet_of_a_workbook_becomes_a_table_keeping_its_cell_types(tmp_path: Path, out: Path) -> None:
    book = Workbook()
    prices = book.active
    prices.title = "Prices"
    prices.append(["item", "price", "when"])
    prices.append(["tea", 2.5, datetime.date(2024, 1, 1)])
    prices.append(["cake", 3, None])
    stock = book.create_sheet("Stock")
    stock.append(["item", "count"])
    stock.append(["tea", 10])
    book.create_sheet("Empty")
    source = tmp_path / "shop.xlsx"
    book.save(source)
    made = convert_file(source, "xlsx", output=out, table_name="ignored")
    assert [(t.name, t.rows) for t in made.tables] == [("Prices", 2), ("Stock", 1)]
    assert column_types(out, "Prices") == {"item": "text", "price": "real", "when": "text"}
    assert rows(out, 'select item, price, "when" from Prices') == [("tea", 2.5, "2024-01-01T00:00:00"), ("cake", 3.0, None)]
    assert rows(out, "select item, count from Stock") == [("tea", 10)]


def test_full_text_search_covers_the_text_columns_or_those_named(tmp_path: Path, out: Path) -> None:
    source = tmp_path / "birds.csv"
    source.write_text(BIRDS_CSV)
    made = convert_file(source, "csv", output=out, table_name="birds", full_text_search=True)
    assert made.tables[0].searchable == ("name", "seen")
    assert rows(out, "select name from birds_fts where birds_fts match 'wren'") == [("Wren, Eurasian",)]
    named = convert_file(
        source, "csv", output=tmp_path / "named.db", table_name="birds", full_text_search=True, search_columns=("name",)
    )
    assert named.tables[0].searchable == ("name",)


def test_a_file_larger_than_the_converted_cap_is_refused(tmp_path: Path, out: Path) -> None:
    source = tmp_path / "big.csv"
    source.write_text("n,text\n" + "".join(f"{n},{'x' * 200}\n" for n in range(5000)))
    with pytest.raises(InvalidTabularFile, match="larger than the .* a converted database may be"):
        convert_file(source, "csv", output=out, table_name="big", limits=CheckLimits(max_bytes=200_000))


def test_a_workbook_that_is_not_a_zip_is_refused(tmp_path: Path, out: Path) -> None:
    source = tmp_path / "book.xlsx"
    source.write_text("id,name\n1,a\n")
    with pytest.raises(InvalidTabularFile, match="not an Excel workbook"):
        convert_file(source, "xlsx", output=out, table_name="book")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.CSV", "csv"), ("a.tsv", "tsv"), ("a.tab", "tsv"), ("a.json", "json"), ("a.jsonl", "ndjson"),
     ("a.ndjson", "ndjson"), ("a.xlsx", "xlsx"), ("a.db", None), ("a.xls", None)],
)  # fmt: skip
def test_the_format_comes_from_the_name(name: str, fmt: str | None) -> None:
    assert format_of(name) == fmt


@pytest.mark.parametrize(
    ("head", "fmt", "refused"),
    [
        (b"id,name\n1,a\n", "csv", False),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "csv", True),
        (b"\xff\xfea\x00,\x00b\x00", "csv", False),  # UTF-16 with its BOM holds NUL bytes
        (b'  [{"a": 1}]', "json", False),
        (b'{"a": 1}', "json", True),
        (b"PK\x03\x04rest", "xlsx", False),
        (b"id,name\n", "xlsx", True),
    ],
)
def test_the_web_request_refuses_files_that_plainly_are_not_what_they_claim(head: bytes, fmt: str, refused: bool) -> None:
    assert (sniff(head, fmt) is not None) is refused
