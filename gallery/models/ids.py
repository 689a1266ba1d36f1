"""Ids and names: random, opaque gallery and build ids (they are DNS labels of content origins), and
the database name a file gives its Datasette URLs."""

from __future__ import annotations

import re
import secrets
import string
from pathlib import PurePath

_LETTERS = string.ascii_lowercase
_ALPHANUMERIC = string.ascii_lowercase + string.digits

#: A gallery id: a DNS label of 12 characters, ``[a-z][a-z0-9]{11}``.
GALLERY_ID_RE = re.compile(r"[a-z][a-z0-9]{11}")
#: A build id: 16 characters of ``[a-z0-9]``.
BUILD_ID_RE = re.compile(r"[a-z0-9]{16}")


def new_gallery_id() -> str:
    """Return a random, opaque gallery id that is a valid DNS label (``GALLERY_ID_RE``, ~60 bits)."""
    return secrets.choice(_LETTERS) + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(11))


def new_build_id() -> str:
    """Return a random build id (``BUILD_ID_RE``, ~82 bits); also the capability to view its page."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))


def database_name_for(filename: str) -> str:
    """Return the database name used in Datasette URLs for an uploaded ``filename``.

    The file's stem, lowercased, with every character outside ``[a-z0-9_-]``
    replaced by ``-`` (runs collapsed, ends trimmed), at most 60 characters;
    ``"data"`` if nothing is left. ``"My Chinook.sqlite"`` -> ``"my-chinook"``.
    """
    stem = PurePath(PurePath(filename).name).stem.lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-_")[:60].strip("-_")
    return slug or "data"
