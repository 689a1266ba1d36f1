"""Data scan: columns of a gallery's database that look like personal data, for moderators.

Plain Python (no Django): the build calls ``scan_database`` on the canonical copy and puts
the flags in ``manifest.json`` under ``"scan"``; the worker stores them in
``Build.scan_flags`` and the moderation queue shows them.

What is read
    Every user table that ``builder.tables.user_tables`` lists (views and full-text shadow
    tables are left out) and all its columns, but only the first ``SAMPLE_ROWS`` rows of each
    table in storage order (``LIMIT``, no sort, so a 1 GB table costs as much as a small one).
    Only TEXT and INTEGER values are looked at (an integer is read as its decimal digits, so a
    card number stored as a number is found); REAL and BLOB values, NULLs and blank strings
    are not "non-empty values", and text longer than ``MAX_VALUE_CHARS`` is counted but never
    matches. Each value is matched whole (leading and trailing spaces dropped): an address
    inside free text is not looked for.

The rule for a flag
    A column is flagged for a kind when at least half of its non-empty sampled values match
    that kind (``count * 2 >= sampled``, ``count >= 1``). Half, not "any", because single
    coincidences in long-number columns (ids, timestamps, ISBNs) must not flag; it is also why
    card numbers need a Luhn checksum and a card prefix: random 16-digit ids pass Luhn one time
    in ten, never half the time. On Chinook this flags exactly the Email, Phone and Fax
    columns of Customer and Employee (fax numbers are phone numbers, so Fax is flagged as
    ``phone``).

Kinds
    ``email``
        ``local@domain.tld``: a dot-atom local part, dot-separated domain labels, a letter TLD.
    ``phone``
        Written the way people write phone numbers, never bare digits (which could be any id):
        international ``+<country code> ...`` with 8 to 15 digits (E.164's maximum); North
        American ``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``, optionally with ``1``
        or ``+1`` before; or national with a trunk ``0`` and separators, ``020 7946 0958``,
        ``(0131) 315 3300``, 10 to 12 digits. Separators are spaces, ``-``, ``.`` and
        parentheses; an extension (``x123``, ``ext. 123``) may follow. Dates, postcodes,
        ISBNs, prices and invoice numbers do not fit these shapes.
    ``national_id``
        US Social Security numbers ``ddd-dd-dddd`` (or with spaces), without the never-issued
        area numbers 000, 666 and 900-999, group 00 or serial 0000; and UK National
        Insurance numbers ``QQ 12 34 56 C`` (spaces optional, any case), with HMRC's
        allowed prefix letters (not D, F, I, Q, U, V; second not O; not BG, GB, KN, NK, NT,
        TN, ZZ) and suffix A-D. No other countries' numbers.
    ``card_number``
        13 to 19 digits, optionally grouped by single spaces or dashes, with a valid Luhn
        checksum AND an issuer prefix of a major card network (``CARD_PREFIXES``: Visa,
        Mastercard, American Express, Discover, Diners Club, JCB, UnionPay, Maestro).

Masking
    Examples never show the value: ``j***@e***.com`` (first letters and the TLD),
    ``+1 (***) ***-**67`` (the formatting, an international country code and the last two
    digits), ``***-**-1234`` (an SSN's last four), ``** ** ** 56 *`` (a NI number's last two
    digits), ``**** **** **** 4242`` (a card's last four).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from builder.tables import quote_identifier, reading, user_tables

#: Rows read from each table, at most (the first ones in storage order).
SAMPLE_ROWS = 10_000
#: Longer values are counted as sampled but never match (254 is the longest email address).
MAX_VALUE_CHARS = 254

#: (first digits, from, to) of the card networks' issuer identification numbers: a card number
#: whose first ``len(from)`` digits are within [from, to] has a known prefix.
CARD_PREFIXES = (
    ("4", "4"),  # Visa
    ("51", "55"), ("2221", "2720"),  # Mastercard
    ("34", "34"), ("37", "37"),  # American Express
    ("6011", "6011"), ("644", "649"), ("65", "65"),  # Discover
    ("300", "305"), ("36", "36"), ("38", "39"),  # Diners Club
    ("3528", "3589"),  # JCB
    ("62", "62"),  # UnionPay
    ("5018", "5018"), ("5020", "5020"), ("5038", "5038"), ("5893", "5893"),  # Maestro
    ("6304", "6304"), ("6759", "6759"), ("6761", "6763"),  # Maestro
)  # fmt: skip

_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}"
)
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension)\s*\d{1,6}$", re.IGNORECASE)
_PHONE_SHAPES = (
    # International: +<country code>, then groups, some in parentheses: "+54 (0)11 4311 4333".
    (re.compile(r"\+\d{1,4}(?:[ .-]?(?:\(\d{1,5}\)|\d+))*"), 8, 15),
    # North American: "(555) 123-4567", "555-123-4567", "1 555.123.4567".
    (re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"), 10, 11),
    # National with a trunk 0 and at least one separator: "020 7946 0958", "(0131) 315 3300".
    (re.compile(r"(?:0\d{1,4}|\(0\d{1,4}\))(?:[ .-]?\d{2,8})*[ .-]\d{2,8}"), 10, 12),
)
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}([ -])(?!00)\d{2}\1(?!0000)\d{4}")
_NINO = re.compile(r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_DIGIT = re.compile(r"\d")


class ScanError(Exception):
    """The database could not be read; ``args[0]`` says why."""


def _digits(value: str) -> str:
    return "".join(_DIGIT.findall(value))


def luhn_valid(digits: str) -> bool:
    """Whether the string of decimal digits ``digits`` passes the Luhn (mod 10) checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_email(value: str) -> bool:
    return "@" in value and _EMAIL.fullmatch(value) is not None


def _is_phone(value: str) -> bool:
    if len(value) < 9 or value[0] not in "+(0123456789":
        return False
    number = _PHONE_EXTENSION.sub("", value)
    count = len(_digits(number))
    return any(shape.fullmatch(number) and low <= count <= high for shape, low, high in _PHONE_SHAPES)


def _is_national_id(value: str) -> bool:
    if not 9 <= len(value) <= 13:
        return False
    return _SSN.fullmatch(value) is not None or _NINO.fullmatch(value.upper()) is not None


def _is_card_number(value: str) -> bool:
    if len(value) < 13 or _CARD.fullmatch(value) is None:
        return False
    digits = _digits(value)
    known = any(low <= digits[: len(low)] <= high for low, high in CARD_PREFIXES)
    return known and luhn_valid(digits)


def _mask_digits(value: str, keep_last: int, keep_first: int = 0) -> str:
    """``value`` with every digit but the first ``keep_first`` and last ``keep_last`` as ``*``."""
    total = len(_digits(value))
    out, seen = [], 0
    for char in value:
        if char.isdigit():
            seen += 1
            if keep_first < seen <= total - keep_last:
                char = "*"
        out.append(char)
    return "".join(out)


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    labels = domain.split(".")
    return f"{local[0]}***@{labels[0][0]}***.{labels[-1]}"


def _mask_phone(value: str) -> str:
    # An international number keeps its country code (the first group after "+"), a hint of where.
    country = re.match(r"\+(\d{1,3})(?!\d)", value)
    return _mask_digits(value, keep_last=2, keep_first=len(country.group(1)) if country else 0)


def _mask_national_id(value: str) -> str:
    if _SSN.fullmatch(value):
        return "***-**-" + _digits(value)[-4:]
    return "** ** ** " + _digits(value)[-2:] + " *"


def _mask_card_number(value: str) -> str:
    digits = _digits(value)
    masked = "*" * (len(digits) - 4) + digits[-4:]
    # Groups of four from the right, like the last four on a receipt.
    groups = [masked[max(0, end - 4) : end] for end in range(len(masked), 0, -4)]
    return " ".join(reversed(groups))


#: kind -> (does a value match, how to mask it); the order is the order of flags within a column.
KINDS: dict[str, tuple[Callable[[str], bool], Callable[[str], str]]] = {
    "card_number": (_is_card_number, _mask_card_number),
    "email": (_is_email, _mask_email),
    "national_id": (_is_national_id, _mask_national_id),
    "phone": (_is_phone, _mask_phone),
}


def scan_values(values: list[str]) -> dict[str, tuple[int, list[str]]]:
    """Match non-empty, stripped ``values`` against every kind.

    Returns ``{kind: (count of matching values, up to two masked examples)}`` for the kinds
    that meet the flag rule (at least half of ``values`` match); ``{}`` if none does. The
    examples are the first two distinct matching values, masked (two values may mask alike).
    """
    found: dict[str, tuple[int, list[str]]] = {}
    # A column stops being read for a kind once too many values missed for it to reach half.
    allowed_misses = len(values) // 2
    for kind, (matches, mask) in KINDS.items():
        count, misses = 0, 0
        shown: list[str] = []
        for value in values:
            if len(value) <= MAX_VALUE_CHARS and matches(value):
                count += 1
                if len(shown) < 2 and value not in shown:
                    shown.append(value)
            else:
                misses += 1
                if misses > allowed_misses:
                    break
        else:
            if count:
                found[kind] = (count, [mask(value) for value in shown])
    return found


def _sample(conn: sqlite3.Connection, table: str, columns: list[str]) -> list[list[str]]:
    """Per column, the non-empty TEXT/INTEGER values of the first ``SAMPLE_ROWS`` rows, stripped."""
    # substr() makes an integer text and bounds what a huge text value costs in Python.
    selected = ", ".join(
        f"CASE WHEN typeof({q}) IN ('text', 'integer') THEN substr({q}, 1, {MAX_VALUE_CHARS + 1}) END"
        for q in map(quote_identifier, columns)
    )
    values: list[list[str]] = [[] for _ in columns]
    for row in conn.execute(f"SELECT {selected} FROM {quote_identifier(table)} LIMIT {SAMPLE_ROWS}"):
        for index, value in enumerate(row):
            if value is not None and (value := value.strip()):
                values[index].append(value)
    return values


def scan_database(path: Path) -> list[dict[str, object]]:
    """Flag the columns of the SQLite database at ``path`` that look like personal data.

    Opens the file read-only and immutable (it is never changed) and reads at most
    ``SAMPLE_ROWS`` (10 000) rows of each table; the module docstring states the rule and
    the kinds. Returns ``[{"table": str, "column": str, "kind": str, "count": int,
    "sampled": int, "examples": [str, str]}, ...]`` sorted by table, column and kind:
    ``count`` is how many of the column's ``sampled`` non-empty values match ``kind``,
    ``examples`` the first two distinct matching values, masked (one if all matches are
    the same value; two values may mask alike).
    ``[]`` when nothing looks personal. Raises ``ScanError`` if the file is not a
    readable SQLite database.
    """
    flags: list[dict[str, object]] = []
    with reading(path, ScanError) as conn:
        # Text that is not valid UTF-8 is still data Datasette shows; it must not stop the scan.
        conn.text_factory = lambda data: data.decode("utf-8", "replace")
        for table, columns in user_tables(conn):
            if not columns:
                continue
            for column, values in zip(columns, _sample(conn, table, columns), strict=True):
                for kind, (count, examples) in scan_values(values).items():
                    flags.append({"table": table, "column": column, "kind": kind, "count": count,
                                  "sampled": len(values), "examples": examples})  # fmt: skip
    return sorted(flags, key=lambda flag: (flag["table"], flag["column"], flag["kind"]))
