"""What one database check may use (``CheckLimits``), what it finds (``DatabaseInfo``), and the
refusals at those limits, shared by the parent (``check_database``) and its child process."""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.sqlite_check.header import format_megabytes


@dataclass(frozen=True)
class CheckLimits:
    """Limits of one ``check_database`` run.

    ``max_bytes``: file size cap in bytes (``None``: no cap); ``seconds``: wall-clock time
    for the whole check and copy; ``cpu_seconds``: the child's CPU time (``RLIMIT_CPU``; ``None``:
    as many as ``seconds``), which also stops work SQLite does outside the progress handler's
    reach, such as parsing a huge schema;
    ``memory_bytes``: the child's address space (``RLIMIT_AS``); ``max_tables``: tables and
    views together (full-text and R*Tree shadow tables count too); ``max_columns``: columns of
    one table; ``max_schema_bytes``: the schema's SQL text, all statements together.
    """

    max_bytes: int | None = None
    seconds: float = 300.0
    cpu_seconds: float | None = None
    memory_bytes: int = 512 * 1024 * 1024
    max_tables: int = 1000
    max_columns: int = 1000
    max_schema_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class DatabaseInfo:
    """What a valid database holds: table and view names, its size in bytes and journal mode.

    ``journal_mode`` is ``"wal"`` or ``"rollback"`` (header bytes 18 and 19); ``warnings`` are
    sentences for the build log and build page (e.g. that a WAL file's un-checkpointed changes
    are missing).
    """

    tables: tuple[str, ...]
    views: tuple[str, ...]
    size_bytes: int
    journal_mode: str = "rollback"
    warnings: tuple[str, ...] = field(default=())


class TimedOut(Exception):
    """The check ran past its deadline (SQLite's progress handler interrupted a statement)."""


def time_message(seconds: float) -> str:
    """The refusal of a check that ran past its ``seconds`` of wall-clock time."""
    return (
        f"Checking the database took longer than the {seconds:g}-second limit, so it was stopped. "
        "Make the file smaller (remove tables, rows or indexes you do not need, then VACUUM) and upload it "
        "again; if it is well within the upload limit, tell us: the limit may be set too low."
    )


def memory_message(memory_bytes: int) -> str:
    """The refusal of a check that needed more than its ``memory_bytes`` of address space."""
    return (
        f"Checking the database needed more than the {format_megabytes(memory_bytes)} of memory it may use, so it was "
        "stopped. Make the file or its schema smaller (fewer tables, columns, views or indexes) and upload it "
        "again; if it is well within the upload limit, tell us: the limit may be set too low."
    )
