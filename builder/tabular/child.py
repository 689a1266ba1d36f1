"""The conversion's child process: read the uploaded file and write its tables, under limits.

``convert_file`` (``builder.tabular``) starts ``python -m builder.tabular`` (``__main__``, which
calls ``main``) with a JSON request on stdin: ``{"path", "format", "output", "table_name",
"full_text_search", "search_columns", "limits"}``. ``main`` caps its own address space and CPU time
(``resource.setrlimit``) before reading any byte of the upload, then prints one JSON answer:
``{"tables": [TableMade], "encoding": str, "skipped": [{"where", "why"}], "skipped_count": int}``
or ``{"refused": message for the publisher}``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

from builder.sqlite_check.limits import CheckLimits, memory_message
from builder.tabular.read import LISTED_SKIPS, InvalidTabularFile, read_sheets
from builder.tabular.write import write_tables


def main() -> int:
    """Read a JSON request on stdin, convert the file it names, print one JSON answer on stdout."""
    import resource

    request = json.loads(sys.stdin.read())
    limits = CheckLimits(**request["limits"])
    cpu = max(1, math.ceil(limits.cpu_seconds or limits.seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    try:
        answer = convert(request, limits)
    except InvalidTabularFile as exc:
        answer = {"refused": exc.args[0]}
    except MemoryError:
        answer = {"refused": memory_message(limits.memory_bytes)}
    sys.stdout.write(json.dumps(answer))
    return 0


def convert(request: dict, limits: CheckLimits) -> dict[str, object]:
    """Convert as ``request`` says (see the module docstring); return the answer's ``tables`` and the rest."""
    sheets, encoding = read_sheets(Path(request["path"]), request["format"], table_name=request["table_name"])
    made = write_tables(
        sheets,
        Path(request["output"]),
        max_bytes=limits.max_bytes,
        full_text_search=request["full_text_search"],
        search_columns=tuple(request["search_columns"]),
    )
    skipped = [skip for sheet in sheets for skip in sheet.skipped]
    if not any(table.rows for table in made) and skipped:
        first = skipped[0]
        raise InvalidTabularFile(
            f"No row of the file could be read: every row was skipped ({len(skipped):,}; the first, at "
            f"{first.where}: {first.why}). Check the file's layout and upload it again."
        )
    return {
        "tables": [asdict(table) for table in made],
        "encoding": encoding,
        "skipped": [asdict(skip) for skip in skipped[:LISTED_SKIPS]],
        "skipped_count": len(skipped),
    }
