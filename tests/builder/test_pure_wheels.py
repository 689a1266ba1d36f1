from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from builder.pure_wheels import PureWheelError, build_pure_wheel


def make_sdist(tmp_path: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """Write a minimal real sdist (.tar.gz with PKG-INFO) holding ``files``."""
    root = f"{name.lower()}-{version}"
    path = tmp_path / f"{root}.tar.gz"
    entries = {"PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(), **files}
    with tarfile.open(path, "w:gz") as tar:
        for rel, data in entries.items():
            info = tarfile.TarInfo(f"{root}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_it_packages_the_python_files_and_leaves_out_the_c_speedups(tmp_path: Path) -> None:
    sdist = make_sdist(
        tmp_path,
        "MarkupSafe",
        "9.9",
        {
            "src/markupsafe/__init__.py": b"x = 1\n",
            "src/markupsafe/_native.py": b"y = 2\n",
            "src/markupsafe/_speedups.c": b"int main;",
            "tests/test_x.py": b"",
        },
    )
    wheel = build_pure_wheel(sdist, tmp_path / "out")
    assert wheel.name == "MarkupSafe-9.9-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"markupsafe/__init__.py", "markupsafe/_native.py"} <= names
    assert "markupsafe/_speedups.c" not in names
    assert not any(n.startswith("tests/") for n in names)
    record = zipfile.ZipFile(wheel).read("MarkupSafe-9.9.dist-info/RECORD").decode()
    assert "markupsafe/__init__.py,sha256=" in record


def test_the_same_sdist_always_gives_the_same_wheel_bytes(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "PyYAML", "1.0", {"lib/yaml/__init__.py": b"z = 3\n"})
    first = build_pure_wheel(sdist, tmp_path / "a").read_bytes()
    second = build_pure_wheel(sdist, tmp_path / "b").read_bytes()
    assert first == second


def test_it_refuses_a_project_that_has_no_known_pure_fallback(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "numpy", "1.0", {"numpy/__init__.py": b""})
    with pytest.raises(PureWheelError, match="not a known pure-Python fallback"):
        build_pure_wheel(sdist, tmp_path / "out")
