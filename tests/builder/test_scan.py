"""``builder.scan.scan_database``: columns that look like personal data, with masked examples."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from builder.scan import SAMPLE_ROWS, ScanError, scan_database

#: Six rows per column. Every value of a personal-data column is a real-looking one of its kind,
#: except where a comment says otherwise.
PEOPLE: dict[str, list[object]] = {
    "id": [1, 2, 3, 4, 5, 6],
    "name": ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth"],
    "email": ["ada@example.com", "alan.turing@bletchley.org.uk", "GRACE+navy@Example.COM", "edsger@cs.utexas.edu",
              "b_liskov@mit.edu", None],
    "phone": ["+1 (415) 555-0132", "+44 20 7946 0958", "(212) 555-0187", "020 7946 0018", "+33 1 49 70 65 65",
              "555.123.4567 x12"],
    "ssn": ["123-45-6789", "078-05-1120", "219 09 9999", "000-12-3456",  # area 000 is never issued
            "666-12-3456", "536-90-4399"],  # so is 666
    "nino": ["AB 12 34 56 C", "JG103759A", "ce 11 22 33 d", "QQ 12 34 56 C",  # Q is not an allowed prefix
             "GB123456A", "  "],  # GB is not allocated; blank is not a value
    "card": ["4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005", "6011111111111117",
             "4242 4242 4242 4241", ""],  # the last card fails the Luhn check
    "card_as_number": [4000056655665556, 2223003122003222, 3566002020360505, 6200000000000005, 36227206271667, None],
    # Decoys: none of these may flag.
    "bad_luhn_card": ["4242424242424241", "5555555555554440", "4000056655665550", "378282246310006",
                      "6011111111111110", "3566002020360500"],
    "luhn_but_no_issuer": ["9999999999999995", "1234567812345670", "1700000000000001", "9999 9999 9999 9995",
                           "1234-5678-1234-5670", "1700000000000001"],
    "price": ["12.99", "$1,299.00", "0.50", "1234567.89", "£3", 19.99],
    "date": ["2021-01-01", "01.02.2021", "2021-01-01 00:00:00", "03/04/2022", "2021-12-31T23:59:59Z", "1999-01-01"],
    "isbn": ["978-0-306-40615-7", "0-306-40615-2", "9780306406157", "0306406152", "978 0 306 40615 7", "1-56619-909-3"],
    "postcode": ["SW1A 1AA", "90210", "90210-1234", "H2G 1A7", "02134-1234", "75008"],
    "invoice": ["INV-2021-000123", "2021-000124", "000125", "PO 4500012345", "2022/0042", "A-000-000-0001"],
    "long_id": [1700000000000001, 1700000000000002, 1700000000000003, 1700000000000004, 1700000000000005, 17],
    "timestamp_ms": [1700000000000, 1700000000001, 1700000000002, 1700000000003, 1700000000004, 1700000000005],
    # Personal data, but in fewer than half of the values: not flagged. Exactly half is flagged.
    "some_emails": ["see ada@example.com", "alan@example.com", "n/a", "ask Grace", "-", "tbd"],
    "half_phones": ["+1 (415) 555-0132", "+44 20 7946 0958", "+49 030 2141444", "home", "work", "mobile"],
}

EXPECTED = [
    {"table": "people", "column": "card", "kind": "card_number", "count": 4, "sampled": 5,
     "examples": ["**** **** **** 4242", "**** **** **** 4444"]},
    {"table": "people", "column": "card_as_number", "kind": "card_number", "count": 5, "sampled": 5,
     "examples": ["**** **** **** 5556", "**** **** **** 3222"]},
    {"table": "people", "column": "email", "kind": "email", "count": 5, "sampled": 5,
     "examples": ["a***@e***.com", "a***@b***.uk"]},
    {"table": "people", "column": "half_phones", "kind": "phone", "count": 3, "sampled": 6,
     "examples": ["+1 (***) ***-**32", "+44 ** **** **58"]},
    {"table": "people", "column": "nino", "kind": "national_id", "count": 3, "sampled": 5,
     "examples": ["** ** ** 56 *", "** ** ** 59 *"]},
    {"table": "people", "column": "phone", "kind": "phone", "count": 6, "sampled": 6,
     "examples": ["+1 (***) ***-**32", "+44 ** **** **58"]},
    {"table": "people", "column": "ssn", "kind": "national_id", "count": 4, "sampled": 6,
     "examples": ["***-**-6789", "***-**-1120"]},
]  # fmt: skip


def make_database(path: Path, tables: dict[str, dict[str, list[object]]]) -> Path:
    """Write ``{table: {column: [value per row]}}`` as a SQLite database at ``path``."""
    conn = sqlite3.connect(path)
    for table, columns in tables.items():
        names = ", ".join(f'"{name}"' for name in columns)
        conn.execute(f'CREATE TABLE "{table}" ({names})')
        rows = list(zip(*columns.values(), strict=True))
        conn.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(columns))})', rows)
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def people_db(tmp_path: Path) -> Path:
    return make_database(tmp_path / "people.db", {"people": PEOPLE})


def test_it_flags_exactly_the_known_personal_data_of_a_generated_database(people_db: Path) -> None:
    assert scan_database(people_db) == EXPECTED


def test_chinook_flags_only_the_real_emails_phones_and_faxes(shared_data: Path) -> None:
    flags = scan_database(shared_data / "chinook.sqlite")
    # Fax numbers are phone numbers, so Fax is flagged as phone. Every non-empty value matches.
    assert [(f["table"], f["column"], f["kind"], f["count"], f["sampled"]) for f in flags] == [
        ("Customer", "Email", "email", 59, 59),
        ("Customer", "Fax", "phone", 12, 12),
        ("Customer", "Phone", "phone", 58, 58),
        ("Employee", "Email", "email", 8, 8),
        ("Employee", "Fax", "phone", 8, 8),
        ("Employee", "Phone", "phone", 8, 8),
    ]
    assert flags[0]["examples"] == ["l***@e***.br", "l***@s***.de"]
    assert flags[2]["examples"] == ["+55 (**) ****-**55", "+49 **** *****22"]


def test_the_datasette_fixtures_have_nothing_that_looks_personal(shared_data: Path) -> None:
    assert scan_database(shared_data / "datasette-fixtures.db") == []


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def test_masked_examples_keep_only_the_digits_they_mean_to(people_db: Path) -> None:
    originals = [str(value) for values in PEOPLE.values() for value in values if value]
    for flag in scan_database(people_db):
        for example in flag["examples"]:
            assert example not in originals
            kept = digits(example)
            if flag["kind"] in ("card_number", "national_id"):
                # The last four of a card or an SSN, the last two of a NI number.
                assert len(kept) <= 4 and example.count("*") >= 5, example
            elif flag["kind"] == "phone":
                # A country code of up to three digits and the last two.
                assert len(kept) <= 5 and example.count("*") >= 6, example
            else:
                local, _, domain = example.partition("@")
                assert re.fullmatch(r"\w\*\*\*", local) and re.fullmatch(r"\w\*\*\*\.\w+", domain), example
                assert kept == ""


def test_only_the_first_rows_of_a_table_are_read(tmp_path: Path) -> None:
    rows = SAMPLE_ROWS + 500
    # The sample is all phone numbers; the rows after it are not, and are never read.
    phones = [f"+44 20 7946 {n % 10_000:04d}" for n in range(SAMPLE_ROWS)] + ["none"] * 500
    path = make_database(tmp_path / "big.db", {"calls": {"n": list(range(rows)), "phone": phones}})
    assert [(f["column"], f["count"], f["sampled"]) for f in scan_database(path)] == [("phone", SAMPLE_ROWS, SAMPLE_ROWS)]


def test_awkward_names_without_rowid_tables_and_invalid_utf8_are_scanned(tmp_path: Path) -> None:
    path = tmp_path / "awkward.db"
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE "a ""quoted"" table" ("e-mail address" TEXT PRIMARY KEY, "select" INT) WITHOUT ROWID')
    conn.execute("""INSERT INTO "a ""quoted"" table" VALUES ('x@example.net', 1), ('y@example.org', 2)""")
    conn.execute("""INSERT INTO "a ""quoted"" table" VALUES (CAST(x'ff40' AS TEXT), 3)""")  # not UTF-8
    conn.execute("CREATE VIEW everyone AS SELECT * FROM \"a \"\"quoted\"\" table\"")
    conn.commit()
    conn.close()
    assert scan_database(path) == [
        {"table": 'a "quoted" table', "column": "e-mail address", "kind": "email", "count": 2, "sampled": 3,
         "examples": ["x***@e***.net", "y***@e***.org"]},
    ]  # fmt: skip


def test_it_reads_the_file_without_changing_it(people_db: Path) -> None:
    before = people_db.read_bytes()
    people_db.chmod(0o444)
    assert scan_database(people_db) == EXPECTED
    assert people_db.read_bytes() == before


def test_a_file_that_is_not_sqlite_raises_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database at all, just some text " * 20)
    with pytest.raises(ScanError, match="Could not"):
        scan_database(path)
