"""Generate a large SQLite database for the benchmarks: rows, indexes and a full-text table.

The same arguments always give the same rows (a seeded generator), so runs compare. With the
default 2,000,000 rows the file is about 217 MB; ``--rows 10000000`` gives about 1.1 GB.

Schema (one table a reader would browse, facet, sort, filter and search):

- ``observations(id INTEGER PRIMARY KEY, station TEXT, day TEXT (ISO date), hour INTEGER,
  temperature REAL (°C), rainfall INTEGER (mm), category TEXT, note TEXT)``, indexed on
  ``station`` and ``day``;
- ``stations(code TEXT PRIMARY KEY, name TEXT, region TEXT)``, 500 rows, the target of
  ``observations.station``'s foreign key;
- ``observations_fts``, an FTS5 table over ``note`` with ``observations`` as its external
  content (Datasette's ``fts_table`` convention), so ``?_search=`` works.

    .venv/bin/python bench/make_database.py OUT.db [--rows N]

Prints the file's size in bytes. Raises ``SystemExit`` if ``OUT.db`` already exists.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sqlite3
from pathlib import Path

_VOCABULARY = (
    "clear cloudy fog drizzle rain heavy showers thunder hail snow sleet gusts calm breeze gale "
    "frost dew haze mist sunny overcast humid dry warm cold mild bright dull wet windy still "
    "sensor check calibrated replaced battery low reading missing late manual estimate flagged "
    "north south east west coast valley ridge river harbour airport city farm forest lake"
)
WORDS = _VOCABULARY.split()
CATEGORIES = ("routine", "routine", "routine", "storm", "maintenance", "estimate", "flagged")
REGIONS = ("Highlands", "Lowlands", "Coast", "Islands", "Borders", "Midlands", "Fens", "Moors")


def generate(path: Path, rows: int, seed: int = 2026) -> int:
    """Write the benchmark database to ``path`` (must not exist); return its size in bytes."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        CREATE TABLE stations (code TEXT PRIMARY KEY, name TEXT NOT NULL, region TEXT NOT NULL);
        CREATE TABLE observations (
            id INTEGER PRIMARY KEY,
            station TEXT NOT NULL REFERENCES stations(code),
            day TEXT NOT NULL,
            hour INTEGER NOT NULL,
            temperature REAL,
            rainfall INTEGER,
            category TEXT NOT NULL,
            note TEXT NOT NULL
        );
        """
    )
    codes = [f"ST{n:04d}" for n in range(500)]
    conn.executemany(
        "INSERT INTO stations VALUES (?, ?, ?)",
        [(code, f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}", rng.choice(REGIONS)) for code in codes],
    )
    start = datetime.date(2000, 1, 1)

    def batch(first: int, count: int):
        for n in range(first, first + count):
            day = start + datetime.timedelta(days=rng.randrange(9000))
            note = " ".join(rng.choices(WORDS, k=rng.randint(2, 4)))
            yield (
                n, rng.choice(codes), day.isoformat(), rng.randrange(24),
                round(rng.gauss(10, 8), 1), max(0, round(rng.gauss(0, 4))), rng.choice(CATEGORIES), note,
            )  # fmt: skip

    step = 100_000
    for first in range(1, rows + 1, step):
        conn.executemany("INSERT INTO observations VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch(first, min(step, rows + 1 - first)))
    conn.executescript(
        """
        CREATE INDEX observations_station ON observations(station);
        CREATE INDEX observations_day ON observations(day);
        CREATE VIRTUAL TABLE observations_fts USING fts5(note, content='observations', content_rowid='id', detail=column, columnsize=0);
        INSERT INTO observations_fts(observations_fts) VALUES ('rebuild');
        INSERT INTO observations_fts(observations_fts) VALUES ('optimize');
        """
    )
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it first")
    size = generate(args.out, args.rows)
    print(f"{args.out}: {args.rows:,} rows, {size:,} bytes ({size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
