"""Metadata texts a few kilobytes long that would cost far more than their size to accept.

Shared by the parser's unit tests (``tests/builder/test_metadata.py``) and the tests of the
form, the edit page and the ``publish`` command, which must refuse them with a message
before any other work. They import it as ``tests.support.hostile_metadata``.
"""

from __future__ import annotations

#: The plugin whose free-form settings hold the hostile values: the metadata must choose it.
PLUGIN = "datasette-cluster-map"


def alias_bomb(levels: int = 9) -> str:
    """YAML of about 50 bytes a level (half a kilobyte for 9) whose last alias stands for
    ``9**levels`` strings, under ``PLUGIN``'s settings: ``yaml.safe_load`` shares the aliased
    nodes, and every later walk or serialisation expands them."""
    lines = ["plugins:", f"  {PLUGIN}:", "    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"    l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def deep_json(depth: int = 30_000) -> str:
    """JSON (30 KB for the default) whose arrays under ``PLUGIN``'s settings nest ``depth`` levels:
    ``json.loads`` recurses once per level and raises ``RecursionError``."""
    return '{"title": "Deep", "plugins": {"' + PLUGIN + '": {"points": ' + "[" * depth + "]" * depth + "}}}"
