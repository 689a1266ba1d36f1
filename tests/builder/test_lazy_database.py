"""``builder.lazy_database``: the block hash list a reader's browser checks each block of a lazy database against."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from builder.lazy_database import block_hashes_name, is_lazy, write_block_hashes


@pytest.mark.parametrize(("size", "blocks"), [(0, 0), (1, 1), (16, 1), (17, 2), (40, 3)])
def test_each_block_gets_its_sha256_the_last_one_of_the_bytes_it_has(tmp_path: Path, size: int, blocks: int) -> None:
    data = bytes(range(size))
    (tmp_path / "d.db").write_bytes(data)
    assert write_block_hashes(tmp_path / "d.db", tmp_path / "out", block_bytes=16) == blocks
    expected = b"".join(hashlib.sha256(data[i : i + 16]).digest() for i in range(0, size, 16))
    assert (tmp_path / "out").read_bytes() == expected


def test_the_threshold_is_inclusive_and_none_means_never() -> None:
    assert is_lazy(100, 100) and is_lazy(101, 100) and is_lazy(0, 0)
    assert not is_lazy(99, 100)
    assert not is_lazy(10**12, None)


def test_the_hash_list_is_named_after_the_database() -> None:
    assert block_hashes_name(Path("/x/chinook.db")) == "chinook.blocks.sha256"
