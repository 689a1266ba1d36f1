"""The order ``make test`` runs its files in (``tests/plugins/suite.py``)."""

from __future__ import annotations

from pathlib import Path

from tests.plugins.suite import LONGEST_FILES

REPO = Path(__file__).resolve().parents[2]


def test_every_file_named_as_one_of_the_longest_exists_once() -> None:
    assert len(set(LONGEST_FILES)) == len(LONGEST_FILES)
    missing = [name for name in LONGEST_FILES if not (REPO / name).is_file()]
    assert not missing, f"renamed or removed: update LONGEST_FILES in tests/plugins/suite.py: {missing}"
