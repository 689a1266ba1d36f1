"""Publishing the tabular files people have: CSV, TSV, JSON, newline-delimited JSON and Excel ``.xlsx``.

The build turns such an upload into a SQLite database before the database check
(``builder.director``): ``convert_file`` runs ``python -m builder.tabular`` (``child.py``), a child
process with the database check's memory, CPU and wall-clock limits and no secrets in its
environment, which reads the file (``read.py``: encodings, line numbers, rows skipped and why)
and writes one table per file or worksheet with sqlite-utils (``write.py``: detected column
types, optional full-text search). The converted database then goes through the same check,
scan and bundle as an uploaded one.

``format_of`` (the upload's format from its name) and ``sniff`` (a cheap look at its first bytes)
run in the web request too, so a file that is plainly not what its name says is refused before
it is stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.sqlite_check import KILL_GRACE_SECONDS, CheckLimits, child_env, format_megabytes
from builder.sqlite_check.limits import time_message
from builder.tabular.read import FORMATS, InvalidTabularFile, format_of
from builder.tabular.write import TableMade

__all__ = ["FORMATS", "Conversion", "InvalidTabularFile", "TableMade", "convert_file", "format_of", "sniff"]

#: What the first bytes of each format must look like (``sniff``).
_ZIP_MAGIC = b"PK\x03\x04"
#: Bytes of the start of an upload that ``sniff`` reads.
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Conversion:
    """What ``convert_file`` made: ``tables`` (``TableMade``), the text ``encoding`` it read (``""`` for a
    workbook), up to 20 ``skipped`` rows as ``(where, why)`` and the count of all skipped rows."""

    tables: tuple[TableMade, ...]
    encoding: str
    skipped: tuple[tuple[str, str], ...]
    skipped_count: int

    def log_lines(self, filename: str) -> list[str]:
        """The build log's account: the encoding, each table with its rows and typed columns, the rows skipped."""
        read_as = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252 (it is not valid UTF-8)"}
        lines = [f"Converted {filename}" + (f", read as {read_as.get(self.encoding, self.encoding)}" if self.encoding else "") + "."]
        for table in self.tables:
            columns = ", ".join(f"{name} {kind}" for name, kind in table.columns)
            lines.append(f"Table {table.name}: {table.rows:,} row{'' if table.rows == 1 else 's'}; columns: {columns}.")
            if table.searchable:
                lines.append(f"Full-text search on {table.name}: {', '.join(table.searchable)}.")
        lines.extend(f"Skipped {where}: {why}." for where, why in self.skipped)
        return lines

    def warnings(self) -> list[str]:
        """What the publisher should read on the build page: the rows that were left out, if any."""
        if not self.skipped_count:
            return []
        listed = "; ".join(f"{where}: {why}" for where, why in self.skipped[:5])
        more = f" (and {self.skipped_count - 5:,} more, listed in the build log)" if self.skipped_count > 5 else ""
        plural = self.skipped_count != 1
        sentence = (
            f"{self.skipped_count:,} row{'s were' if plural else ' was'} left out because "
            f"{'they' if plural else 'it'} could not become table rows: {listed}{more}. Fix "
            "those rows and upload a new version if they matter."
        )
        return [sentence]


def sniff(head: bytes, fmt: str) -> str | None:
    """Why the first bytes ``head`` of an upload of format ``fmt`` cannot be that format, or ``None``.

    A workbook must be a zip archive; text formats must not hold NUL bytes (unless the text is
    UTF-16, which starts with its byte-order mark); JSON must start with ``[`` and
    newline-delimited JSON with ``{`` (after white space).
    """
    if fmt == "xlsx":
        return None if head.startswith(_ZIP_MAGIC) else (
            "The file is not an Excel workbook (.xlsx files are zip archives). Save it as .xlsx (not .xls) and "
            "upload it again."
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    if b"\x00" in head:
        return f"The file is not {fmt.upper()} text (it holds binary data). Upload the file itself, not another kind."
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if fmt == "json" and text and not text.startswith(b"["):
        return 'The JSON file must be an array of objects, one a row: [{"name": "Ada", "born": 1815}, ...].'
    if fmt == "ndjson" and text and not text.startswith(b"{"):
        return 'A newline-delimited JSON file holds one object a line: {"name": "Ada", "born": 1815}.'
    return None


def convert_file(
    path: Path,
    fmt: str,
    *,
    output: Path,
    table_name: str,
    full_text_search: bool = False,
    search_columns: tuple[str, ...] = (),
    limits: CheckLimits | None = None,
    temp_dir: Path | None = None,
) -> Conversion:
    """Convert the uploaded file at ``path`` (format ``fmt``: ``FORMATS``) into a SQLite database at ``output``.

    ``table_name`` names the table of a one-table format (a workbook's are its sheets' names).
    Runs in ``python -m builder.tabular`` with ``limits``: its ``max_bytes`` caps the converted
    database, ``seconds``/``cpu_seconds``/``memory_bytes`` the child. Raises ``InvalidTabularFile``
    with the publisher's message when the file cannot become tables, runs out of time or memory,
    or the child dies.
    """
    limits = limits or CheckLimits()
    request = {
        "path": str(Path(path).resolve()), "format": fmt, "output": str(Path(output).resolve()),
        "table_name": table_name, "full_text_search": full_text_search, "search_columns": list(search_columns),
        "limits": asdict(limits),
    }  # fmt: skip
    try:
        completed = subprocess.run(
            [sys.executable, "-E", "-s", "-m", "builder.tabular"],
            input=json.dumps(request), capture_output=True, text=True, check=False,
            cwd=Path(__file__).resolve().parents[2],  # the checkout, so `-m builder.tabular` imports this package
            env=child_env(temp_dir), timeout=limits.seconds + KILL_GRACE_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise InvalidTabularFile(time_message(limits.seconds).replace("Checking the database", "Converting the file")) from exc
    if completed.returncode != 0:
        raise InvalidTabularFile(
            f"Converting the file stopped (exit code {completed.returncode}): it may be too large to convert within "
            f"the limits ({format_megabytes(limits.memory_bytes)} of memory, {limits.seconds:g} seconds). Make it "
            "smaller and upload it again."
        )
    answer = json.loads(completed.stdout)
    if "refused" in answer:
        raise InvalidTabularFile(answer["refused"])
    return Conversion(
        tables=tuple(
            TableMade(t["name"], t["rows"], tuple((c[0], c[1]) for c in t["columns"]), tuple(t["searchable"]))
            for t in answer["tables"]
        ),
        encoding=answer["encoding"],
        skipped=tuple((s["where"], s["why"]) for s in answer["skipped"]),
        skipped_count=answer["skipped_count"],
    )
