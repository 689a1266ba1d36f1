"""README's Configuration table lists every environment variable the settings and gunicorn read."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def table_variables() -> set[str]:
    """Variables named in the first column of README's "Configuration" table."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def read_variables() -> set[str]:
    """Variables read by the project's configuration (the ``env_*`` helpers in every module of
    ``gallery/project/``, the settings package included) and by ``deploy/gunicorn.conf.py``."""
    modules = sorted((REPO / "gallery" / "project").rglob("*.py"))
    assert REPO / "gallery" / "project" / "settings" / "core.py" in modules, "the settings package moved: update this test"
    settings = "".join(module.read_text() for module in modules)
    gunicorn = (REPO / "deploy" / "gunicorn.conf.py").read_text()
    return set(re.findall(r"\benv_[a-z]+\(\s*\"([A-Z][A-Z0-9_]+)\"", settings + gunicorn)) | set(
        re.findall(r"os\.environ(?:\.get\(|\[)\"([A-Z][A-Z0-9_]+)\"", gunicorn)
    )


def test_every_variable_read_is_in_the_readme_table():
    missing = sorted(read_variables() - table_variables())
    assert not missing, f"add these to README's Configuration table (default and meaning): {missing}"
